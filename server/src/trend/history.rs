//! The lab's history as series: every finished scenario's figures, grouped
//! by figure, scenario and machine class, pooled by mite build into points,
//! ordered (releases by version, commits by commit time) and read by the
//! change-point detector.

use std::collections::BTreeMap;

use domain::compare::{Better, Figure};
use domain::dependencies::Resolution;
use domain::provenance::{BuildProvenance, DependencyDifference};
use domain::series::{sort_points, MachineClass, MarkKind, PointOrder, ScenarioKey, SeriesKey};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::compare::stats::{mean_and_variance, median};
use crate::store::{Store, StoreError};

use super::changepoint::{analyse_excluding, Analysis, SeriesError, Settings};

/// One mite build's repeats in a series, pooled.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    /// `2.11.0`, `2.12.0.dev0 @ 1a2b3c4d5e`.
    pub build: String,
    pub order: PointOrder,
    /// When its first repeat ran (ms since the epoch).
    pub first_ran_at: i64,
    /// One value per repeat, in the order they ran.
    pub values: Vec<f64>,
    pub median: f64,
    /// A 95 % interval of the build's level (Student's t on the logs of
    /// its repeats); none from a single repeat.
    pub interval: Option<(f64, f64)>,
    /// The runs its repeats came from.
    pub run_ids: Vec<i64>,
    /// The same as compare sides: `12`, or `12:2` for build 2 of a run
    /// that measured several.
    pub sides: Vec<String>,
    /// Whose word its commit is (an uploaded wheel's uploader, `token:ci`):
    /// such repeats are pooled apart from the commit's other measurements.
    /// `None`: the lab saw the commit, or the build has none.
    pub claimed_by: Option<String>,
    /// The admin who left out every point its claimant claimed, if one did.
    pub claim_excluded_by: Option<String>,
    /// The packages its first repeat ran with (`name==version`; empty: a
    /// run made before the lab kept them), and how they were resolved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    pub resolution: Option<Resolution>,
    /// Some of its repeats ran with other packages than the first (runs of
    /// one release made as of other snapshots): its level mixes them.
    pub packages_vary: bool,
}

/// A series with its points in order and what the detector found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Series {
    /// A stable name for links (`/trends/ID`): a hash of the key.
    pub id: String,
    pub key: SeriesKey,
    /// `requests per runner CPU-s`, and whether higher is better.
    pub figure_name: String,
    pub better: Better,
    pub points: Vec<Point>,
    pub analysis: Analysis,
    /// Builds a member excluded from the fit, and builds whose change a
    /// member acknowledged: build → who.
    pub excluded_by: BTreeMap<String, String>,
    pub acknowledged_by: BTreeMap<String, String>,
    /// For each flagged step (by the index of its first point): what
    /// differs between the packages of the point before it and its own,
    /// when anything does. A step there may be the environment's, not
    /// mite's.
    pub dependencies: BTreeMap<usize, DependencyDifference>,
}

/// Which series to read. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct SeriesFilter {
    /// Figure keys (`requests_per_runner_cpu_second`).
    pub figures: Vec<String>,
    /// A part of the scenario's name.
    pub scenario: Option<String>,
    pub concurrency: Option<u32>,
    /// A part of the machine class.
    pub machine: Option<String>,
    /// A part of the runs' label.
    pub label: String,
}

impl SeriesFilter {
    fn wants(&self, key: &SeriesKey) -> bool {
        let has = |text: &str, part: &Option<String>| {
            part.as_ref()
                .is_none_or(|p| text.to_lowercase().contains(&p.to_lowercase()))
        };
        (self.figures.is_empty() || self.figures.contains(&key.figure.key()))
            && has(&key.scenario.scenario, &self.scenario)
            && self
                .concurrency
                .is_none_or(|c| c == key.scenario.concurrency)
            && has(&key.machine.0, &self.machine)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrendError {
    #[error("no series {0}: it may have had no finished scenario since")]
    NoSuchSeries(String),
    #[error("`{figure}` is no figure: give one of {}", figure_keys().join(", "))]
    NoSuchFigure { figure: String },
    #[error(transparent)]
    Series(#[from] SeriesError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// As the pages see it: an unknown figure or series is bad input or not
/// found; the store keeps its own kinds.
impl From<TrendError> for app::api::LabError {
    fn from(e: TrendError) -> Self {
        match e {
            TrendError::NoSuchFigure { .. } => app::api::LabError::invalid("figure", e.to_string()),
            TrendError::NoSuchSeries(_) => app::api::LabError::NotFound(e.to_string()),
            TrendError::Series(e) => app::api::LabError::Internal(e.to_string()),
            TrendError::Store(e) => e.into(),
        }
    }
}

/// Every figure's key, as `--figure` takes them.
pub fn figure_keys() -> Vec<String> {
    Figure::all().iter().map(Figure::key).collect()
}

/// The series of the lab's finished scenarios that `filter` wants.
pub async fn load_series(
    store: &Store,
    filter: &SeriesFilter,
    settings: &Settings,
) -> Result<Vec<Series>, TrendError> {
    if let Some(unknown) = filter.figures.iter().find(|f| !figure_keys().contains(f)) {
        return Err(TrendError::NoSuchFigure {
            figure: unknown.clone(),
        });
    }
    // Series → build → its repeats.
    let mut gathered: BTreeMap<SeriesKey, BTreeMap<String, Point>> = BTreeMap::new();
    let uploaders = store.wheel_uploaders().await?;
    for scenario in store.finished_scenarios(&filter.label).await? {
        let provenance = &scenario.provenance;
        let Some(build) = provenance.builds.get(scenario.build_index as usize) else {
            continue;
        };
        let claimant = claimant_of(build, &uploaders);
        let concurrency = scenario.concurrency as u32;
        let ran_at = scenario.started_at.unwrap_or(scenario.run_created_at);
        let run_id = scenario.run_id;
        for figure in Figure::all() {
            let Some(value) = figure.value(&scenario.figures, concurrency) else {
                continue;
            };
            let key = SeriesKey {
                scenario: ScenarioKey::of(provenance, concurrency),
                figure,
                machine: MachineClass::of(provenance, build),
            };
            if !filter.wants(&key) {
                continue;
            }
            let point = gathered
                .entry(key)
                .or_default()
                .entry(pooling_key(build, run_id, claimant.as_deref()))
                .or_insert_with(|| Point {
                    build: build.describe(),
                    order: PointOrder::of(build, ran_at),
                    first_ran_at: ran_at,
                    values: Vec::new(),
                    median: 0.0,
                    interval: None,
                    run_ids: Vec::new(),
                    sides: Vec::new(),
                    claimed_by: claimant.clone(),
                    claim_excluded_by: None,
                    packages: build.packages.clone(),
                    resolution: build.resolution.clone(),
                    packages_vary: false,
                });
            if point.packages != build.packages {
                point.packages_vary = true;
            }
            point.values.push(value);
            point.first_ran_at = point.first_ran_at.min(ran_at);
            if !point.run_ids.contains(&run_id) {
                point.run_ids.push(run_id);
                point.sides.push(if provenance.builds.len() > 1 {
                    format!("{run_id}:{}", scenario.build_index + 1)
                } else {
                    run_id.to_string()
                });
            }
        }
    }
    let marks = store.trend_marks().await?;
    let excluded_claimants = store.claimant_exclusions().await?;
    gathered
        .into_iter()
        .map(|(key, builds)| {
            let id = series_id(&key);
            let marked = |kind: MarkKind| -> BTreeMap<String, String> {
                marks
                    .iter()
                    .filter(|m| m.series_id == id && m.kind == kind)
                    .map(|m| (m.build.clone(), m.marked_by.clone()))
                    .collect()
            };
            let (mut excluded_by, acknowledged_by) =
                (marked(MarkKind::Excluded), marked(MarkKind::Acknowledged));
            let mut points: Vec<Point> = builds
                .into_values()
                .map(|mut p| {
                    p.median = median(&p.values);
                    p.interval = interval(&p.values);
                    p
                })
                .collect();
            sort_points(&mut points, |p| (&p.order, p.first_ran_at));
            // A claimant an admin left out: each of its points, as if
            // excluded one by one.
            for point in &mut points {
                if let Some((claimant, by)) = point
                    .claimed_by
                    .as_ref()
                    .and_then(|c| excluded_claimants.get_key_value(c))
                {
                    excluded_by
                        .entry(point.build.clone())
                        .or_insert_with(|| format!("{by} (every point {claimant} claimed)"));
                    point.claim_excluded_by = Some(by.clone());
                }
            }
            let better = key.figure.better();
            let medians: Vec<f64> = points.iter().map(|p| p.median).collect();
            let releases: Vec<usize> = (0..points.len())
                .filter(|&i| points[i].order.is_release())
                .collect();
            let excluded: Vec<usize> = (0..points.len())
                .filter(|&i| excluded_by.contains_key(&points[i].build))
                .collect();
            let analysis = analyse_excluding(&medians, better, &releases, &excluded, settings)?;
            let dependencies = step_dependencies(&points, &analysis);
            Ok(Series {
                id,
                excluded_by,
                acknowledged_by,
                figure_name: key.figure.name(),
                better,
                key,
                points,
                analysis,
                dependencies,
            })
        })
        .collect()
}

/// What differs between the packages on the two sides of each flagged
/// step: the last fitted point before it (outliers and excluded points
/// skipped) and its first point.
pub fn step_dependencies(
    points: &[Point],
    analysis: &Analysis,
) -> BTreeMap<usize, DependencyDifference> {
    analysis
        .changes()
        .filter_map(|step| {
            let after = points.get(step.index)?;
            let before = (0..step.index)
                .rev()
                .find(|i| !analysis.outliers.contains(i) && !analysis.excluded.contains(i))
                .or(step.index.checked_sub(1))
                .and_then(|i| points.get(i))?;
            DependencyDifference::of_lists(
                (&before.packages, before.resolution.as_ref()),
                (&after.packages, after.resolution.as_ref()),
            )
            .map(|difference| (step.index, difference))
        })
        .collect()
}

/// The series `id` (as [`series_id`] names it).
pub async fn load_one(store: &Store, id: &str, settings: &Settings) -> Result<Series, TrendError> {
    load_series(store, &SeriesFilter::default(), settings)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| TrendError::NoSuchSeries(id.to_string()))
}

/// A series' id: the first 16 hex digits of the SHA-256 of its key.
pub fn series_id(key: &SeriesKey) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(key).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// Whose word a build's commit is: its provenance says (an uploaded
/// wheel's uploader); for a run recorded before it did, an uploaded wheel
/// (`upload:SHA`) naming a commit is its uploader's word.
pub fn claimant_of(
    build: &BuildProvenance,
    uploaders: &std::collections::HashMap<String, String>,
) -> Option<String> {
    if let Some(claimant) = &build.claimed_by {
        return Some(claimant.clone());
    }
    match (&build.git_commit, &build.wheel_sha256) {
        (Some(_), Some(sha)) if build.asked.starts_with(domain::builds::UPLOADED_PREFIX) => Some(
            uploaders
                .get(sha)
                .cloned()
                .unwrap_or_else(|| "an uploader".to_string()),
        ),
        _ => None,
    }
}

/// Which repeats are one build: a release by its version, a commit by its
/// hash, a wheel by its hash. A checkout with uncommitted changes is its
/// run's own (the next run's changes may differ). A commit an uploader
/// claimed is pooled with that uploader's claims of it only, never with
/// what the lab saw of the commit (FAULTS.md 55).
fn pooling_key(build: &BuildProvenance, run_id: i64, claimant: Option<&str>) -> String {
    if let (Some(commit), Some(claimant)) = (&build.git_commit, claimant) {
        return format!("{commit} claimed by {claimant}");
    }
    match (&build.git_commit, build.git_dirty, &build.wheel_sha256) {
        (Some(commit), Some(true), _) => format!("{commit} dirty in run {run_id}"),
        (Some(commit), _, _) => commit.clone(),
        (None, _, Some(sha)) => format!("wheel {sha}"),
        _ => format!("version {}", build.mite_version),
    }
}

/// A 95 % interval of the level of `values` (Student's t on their logs,
/// back as a ratio interval around their geometric mean); none from fewer
/// than two.
fn interval(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 || values.iter().any(|v| *v <= 0.0) {
        return None;
    }
    let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
    let (mean, variance) = mean_and_variance(&logs);
    let sd = variance.sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .ok()?
        .inverse_cdf(0.975);
    let half = t * sd / (n as f64).sqrt();
    Some(((mean - half).exp(), (mean + half).exp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builds_interval_holds_its_level() {
        assert_eq!(interval(&[100.0]), None);
        let (low, high) = interval(&[98.0, 100.0, 102.0]).expect("an interval");
        assert!(low < 100.0 && high > 100.0, "{low} {high}");
        // t(0.975, 2) = 4.303: the interval is wide with three repeats.
        assert!(high / low > 1.08 && high / low < 1.12, "{low} {high}");
        let (same_low, same_high) = interval(&[5.0, 5.0]).expect("an interval");
        assert!((same_low - 5.0).abs() < 1e-9 && (same_high - 5.0).abs() < 1e-9);
    }

    #[test]
    fn a_step_whose_sides_ran_with_other_packages_says_which() {
        use super::super::changepoint::analyse;
        use super::super::format::{render, TrendFormat};
        use domain::series::{MachineClass, ScenarioKey};
        // As issue 30 found it: the last release ran in another venv.
        let values = [1000.0, 1002.0, 998.0, 1001.0, 999.0, 1000.0, 1049.0, 1050.0];
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                build: format!("2.{}.0", i + 4),
                order: PointOrder::Release(vec![2, i as u64 + 4, 0]),
                first_ran_at: i as i64,
                values: vec![*v],
                median: *v,
                interval: None,
                run_ids: vec![i as i64 + 1],
                sides: vec![(i + 1).to_string()],
                claimed_by: None,
                claim_excluded_by: None,
                packages: vec![
                    format!("mite==2.{}.0", i + 4),
                    if i < 6 {
                        "multidict==7.2.1"
                    } else {
                        "multidict==6.9.1"
                    }
                    .to_string(),
                ],
                resolution: None,
                packages_vary: false,
            })
            .collect();
        let analysis = analyse(
            &values,
            Figure::PeakRss(domain::model::ProcessKind::Duplicator).better(),
            &[],
            &Settings::default(),
        )
        .expect("valid");
        let steps: Vec<usize> = analysis.changes().map(|s| s.index).collect();
        assert_eq!(steps, [6], "{analysis:?}");
        let dependencies = step_dependencies(&points, &analysis);
        let difference = dependencies.get(&6).expect("the step's difference");
        assert_eq!(difference.changes[0].describe(), "multidict 7.2.1 → 6.9.1");
        // The same packages on both sides: nothing said.
        let mut alike = points.clone();
        for p in &mut alike {
            p.packages[1] = "multidict==7.2.1".into();
        }
        assert!(step_dependencies(&alike, &analysis).is_empty());
        let figure = Figure::PeakRss(domain::model::ProcessKind::Duplicator);
        let series = Series {
            id: "0123456789abcdef".into(),
            key: SeriesKey {
                scenario: ScenarioKey {
                    scenario: "built-in".into(),
                    source_sha256: "ab".into(),
                    concurrency: 10,
                    duration_ms: 10_000,
                    target: "built-in".into(),
                    requests: None,
                    valgrind: false,
                },
                figure,
                machine: MachineClass("m".into()),
            },
            figure_name: figure.name(),
            better: figure.better(),
            points,
            analysis,
            excluded_by: BTreeMap::new(),
            acknowledged_by: BTreeMap::new(),
            dependencies,
        };
        let text = render(&[series], TrendFormat::Text, false);
        assert!(
            text.contains("change at 2.10.0: +")
                && text.contains("but the builds ran with other packages (mite aside; base to new): multidict 7.2.1 → 6.9.1"),
            "{text}"
        );
    }

    #[test]
    fn repeats_pool_by_build_and_a_dirty_checkout_stays_its_runs() {
        let release = BuildProvenance {
            mite_version: "2.11.0".into(),
            ..BuildProvenance::default()
        };
        assert_eq!(
            pooling_key(&release, 1, None),
            pooling_key(&release, 2, None)
        );
        let commit = BuildProvenance {
            git_commit: Some("abc".into()),
            git_dirty: Some(false),
            ..release.clone()
        };
        assert_eq!(pooling_key(&commit, 1, None), pooling_key(&commit, 2, None));
        assert_ne!(
            pooling_key(&commit, 1, None),
            pooling_key(&release, 1, None)
        );
        let dirty = BuildProvenance {
            git_dirty: Some(true),
            ..commit.clone()
        };
        assert_ne!(pooling_key(&dirty, 1, None), pooling_key(&dirty, 2, None));
        // An uploader's claim of the commit is pooled apart from what the
        // lab saw of it, and from another uploader's claim.
        assert_ne!(
            pooling_key(&commit, 1, Some("token:ci")),
            pooling_key(&commit, 1, None)
        );
        assert_eq!(
            pooling_key(&commit, 1, Some("token:ci")),
            pooling_key(&commit, 2, Some("token:ci"))
        );
        assert_ne!(
            pooling_key(&commit, 1, Some("token:ci")),
            pooling_key(&commit, 1, Some("token:other"))
        );
    }
}
