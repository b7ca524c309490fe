//! The trends pages' views of the lab's series.

use app::api::{LabError, SeriesSummary, SeriesView, TrendChange, TrendPoint};
use domain::compare::Better;

use super::Lab;
use crate::trend::changepoint::{Confidence, Settings, Step};
use crate::trend::chart::series_chart;
use crate::trend::history::{load_one, load_series, Series, SeriesFilter};

impl Lab {
    /// Every series whose figure key holds `figure` (all when empty).
    pub async fn trend_summaries(&self, figure: &str) -> Result<Vec<SeriesSummary>, LabError> {
        let figure = figure.trim().to_lowercase();
        let series = load_series(&self.store, &SeriesFilter::default(), &Settings::default())
            .await?
            .into_iter()
            .filter(|s| figure.is_empty() || s.key.figure.key().contains(&figure))
            .map(|s| summary(&s))
            .collect();
        Ok(series)
    }

    /// Series `id`, whole.
    pub async fn series_view(&self, id: &str) -> Result<SeriesView, LabError> {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(LabError::invalid(
                "series",
                "a series is named by hex digits",
            ));
        }
        let series = load_one(&self.store, id, &Settings::default()).await?;
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
    TrendChange {
        build: at.map_or_else(String::new, |p| p.build.clone()),
        change: format!("{:+.1} %", step.change * 100.0),
        worse: step.worse,
        confirmed: step.confidence == Confidence::Confirmed,
        p: step.p,
        compare,
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
        latest_build: latest.map_or_else(String::new, |p| p.build.clone()),
        latest: latest.map_or_else(String::new, |p| {
            format!("{} {}", figure.format(p.median), figure.unit())
        }),
        latest_change: series.analysis.changes().last().map(|s| change(series, s)),
        creep: series.analysis.creep.as_ref().map(|c| {
            format!(
                "{:+.1} % from the best level since the last release",
                c.change * 100.0
            )
        }),
    }
}
