//! A run's figures per build and concurrency over its repeats (median,
//! quartiles, range): the version matrix its page shows as a table and as
//! charts, and its CSV (one row per build × concurrency × figure).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use app::api::ChartSpec;
use charming::component::{Axis, Legend, Title};
use charming::element::{AxisType, Tooltip, Trigger};
use charming::series::Line;
use charming::Chart;
use domain::compare::{Figure, Spread};
use domain::figures::ScenarioFigures;
use domain::matrix::{MatrixRow, RunMatrix};

use crate::model::ScenarioStatus;
use crate::store::{Store, StoreError};

/// Run `run_id`'s matrix from every finished scenario; `None` when there is
/// no such run.
pub async fn run_matrix(store: &Store, run_id: i64) -> Result<Option<RunMatrix>, StoreError> {
    let Some(run) = store.run(run_id).await? else {
        return Ok(None);
    };
    let mut groups: BTreeMap<(i64, u32), Vec<ScenarioFigures>> = BTreeMap::new();
    for scenario in store.scenarios(run_id).await? {
        if scenario.status != ScenarioStatus::Done {
            continue;
        }
        if let Some(figures) = store.stored_figures(scenario.id).await? {
            groups
                .entry((scenario.build_index, scenario.concurrency as u32))
                .or_default()
                .push(figures);
        }
    }
    // Runs older than provenance name their builds as asked for, or by
    // the one mite version they recorded.
    let asked = run.params.builds();
    let mut builds: Vec<String> = match &run.provenance {
        Some(p) if !p.builds.is_empty() => p.builds.iter().map(|b| b.describe()).collect(),
        _ if asked.len() == 1 => vec![run.environment.mite_version.clone()],
        _ => asked.iter().map(ToString::to_string).collect(),
    };
    // How mite scaled out: each build with the runners it ran on.
    if run.params.runners > 1 {
        for build in &mut builds {
            build.push_str(&format!(" × {} runners", run.params.runners));
        }
    }
    let name = |build: i64| {
        builds
            .get(build as usize)
            .cloned()
            .unwrap_or_else(|| format!("build {}", build + 1))
    };
    let rows = matrix_rows(&groups, name);
    let charts = matrix_charts(&builds, &rows)?;
    Ok(Some(RunMatrix {
        builds,
        rows,
        charts,
    }))
}

/// The rows of grouped figures (pure).
pub fn matrix_rows(
    groups: &BTreeMap<(i64, u32), Vec<ScenarioFigures>>,
    build_name: impl Fn(i64) -> String,
) -> Vec<MatrixRow> {
    let mut rows = Vec::new();
    for ((build, concurrency), figures) in groups {
        for figure in Figure::all() {
            let values: Vec<f64> = figures
                .iter()
                .filter_map(|f| figure.value(f, *concurrency))
                .collect();
            if let Some(spread) = Spread::of(&values) {
                rows.push(MatrixRow {
                    build: *build as usize + 1,
                    build_name: build_name(*build),
                    concurrency: *concurrency,
                    figure,
                    spread,
                });
            }
        }
    }
    rows
}

/// The matrix's charts (pure): per figure, its median against the number
/// of concurrent journeys (a log axis), one line per build; the memory
/// figures of mite's processes share a chart per kind (peak, mean).
pub fn matrix_charts(
    builds: &[String],
    rows: &[MatrixRow],
) -> Result<Vec<ChartSpec>, serde_json::Error> {
    // Each figure of its own, then the memory figures of mite's processes
    // together, a chart per kind.
    let mut panels: Vec<(String, &str, Vec<Figure>)> = [
        Figure::RequestsPerSecond,
        Figure::RequestsPerRunnerCpuSecond,
        Figure::MibPerJourney,
        Figure::LatencyP99,
    ]
    .into_iter()
    .map(|f| (f.name(), f.unit(), vec![f]))
    .collect();
    let all = Figure::all();
    for (title, kind) in [("peak RSS", true), ("mean RSS", false)] {
        let figures = all
            .iter()
            .filter(|f| {
                matches!(
                    (f, kind),
                    (Figure::PeakRss(_), true) | (Figure::MeanRss(_), false)
                )
            })
            .copied()
            .collect();
        panels.push((title.to_string(), "MiB", figures));
    }
    let mut specs = Vec::new();
    for (title, unit, figures) in panels {
        let mut chart = Chart::new()
            .title(Title::new().text(format!("{title}, median over repeats")))
            .tooltip(Tooltip::new().trigger(Trigger::Axis))
            .legend(Legend::new().top("bottom"))
            .x_axis(
                Axis::new()
                    .type_(AxisType::Log)
                    .log_base(10.0)
                    .name("concurrent journeys"),
            )
            .y_axis(Axis::new().type_(AxisType::Value).name(unit));
        let mut any = false;
        for figure in figures {
            for (b, build_name) in builds.iter().enumerate() {
                let points: Vec<Vec<f64>> = rows
                    .iter()
                    .filter(|r| r.build == b + 1 && r.figure == figure)
                    .map(|r| vec![f64::from(r.concurrency), r.spread.median])
                    .collect();
                if points.is_empty() {
                    continue;
                }
                any = true;
                let name = match figure {
                    Figure::PeakRss(p) | Figure::MeanRss(p) => {
                        format!("b{} {build_name}: {p}", b + 1)
                    }
                    _ => format!("b{} {build_name}", b + 1),
                };
                chart = chart.series(Line::new().name(name).data(points));
            }
        }
        if any {
            specs.push(ChartSpec {
                slot: specs.len(),
                group: "matrix".into(),
                option_json: serde_json::to_string(&chart)?,
            });
        }
    }
    Ok(specs)
}

/// The rows as CSV.
pub fn matrix_csv(run_id: i64, rows: &[MatrixRow]) -> String {
    let mut out =
        String::from("run,build,mite,concurrency,figure,median,q1,q3,min,max,repeats,unstable\n");
    for r in rows {
        let s = &r.spread;
        let _ = writeln!(
            out,
            "{run_id},{},{},{},{},{},{},{},{},{},{},{}",
            r.build,
            crate::reports::csv::text_cell(&r.build_name),
            r.concurrency,
            r.figure.key(),
            s.median,
            s.q1,
            s.q3,
            s.min,
            s.max,
            s.repeats,
            s.unstable()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rps: f64) -> ScenarioFigures {
        ScenarioFigures {
            total_requests: (rps * 10.0) as i64,
            measured_seconds: 10.0,
            mean_requests_per_second: rps,
            peak_requests_per_second: rps,
            requests_per_runner_cpu_second: None,
            processes: vec![],
            steady: None,
            other_cpu: None,
            runners: None,
            runners_peak_rss: None,
            latency_p99_ms: None,
            instruction_totals: Vec::new(),
            instructions: Vec::new(),
        }
    }

    #[test]
    fn each_build_and_concurrency_gets_its_spread() {
        let mut groups = BTreeMap::new();
        groups.insert((0, 10), vec![figures(100.0), figures(110.0), figures(90.0)]);
        groups.insert((1, 10), vec![figures(50.0)]);
        let rows = matrix_rows(&groups, |b| format!("2.{b}.0"));
        // Only requests/s was measured here.
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].build, rows[0].spread.median, rows[0].spread.repeats),
            (1, 100.0, 3)
        );
        assert!(rows[0].spread.unstable());
        assert_eq!((rows[1].build, rows[1].build_name.as_str()), (2, "2.1.0"));
        let csv = matrix_csv(7, &rows);
        assert_eq!(
            csv.lines().nth(1),
            Some("7,1,2.0.0,10,requests_per_second,100,95,105,90,110,3,true")
        );
        assert_eq!(csv.lines().count(), 3);
    }

    #[test]
    fn charts_draw_each_builds_medians_against_concurrency() {
        let mut groups = BTreeMap::new();
        let mut hungry = figures(100.0);
        hungry.processes = vec![domain::figures::ProcessFigures {
            process: crate::model::ProcessKind::Runner,
            mean_cpu: 50.0,
            peak_cpu: 90.0,
            peak_rss: 40 << 20,
            mean_rss: Some(30 << 20),
            busy_share: None,
        }];
        groups.insert((0, 1), vec![hungry.clone()]);
        groups.insert((0, 10), vec![figures(300.0)]);
        groups.insert((1, 10), vec![figures(250.0)]);
        let builds = vec!["2.10.0".to_string(), "2.11.0".to_string()];
        let rows = matrix_rows(&groups, |b| builds[b as usize].clone());
        let charts = matrix_charts(&builds, &rows).expect("charts");
        // requests/s; MiB per journey, peak and mean RSS (build 1 at 1 journey).
        let slots: Vec<usize> = charts.iter().map(|c| c.slot).collect();
        assert_eq!(slots, [0, 1, 2, 3]);
        let rps: serde_json::Value = serde_json::from_str(&charts[0].option_json).expect("json");
        assert_eq!(rps["xAxis"]["type"], "log", "{rps}");
        let series = rps["series"].as_array().expect("series");
        assert_eq!(series.len(), 2, "{rps}");
        assert_eq!(series[0]["name"], "b1 2.10.0");
        assert_eq!(
            series[0]["data"],
            serde_json::json!([[1.0, 100.0], [10.0, 300.0]])
        );
        assert_eq!(series[1]["name"], "b2 2.11.0");
        assert_eq!(series[1]["data"], serde_json::json!([[10.0, 250.0]]));
        let peak: serde_json::Value = serde_json::from_str(&charts[2].option_json).expect("json");
        assert_eq!(peak["series"][0]["name"], "b1 2.10.0: runner", "{peak}");
        assert_eq!(peak["series"][0]["data"], serde_json::json!([[1.0, 40.0]]));
    }
}
