//! The trends pages' views of the lab's series.

use app::api::{BackfillOutcome, LabError, SeriesSummary, SeriesView, TrendChange, TrendPoint};
use domain::access::{Action, Caller, Role};
use domain::compare::Better;
use domain::series::MarkKind;

use std::sync::Arc;

use super::Lab;
use crate::store::TrendVersion;
use crate::trend::backfill::{self, queue_releases, releases, BackfillError};
use crate::trend::changepoint::{Confidence, Settings, Step};
use crate::trend::chart::series_chart;
use crate::trend::history::{load_series, Point, Series, SeriesFilter, TrendError};

/// `mark_trend`'s kind for every point of one uploader's claims.
pub const CLAIMANT: &str = "claimant";

impl Lab {
    /// Queues one run per PyPI release of `range` by `caller`, with the
    /// backfill's defaults; a range that is not one, or holds no release
    /// (or too many), is answered, not an error.
    pub async fn backfill_releases(
        &self,
        caller: &Caller,
        range: String,
    ) -> Result<BackfillOutcome, LabError> {
        caller.require(domain::access::Action::Launch)?;
        let versions = match releases(&range, backfill::MAX_RELEASES_PER_CLICK).await {
            Ok(versions) => versions,
            Err(
                e @ (BackfillError::Range(_)
                | BackfillError::NoRelease(_)
                | BackfillError::TooMany { .. }),
            ) => return Ok(BackfillOutcome::Invalid(e.to_string())),
            Err(e) => return Err(backfill_error(e)),
        };
        // From the page: the releases alike, from the agent's snapshot.
        let queued = queue_releases(
            &self.store,
            &versions,
            &backfill::template(),
            backfill::BackfillDependencies::Snapshot,
            &caller.name,
            super::MAX_QUEUED,
            super::queue_share(caller),
        )
        .await
        .map_err(backfill_error)?;
        self.wake.notify_one();
        self.note(
            caller,
            "backfill",
            &format!("{} releases of {}", queued.len(), range.trim()),
        )
        .await;
        Ok(BackfillOutcome::Queued(queued))
    }

    /// Every series of the history: as computed last while the history's
    /// stamp is the same (a scenario finished, a mark changed: computed
    /// again), else computed in one of the [`super::MAX_HEAVY_READS`]
    /// places (429 when none is free).
    async fn all_series(&self) -> Result<Arc<Vec<Series>>, LabError> {
        let version = self.store.trend_version().await?;
        if let Some(series) = self.kept_series(version) {
            return Ok(series);
        }
        let _permit = self.heavy_read_permit()?;
        // Another call may have computed them meanwhile.
        if let Some(series) = self.kept_series(version) {
            return Ok(series);
        }
        self.history_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let series = Arc::new(
            load_series(&self.store, &SeriesFilter::default(), &Settings::default()).await?,
        );
        if let Ok(mut kept) = self.trends.lock() {
            *kept = Some((version, series.clone()));
        }
        Ok(series)
    }

    /// The series computed for `version`, if they are kept.
    fn kept_series(&self, version: TrendVersion) -> Option<Arc<Vec<Series>>> {
        let kept = self.trends.lock().ok()?;
        kept.as_ref()
            .filter(|(at, _)| *at == version)
            .map(|(_, series)| series.clone())
    }

    /// Forgets the series computed (a mark changed here).
    fn forget_series(&self) {
        if let Ok(mut kept) = self.trends.lock() {
            *kept = None;
        }
    }

    /// Every series whose figure key holds `figure` (all when empty).
    pub async fn trend_summaries(&self, figure: &str) -> Result<Vec<SeriesSummary>, LabError> {
        let figure = figure.trim().to_lowercase();
        let series = self
            .all_series()
            .await?
            .iter()
            .filter(|s| figure.is_empty() || s.key.figure.key().contains(&figure))
            .map(summary)
            .collect();
        Ok(series)
    }

    /// Marks (or unmarks) `build` of series `id`: excluded from the fit,
    /// or its change acknowledged (by an admin or the owners of every
    /// label its runs carry); or, `kind` `claimant`, every point of every
    /// series that the point's uploader claimed (an admin only). The
    /// series and the build must exist.
    pub async fn mark_trend_point(
        &self,
        caller: &Caller,
        id: &str,
        build: &str,
        kind: &str,
        set: bool,
    ) -> Result<(), LabError> {
        let claimant_kind = kind.trim() == CLAIMANT;
        let kind: Option<MarkKind> = if claimant_kind {
            None
        } else {
            Some(kind.parse().map_err(|_| {
                LabError::invalid("kind", "`excluded`, `acknowledged` or `claimant`")
            })?)
        };
        let series = self.checked_series(id).await?;
        let Some(point) = series.points.iter().find(|p| p.build == build) else {
            return Err(LabError::NotFound(format!(
                "series {} has no build `{build}`",
                series.id
            )));
        };
        let Some(kind) = kind else {
            return self.mark_claimant(caller, &series, point, set).await;
        };
        self.may_mark(caller, point).await?;
        if set {
            self.store
                .set_trend_mark(&series.id, build, kind, &caller.name)
                .await?;
        } else {
            self.store.clear_trend_mark(&series.id, build, kind).await?;
        }
        self.forget_series();
        let action = match (kind, set) {
            (MarkKind::Excluded, true) => "exclude trend point",
            (MarkKind::Excluded, false) => "include trend point",
            (MarkKind::Acknowledged, true) => "acknowledge trend change",
            (MarkKind::Acknowledged, false) => "unacknowledge trend change",
        };
        self.note(
            caller,
            action,
            &format!("{build} of series {} ({})", series.id, series.figure_name),
        )
        .await;
        Ok(())
    }

    /// Whether `caller` may mark `point`: an admin, or an owner of every
    /// label its runs carry (a point of runs without a label is only
    /// admins'). A team's runner cannot hide another team's change.
    async fn may_mark(&self, caller: &Caller, point: &Point) -> Result<(), LabError> {
        if caller.role >= Role::Admin {
            return Ok(());
        }
        let mut labels = std::collections::BTreeSet::new();
        for run in &point.run_ids {
            if let Some(run) = self.store.run(*run).await? {
                labels.insert(run.label);
            }
        }
        let mut others = Vec::new();
        for label in &labels {
            let owners = if label.trim().is_empty() {
                Vec::new()
            } else {
                self.store.label_owners(label).await?
            };
            if !owners.contains(&caller.name) {
                others.push(if label.trim().is_empty() {
                    "(no label)".to_string()
                } else {
                    format!("`{label}`")
                });
            }
        }
        if others.is_empty() {
            return Ok(());
        }
        Err(LabError::Forbidden(format!(
            "the point {} comes from runs of {}: only the owners of those labels or an admin \
             may mark it",
            point.build,
            others.join(", ")
        )))
    }

    /// Leaves out (or takes back) every point the uploader of `point`'s
    /// commit claimed, in every series: an admin's call.
    async fn mark_claimant(
        &self,
        caller: &Caller,
        series: &Series,
        point: &Point,
        set: bool,
    ) -> Result<(), LabError> {
        caller.require(Action::Administer)?;
        let Some(claimant) = &point.claimed_by else {
            return Err(LabError::invalid(
                "build",
                format!(
                    "the point {} names no uploader: its commit is none, or the lab saw it",
                    point.build
                ),
            ));
        };
        if set {
            self.store.exclude_claimant(claimant, &caller.name).await?;
        } else {
            self.store.include_claimant(claimant).await?;
        }
        self.forget_series();
        let action = if set {
            "exclude claimant"
        } else {
            "include claimant"
        };
        self.note(
            caller,
            action,
            &format!(
                "every point {claimant} claimed (asked at {} of series {})",
                point.build, series.id
            ),
        )
        .await;
        Ok(())
    }

    /// Series `id`, read after checking its name.
    async fn checked_series(&self, id: &str) -> Result<Series, LabError> {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(LabError::invalid(
                "series",
                "a series is named by hex digits",
            ));
        }
        self.all_series()
            .await?
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| TrendError::NoSuchSeries(id.to_string()).into())
    }

    /// Series `id`, whole.
    pub async fn series_view(&self, id: &str) -> Result<SeriesView, LabError> {
        let series = self.checked_series(id).await?;
        let chart = series_chart(&series).map_err(|e| LabError::Internal(format!("chart: {e}")))?;
        Ok(SeriesView {
            summary: summary(&series),
            points: series
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| TrendPoint {
                    build: p.build.clone(),
                    median: series.key.figure.format(p.median),
                    interval: p.interval.map_or(String::new(), |(low, high)| {
                        format!(
                            "{} – {}",
                            series.key.figure.format(low),
                            series.key.figure.format(high)
                        )
                    }),
                    repeats: p.values.len(),
                    runs: p.run_ids.clone(),
                    release: p.order.is_release(),
                    outlier: series.analysis.outliers.contains(&i),
                    step: series.analysis.changes().any(|s| s.index == i),
                    excluded_by: series.excluded_by.get(&p.build).cloned(),
                    claimed_by: p.claimed_by.clone(),
                    claimant_excluded: p.claim_excluded_by.is_some(),
                })
                .collect(),
            changes: series
                .analysis
                .changes()
                .map(|s| change(&series, s))
                .collect(),
            chart,
        })
    }
}

fn change(series: &Series, step: &Step) -> TrendChange {
    let at = series.points.get(step.index);
    let before = step.index.checked_sub(1).and_then(|i| series.points.get(i));
    let compare = match (before, at) {
        (Some(b), Some(a)) => match (b.sides.first(), a.sides.first()) {
            (Some(b), Some(a)) => Some(format!("/compare?runs={b},{a}")),
            _ => None,
        },
        _ => None,
    };
    let build = at.map_or_else(String::new, |p| p.build.clone());
    TrendChange {
        acknowledged_by: series.acknowledged_by.get(&build).cloned(),
        claimed_by: at.and_then(|p| p.claimed_by.clone()),
        build,
        change: format!("{:+.1} %", step.change * 100.0),
        worse: step.worse,
        confirmed: step.confidence == Confidence::Confirmed,
        p: step.p,
        compare,
        dependencies: series
            .dependencies
            .get(&step.index)
            .map(|d| d.sentences())
            .unwrap_or_default(),
    }
}

fn summary(series: &Series) -> SeriesSummary {
    let figure = series.key.figure;
    let latest = series.points.last();
    SeriesSummary {
        id: series.id.clone(),
        figure: series.figure_name.clone(),
        higher_is_better: series.better == Better::Higher,
        scenario: series.key.scenario.describe(),
        machine: series.key.machine.to_string(),
        medians: series.points.iter().map(|p| p.median).collect(),
        latest_build: latest.map_or_else(String::new, |p| match &p.claimed_by {
            Some(who) => format!("{} (claimed by {who})", p.build),
            None => p.build.clone(),
        }),
        latest: latest.map_or_else(String::new, |p| {
            format!("{} {}", figure.format(p.median), figure.unit())
        }),
        // The latest change nobody acknowledged: the series' news.
        latest_change: series
            .analysis
            .changes()
            .map(|s| change(series, s))
            .filter(|c| c.acknowledged_by.is_none())
            .last(),
        creep: series.analysis.creep.as_ref().map(|c| {
            format!(
                "{:+.1} % from the best level since the last release",
                c.change * 100.0
            )
        }),
    }
}

/// A backfill's failure as the pages' kinds say it.
fn backfill_error(e: BackfillError) -> LabError {
    match e {
        BackfillError::Pypi(_) => LabError::Unavailable(e.to_string()),
        BackfillError::QueueFull { .. } | BackfillError::ShareFull { .. } => {
            LabError::Busy(e.to_string())
        }
        BackfillError::Store(e) => e.into(),
        other => LabError::invalid("range", other.to_string()),
    }
}
