//! The compared runs' charts overlaid on one elapsed-time axis: per
//! concurrency, requests/s, runner CPU and RSS per process, each side's
//! repeat with the median requests/s standing for it.

use charming::series::Line;

use app::api::{ChartSpec, SeriesPoints};
use domain::compare::Figure;

use super::sides::SideData;
use super::stats::median;
use crate::model::ProcessKind;
use crate::reports::chart::{metric_axes, metric_series, overview_bucket, Metric};
use crate::store::{Store, StoreError};

/// Which repeat stands for a side: the one whose requests/s is nearest the
/// median of its repeats.
pub fn representative(values: &[f64]) -> Option<usize> {
    if values.is_empty() {
        return None;
    }
    let m = median(values);
    values
        .iter()
        .enumerate()
        .min_by(|a, b| (a.1 - m).abs().total_cmp(&(b.1 - m).abs()))
        .map(|(i, _)| i)
}

/// The overlay charts of every concurrency both sides measured.
pub async fn overlay_charts(
    store: &Store,
    base: &SideData,
    new: &SideData,
) -> Result<Vec<ChartSpec>, StoreError> {
    let mut specs = Vec::new();
    for (&concurrency, base_figures) in &base.figures {
        let Some(new_figures) = new.figures.get(&concurrency) else {
            continue;
        };
        let mut sides = Vec::new();
        for (name, data, figures) in [("base", base, base_figures), ("new", new, new_figures)] {
            let rps: Vec<f64> = figures
                .iter()
                .map(|f| {
                    Figure::RequestsPerSecond
                        .value(f, concurrency)
                        .unwrap_or(0.0)
                })
                .collect();
            let Some(i) = representative(&rps) else {
                continue;
            };
            let Some(&id) = data
                .scenario_ids
                .get(&concurrency)
                .and_then(|ids| ids.get(i))
            else {
                continue;
            };
            let Some(record) = store.scenario(id).await? else {
                continue;
            };
            let samples = store
                .scenario_samples_bucketed(id, i64::MIN, i64::MAX, overview_bucket(&record))
                .await?;
            let title = format!(
                "{name} ({}, repeat {})",
                data.side.title(data.builds_in_run),
                i + 1
            );
            sides.push((title, samples, overview_bucket(&record)));
        }
        let charts = [
            (Metric::Throughput, None),
            (Metric::Cpu, Some(ProcessKind::Runner)),
            (Metric::Memory, None),
        ];
        for (index, (metric, only)) in charts.into_iter().enumerate() {
            let heading = match (metric, only) {
                (Metric::Cpu, Some(_)) => "Runner CPU (% of one core)".to_string(),
                _ => metric.title().to_string(),
            };
            let mut chart = metric_axes(metric, &format!("{heading}, {concurrency} journeys"));
            for (title, samples, bucket) in &sides {
                let series: Vec<SeriesPoints> = metric_series(metric, samples, *bucket)
                    .into_iter()
                    .filter(|s| only.is_none_or(|p| s.name == p.as_str()))
                    .collect();
                for s in series {
                    let points: Vec<Vec<f64>> = s.points.iter().map(|p| p.to_vec()).collect();
                    chart = chart.series(
                        Line::new()
                            .name(format!("{title}: {}", s.name))
                            .show_symbol(false)
                            .data(points),
                    );
                }
            }
            specs.push(ChartSpec {
                slot: index,
                group: format!("compare-{concurrency}"),
                option_json: serde_json::to_string(&chart)?,
            });
        }
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repeat_nearest_the_median_stands_for_a_side() {
        assert_eq!(representative(&[100.0, 300.0, 180.0]), Some(2));
        assert_eq!(representative(&[5.0]), Some(0));
        assert_eq!(representative(&[]), None);
    }
}
