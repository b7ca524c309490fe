//! Series for people (a terminal) and for programs (JSON).

use domain::compare::Better;

use crate::compare::format::terminal_safe;

use super::changepoint::{Confidence, Step};
use super::history::Series;

/// The formats `mite-perf trend --format` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrendFormat {
    Text,
    Json,
}

pub fn render(series: &[Series], format: TrendFormat, points: bool) -> String {
    match format {
        TrendFormat::Json => serde_json::to_string_pretty(series).unwrap_or_default() + "\n",
        TrendFormat::Text if series.is_empty() => {
            "no series: no finished scenario matches (runs stored before provenance have none)\n"
                .into()
        }
        TrendFormat::Text => terminal_safe(
            &series
                .iter()
                .map(|s| text(s, points))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

fn step_line(series: &Series, step: &Step) -> String {
    let build = series
        .points
        .get(step.index)
        .map_or("?", |p| p.build.as_str());
    let direction = if step.worse { "worse" } else { "better" };
    let confidence = match step.confidence {
        Confidence::Suspected => "suspected",
        Confidence::Confirmed => "confirmed",
    };
    let acknowledged = series
        .acknowledged_by
        .get(build)
        .map(|who| format!(", acknowledged by {who}"))
        .unwrap_or_default();
    let claimed = series
        .points
        .get(step.index)
        .and_then(|p| p.claimed_by.as_ref())
        .map(|who| format!(", its commit claimed by {who}"))
        .unwrap_or_default();
    format!(
        "change at {build}: {:+.1} % ({direction}, {confidence}, p {:.2e}{acknowledged}{claimed})",
        step.change * 100.0,
        step.p
    )
}

fn text(series: &Series, points: bool) -> String {
    let figure = series.key.figure;
    let better = match series.better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    let mut out = format!(
        "{} ({better})\n  {}\n  on {}\n",
        series.figure_name,
        series.key.scenario.describe(),
        series.key.machine
    );
    if let Some(latest) = series.points.last() {
        out.push_str(&format!(
            "  {} point(s); latest {}{}: {} {}\n",
            series.points.len(),
            latest.build,
            latest
                .claimed_by
                .as_ref()
                .map(|who| format!(" (commit claimed by {who})"))
                .unwrap_or_default(),
            figure.format(latest.median),
            figure.unit()
        ));
    }
    let changes: Vec<&Step> = series.analysis.changes().collect();
    if changes.is_empty() {
        out.push_str("  no change found\n");
    }
    for step in changes {
        out.push_str(&format!("  {}\n", step_line(series, step)));
        // Its two sides ran with other packages: the step may be theirs.
        if let Some(difference) = series.dependencies.get(&step.index) {
            for sentence in difference.sentences() {
                out.push_str(&format!("    but {sentence}\n"));
            }
        }
        if series
            .points
            .get(step.index)
            .is_some_and(|p| p.packages_vary)
        {
            out.push_str("    and its repeats ran with other packages from one run to another\n");
        }
    }
    if let Some(creep) = &series.analysis.creep {
        let at = |i: usize| series.points.get(i).map_or("?", |p| p.build.as_str());
        out.push_str(&format!(
            "  creep: {:+.1} % from the best level since the last release (from {}) \
             to the latest (from {})\n",
            creep.change * 100.0,
            at(creep.best_at),
            at(creep.latest_at)
        ));
    }
    if points {
        out.push_str(&format!(
            "  {:<32} {:>12} {:>25} {:>7}  runs\n",
            "build", "median", "95 % interval", "repeats"
        ));
        for (i, point) in series.points.iter().enumerate() {
            let mut marks = Vec::new();
            let claimed = point
                .claimed_by
                .as_ref()
                .map(|who| format!("commit claimed by {who}"));
            if let Some(claimed) = &claimed {
                marks.push(claimed.as_str());
            }
            if point.order.is_release() {
                marks.push("release");
            }
            if series.analysis.outliers.contains(&i) {
                marks.push("outlier");
            }
            if series.analysis.excluded.contains(&i) {
                marks.push("excluded");
            }
            if series.analysis.changes().any(|s| s.index == i) {
                marks.push("step");
            }
            let interval = point.interval.map_or(String::from("-"), |(low, high)| {
                format!("{} – {}", figure.format(low), figure.format(high))
            });
            let runs: Vec<String> = point.run_ids.iter().map(i64::to_string).collect();
            let build = point.build.as_str();
            out.push_str(&format!(
                "  {:<32} {:>12} {:>25} {:>7}  {}{}\n",
                build,
                figure.format(point.median),
                interval,
                point.values.len(),
                runs.join(","),
                if marks.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", marks.join(", "))
                }
            ));
        }
    }
    out
}
