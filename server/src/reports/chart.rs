//! `chart.html`: per scenario, CPU, memory and throughput per process, as
//! interactive ECharts charts (zoom, tooltips, legend toggles) built with
//! charming. ECharts is inlined, so the file renders with no network.

use std::path::Path;

use charming::component::{Axis, DataZoom, DataZoomType, Legend, Title};
use charming::element::{AxisType, Tooltip, Trigger};
use charming::series::Line;
use charming::Chart;

use app::api::{ChartPoints, ChartSeries, ChartSpec, ScenarioCharts, SeriesPoints};
use domain::chart_spec::CHARTS_PER_SCENARIO;

use super::ReportError;
use crate::model::Sample;
use crate::model::{format_duration, ProcessKind, RunStatus};
use crate::store::{ScenarioRecord, Store};

/// ECharts, from the npm `echarts` package that set-up installs.
pub const ECHARTS_JS: &str = include_str!("../../../node_modules/echarts/dist/echarts.min.js");

const MIB: f64 = 1024.0 * 1024.0;

/// What a chart plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Memory,
    Throughput,
    Threads,
    OpenFiles,
    ContextSwitches,
    DiskIo,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::Throughput,
        Metric::Threads,
        Metric::OpenFiles,
        Metric::ContextSwitches,
        Metric::DiskIo,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Metric::Cpu => "CPU (% of one core)",
            Metric::Memory => "Memory (RSS, MiB)",
            Metric::Throughput => "Requests served per second",
            Metric::Threads => "Threads",
            Metric::OpenFiles => "Open file descriptors",
            Metric::ContextSwitches => "Context switches per second (main thread)",
            Metric::DiskIo => "Storage read + written (MiB/s)",
        }
    }

    /// The value a chart of this metric draws for a sample, if it has one.
    fn detail_value(self, s: &Sample, per_second: f64) -> Option<f64> {
        let d = s.detail?;
        Some(match self {
            Metric::Threads => d.threads as f64,
            Metric::OpenFiles => d.fds as f64,
            Metric::ContextSwitches => {
                ((d.voluntary_switches + d.involuntary_switches) as f64 * per_second).round()
            }
            Metric::DiskIo => {
                ((d.read_bytes + d.write_bytes) as f64 * per_second / MIB * 100.0).round() / 100.0
            }
            Metric::Cpu | Metric::Memory | Metric::Throughput => return None,
        })
    }
}

pub(crate) fn base_chart(title: &str, y_name: &str) -> Chart {
    Chart::new()
        .title(Title::new().text(title))
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().top("bottom"))
        .x_axis(Axis::new().type_(AxisType::Value).name("elapsed (s)"))
        .y_axis(Axis::new().type_(AxisType::Value).name(y_name))
        .data_zoom(DataZoom::new().type_(DataZoomType::Inside))
        .data_zoom(DataZoom::new().type_(DataZoomType::Slider).bottom(30))
}

/// A series per process, by `value`: named by kind, or by kind and pid for
/// a kind with several processes (the runners of a scenario with several).
fn process_series(samples: &[Sample], value: impl Fn(&Sample) -> Option<f64>) -> Vec<SeriesPoints> {
    let x = |s: &Sample| s.elapsed_ms as f64 / 1000.0;
    let mut series = Vec::new();
    for kind in ProcessKind::ALL {
        let mut pids: Vec<i64> = samples
            .iter()
            .filter(|s| s.process == kind)
            .map(|s| s.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        for pid in &pids {
            let points: Vec<[f64; 2]> = samples
                .iter()
                .filter(|s| s.process == kind && s.pid == *pid)
                .filter_map(|s| Some([x(s), value(s)?]))
                .collect();
            if points.is_empty() {
                continue;
            }
            let name = if pids.len() > 1 {
                format!("{} {pid}", kind.as_str())
            } else {
                kind.as_str().to_string()
            };
            series.push(SeriesPoints { name, points });
        }
    }
    series
}

/// One metric's series for one scenario's samples: a name and its
/// `[elapsed seconds, value]` points each.
pub fn metric_series(metric: Metric, samples: &[Sample], interval_ms: i64) -> Vec<SeriesPoints> {
    let x = |s: &Sample| s.elapsed_ms as f64 / 1000.0;
    let per_second = 1000.0 / interval_ms.max(1) as f64;
    match metric {
        Metric::Cpu => process_series(samples, |s| Some((s.cpu * 10.0).round() / 10.0)),
        Metric::Memory => process_series(samples, |s| {
            Some((s.mem as f64 / MIB * 10.0).round() / 10.0)
        }),
        Metric::Threads | Metric::OpenFiles | Metric::ContextSwitches | Metric::DiskIo => {
            process_series(samples, |s| metric.detail_value(s, per_second))
        }
        Metric::Throughput => {
            let points = samples
                .iter()
                .filter(|s| s.process == ProcessKind::Target)
                .filter_map(|s| {
                    let n = s.requests_in_interval?;
                    Some([x(s), (n as f64 * per_second).round()])
                })
                .collect();
            vec![SeriesPoints {
                name: "target".to_string(),
                points,
            }]
        }
    }
}

/// An empty chart of `metric`, titled `title`.
pub fn metric_axes(metric: Metric, title: &str) -> Chart {
    base_chart(
        title,
        match metric {
            Metric::Cpu => "%",
            Metric::Memory => "MiB",
            Metric::Throughput => "req/s",
            Metric::Threads => "threads",
            Metric::OpenFiles => "fds",
            Metric::ContextSwitches => "switches/s",
            Metric::DiskIo => "MiB/s",
        },
    )
}

/// One metric's chart for one scenario's samples.
pub fn metric_chart(metric: Metric, samples: &[Sample], interval_ms: i64) -> Chart {
    let mut chart = metric_axes(metric, metric.title());
    for series in metric_series(metric, samples, interval_ms) {
        let points: Vec<Vec<f64>> = series.points.iter().map(|p| p.to_vec()).collect();
        chart = chart.series(
            Line::new()
                .name(series.name.as_str())
                .show_symbol(false)
                .data(points),
        );
    }
    chart
}

/// Points per series in a chart overview (peaks are kept).
pub const CHART_POINTS: i64 = 600;

/// Points per series at most in `chart.html` (peaks kept beyond): an hour
/// sampled every second is drawn whole; a day is bucketed.
pub const HTML_POINTS: i64 = 4_000;

/// The bucket of a scenario's overview: about [`CHART_POINTS`] points over
/// the span a scenario of its duration takes, never finer than its sampling.
pub fn overview_bucket(scenario: &ScenarioRecord) -> i64 {
    let span = scenario
        .duration_ms
        .saturating_mul(2)
        .saturating_add(120_000);
    (span / CHART_POINTS).max(scenario.interval_ms).max(1)
}

/// The finest bucket that draws `span_ms` in at most about [`CHART_POINTS`]
/// points, never finer than the sampling interval: whatever a request asks
/// for, what it gets is bounded.
pub fn bucket_for(span_ms: i64, interval_ms: i64) -> i64 {
    let interval = interval_ms.max(1);
    let finest = span_ms.max(0).saturating_add(CHART_POINTS - 1) / CHART_POINTS;
    // Whole sampling intervals, at least one.
    (finest.saturating_add(interval - 1) / interval)
        .max(1)
        .saturating_mul(interval)
}

/// A scenario's charts over `window` (elapsed ms; full resolution when it is
/// narrow enough) or, without one, the whole scenario at the overview's
/// resolution (peaks kept).
pub async fn scenario_charts(
    store: &Store,
    scenario: &ScenarioRecord,
    window: Option<(i64, i64)>,
) -> Result<ScenarioCharts, ReportError> {
    // The span asked for, ending no later than the latest sample: a window
    // reaching i64::MAX, or a scenario that ran past its duration, is
    // bucketed by what there is to draw.
    let last = store.scenario_last_elapsed(scenario.id).await?.unwrap_or(0);
    let (from, to, bucket) = match window {
        Some((from, to)) => {
            let span = to.min(last).saturating_sub(from).max(1);
            (from, to, bucket_for(span, scenario.interval_ms))
        }
        None => (
            0,
            i64::MAX,
            overview_bucket(scenario).max(bucket_for(last, scenario.interval_ms)),
        ),
    };
    let samples = if bucket <= scenario.interval_ms {
        store
            .scenario_samples_between(scenario.id, from, to)
            .await?
    } else {
        store
            .scenario_samples_bucketed(scenario.id, from, to, bucket)
            .await?
    };
    let charts = Metric::ALL
        .iter()
        .take(CHARTS_PER_SCENARIO)
        .enumerate()
        .map(|(i, metric)| {
            Ok(ChartSpec {
                slot: i,
                group: format!("scenario-{}", scenario.id),
                option_json: serde_json::to_string(&metric_chart(
                    *metric,
                    &samples,
                    scenario.interval_ms,
                ))?,
            })
        })
        .collect::<Result<Vec<_>, ReportError>>()?;
    Ok(ScenarioCharts {
        charts,
        bucket_ms: bucket,
        last_ms: samples.iter().map(|s| s.elapsed_ms).max().unwrap_or(-1),
    })
}

/// The points of a scenario's charts from the bucket holding `after_ms` on,
/// bucketed by `bucket_ms`: what a live page appends to its charts.
pub async fn chart_points(
    store: &Store,
    scenario: &ScenarioRecord,
    bucket_ms: i64,
    after_ms: i64,
) -> Result<ChartPoints, ReportError> {
    // Never finer than what draws the span asked for (from `after_ms` to
    // the latest sample) in about CHART_POINTS points: `bucket_ms=1` from
    // the start of a day-long scenario gets an overview, not every sample.
    let last = store.scenario_last_elapsed(scenario.id).await?.unwrap_or(0);
    let bucket = bucket_ms
        .max(bucket_for(
            last.saturating_sub(after_ms.max(0)),
            scenario.interval_ms,
        ))
        .max(1);
    let from = after_ms.max(0) / bucket * bucket;
    let samples = if bucket <= scenario.interval_ms {
        store
            .scenario_samples_between(scenario.id, from, i64::MAX)
            .await?
    } else {
        store
            .scenario_samples_bucketed(scenario.id, from, i64::MAX, bucket)
            .await?
    };
    Ok(ChartPoints {
        charts: Metric::ALL
            .iter()
            .take(CHARTS_PER_SCENARIO)
            .enumerate()
            .map(|(i, metric)| ChartSeries {
                slot: i,
                series: metric_series(*metric, &samples, scenario.interval_ms),
            })
            .collect(),
        last_ms: samples
            .iter()
            .map(|s| s.elapsed_ms)
            .max()
            .unwrap_or(after_ms),
    })
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON that is safe inside a `<script>` element.
fn script_json<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string(value)?.replace("</", "<\\/"))
}

/// The whole `chart.html` for a run; `status`, when given, is shown
/// instead of the stored one (the run's end is recorded after its files).
pub async fn render(
    store: &Store,
    run_id: i64,
    status: Option<RunStatus>,
) -> Result<String, ReportError> {
    let run = store.run(run_id).await?;
    let scenarios = store.scenarios(run_id).await?;
    let mut sections = String::new();
    let mut charts = Vec::new();
    for ScenarioRecord {
        id,
        name,
        concurrency,
        status,
        interval_ms,
        duration_ms,
        error,
        ..
    } in &scenarios
    {
        // Every sample while a scenario has at most HTML_POINTS ticks (as
        // the original script drew them), peaks-kept buckets beyond.
        let last = store.scenario_last_elapsed(*id).await?.unwrap_or(0);
        let bucket = (last.saturating_add(HTML_POINTS - 1) / HTML_POINTS).max(*interval_ms);
        let samples = if bucket <= *interval_ms {
            store.scenario_samples(*id).await?
        } else {
            store
                .scenario_samples_bucketed(*id, i64::MIN, i64::MAX, bucket)
                .await?
        };
        sections.push_str(&format!(
            "<section><h2>{} <small>{} journeys, {}, {}</small></h2>",
            escape_html(name),
            concurrency,
            format_duration(std::time::Duration::from_millis(*duration_ms as u64)),
            status
        ));
        if let Some(error) = error {
            sections.push_str(&format!("<p class=\"error\">{}</p>", escape_html(error)));
        }
        if samples.is_empty() {
            sections.push_str("<p>No samples.</p></section>");
            continue;
        }
        sections.push_str("<div class=\"row\">");
        for metric in Metric::ALL {
            let dom_id = format!("chart-{id}-{metric:?}");
            sections.push_str(&format!("<div class=\"chart\" id=\"{dom_id}\"></div>"));
            let chart = metric_chart(metric, &samples, *interval_ms);
            charts.push(format!(
                "{{\"id\":{},\"group\":\"scenario-{id}\",\"option\":{}}}",
                script_json(&dom_id)?,
                script_json(&chart)?
            ));
        }
        sections.push_str("</div></section>");
    }
    let (title, about) = match &run {
        Some(run) => (
            format!(
                "mite perf lab: run {}{}",
                run.id,
                if run.label.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", run.label)
                }
            ),
            format!(
                "status {}, mite {}, Python {}, host {} ({} cores)",
                status.unwrap_or(run.status),
                run.environment.mite_version,
                run.environment.python_version,
                run.environment.host,
                run.environment.cores
            ),
        ),
        None => (format!("mite perf lab: run {run_id}"), String::new()),
    };
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2433; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; }}
small {{ color: #5b6478; font-weight: normal; }}
.row {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }}
.chart {{ height: 340px; border: 1px solid #e3e6ee; border-radius: 6px; }}
.error {{ color: #a3261b; white-space: pre-wrap; }}
</style>
<script>{ECHARTS_JS}</script>
</head><body>
<h1>{title}</h1><p>{about}. Drag or scroll on a chart to zoom (the charts of a scenario zoom together); click a legend entry to hide a process.</p>
{sections}
<script>
const charts = [{charts}];
const groups = new Set();
for (const c of charts) {{
  const chart = echarts.init(document.getElementById(c.id));
  chart.group = c.group; groups.add(c.group);
  chart.setOption(c.option);
  window.addEventListener('resize', () => chart.resize());
}}
for (const g of groups) echarts.connect(g);
</script>
</body></html>
"#,
        title = escape_html(&title),
        about = escape_html(&about),
        charts = charts.join(",\n"),
    ))
}

/// Writes `chart.html` under a temporary name, then renames it into place.
pub async fn write_file(
    store: &Store,
    run_id: i64,
    status: Option<RunStatus>,
    path: &Path,
) -> Result<(), ReportError> {
    let html = render(store, run_id, status).await?;
    let partial = super::partial_path(path);
    let written = std::fs::write(&partial, html).and_then(|()| std::fs::rename(&partial, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&partial);
        ReportError::Write {
            path: path.display().to_string(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_any_span_to_about_chart_points() {
        // Short spans draw every sample.
        assert_eq!(bucket_for(60_000, 1000), 1000);
        assert_eq!(bucket_for(0, 250), 250);
        assert_eq!(bucket_for(-5, 250), 250);
        // Long ones are bucketed in whole intervals, never past the bound.
        for (span, interval) in [
            (86_400_000, 100),
            (86_400_000, 1000),
            (3_600_000, 1000),
            (600_001, 1000),
            (i64::MAX, 100),
        ] {
            let bucket = bucket_for(span, interval);
            assert_eq!(bucket % interval, 0, "{span} {interval}");
            assert!(span / bucket <= CHART_POINTS, "{span} {interval}: {bucket}");
        }
    }
}
