//! A series' chart (built with charming, drawn by the pages' ECharts): its
//! points with their 95 % intervals, the fitted levels as steps, the
//! changes marked with their size, releases marked when commits are in the
//! series too, and outliers hollow.

use charming::component::{Axis, Legend, Title};
use charming::element::{
    AreaStyle, AxisType, Label, LineStyle, LineStyleType, MarkLine, MarkLineData, MarkLineVariant,
    Step, Symbol, Tooltip, Trigger,
};
use charming::series::{Line, Scatter};
use charming::Chart;

use domain::chart_spec::ChartSpec;

use super::history::Series;

/// The chart of `series`.
pub fn series_chart(series: &Series) -> Result<ChartSpec, serde_json::Error> {
    let figure = series.key.figure;
    let builds: Vec<String> = series.points.iter().map(|p| p.build.clone()).collect();
    let outlier = |i: usize| series.analysis.outliers.contains(&i);
    // Medians, without the outliers (drawn apart, hollow).
    let medians: Vec<Option<f64>> = series
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| (!outlier(i)).then_some(p.median))
        .collect();
    let low: Vec<Option<f64>> = series
        .points
        .iter()
        .map(|p| p.interval.map(|(low, _)| low))
        .collect();
    let width: Vec<Option<f64>> = series
        .points
        .iter()
        .map(|p| p.interval.map(|(low, high)| high - low))
        .collect();
    let level: Vec<f64> = (0..series.points.len())
        .map(|i| {
            series
                .analysis
                .levels
                .iter()
                .find(|l| (l.start..l.end).contains(&i))
                .map_or(f64::NAN, |l| l.value)
        })
        .collect();
    let mut marks: Vec<MarkLineData> = series
        .analysis
        .changes()
        .filter_map(|step| {
            let build = builds.get(step.index)?;
            Some(
                MarkLineData::new()
                    .name(format!("{:+.1} %", step.change * 100.0))
                    .x_axis(build.as_str()),
            )
        })
        .collect();
    let all_releases = series.points.iter().all(|p| p.order.is_release());
    if !all_releases {
        marks.extend(
            series
                .points
                .iter()
                .filter(|p| p.order.is_release())
                .map(|p| {
                    MarkLineData::new()
                        .name(p.build.clone())
                        .x_axis(p.build.as_str())
                }),
        );
    }
    // By the category's index on the x axis.
    let outliers: Vec<Vec<f64>> = series
        .points
        .iter()
        .enumerate()
        .filter(|(i, _)| outlier(*i))
        .map(|(i, p)| vec![i as f64, p.median])
        .collect();
    let chart = Chart::new()
        .title(Title::new().text(format!(
            "{} ({}), {}",
            series.figure_name,
            figure.unit(),
            series.key.scenario.describe()
        )))
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().top("bottom"))
        .x_axis(Axis::new().type_(AxisType::Category).data(builds.clone()))
        .y_axis(
            Axis::new()
                .type_(AxisType::Value)
                .scale(true)
                .name(figure.unit()),
        )
        .series(
            Line::new()
                .name("95 % interval")
                .stack("interval")
                .symbol(Symbol::None)
                .line_style(LineStyle::new().opacity(0))
                .data(low),
        )
        .series(
            Line::new()
                .name("95 % interval")
                .stack("interval")
                .symbol(Symbol::None)
                .line_style(LineStyle::new().opacity(0))
                .area_style(AreaStyle::new().opacity(0.2))
                .data(width),
        )
        .series(
            Line::new()
                .name("median")
                .symbol(Symbol::Circle)
                .symbol_size(7)
                .data(medians),
        )
        .series(
            Line::new()
                .name("level")
                .step(Step::Middle)
                .symbol(Symbol::None)
                .line_style(LineStyle::new().type_(LineStyleType::Dashed))
                .mark_line(
                    MarkLine::new()
                        .symbol(vec![Symbol::None, Symbol::None])
                        // The mark's name (the change, or the release), not its build.
                        .label(Label::new().formatter("{b}"))
                        .data(
                            marks
                                .into_iter()
                                .map(MarkLineVariant::Simple)
                                .collect::<Vec<_>>(),
                        ),
                )
                .data(
                    level
                        .iter()
                        .map(|v| (v.is_finite()).then_some(*v))
                        .collect::<Vec<_>>(),
                ),
        )
        .series(
            Scatter::new()
                .name("outlier")
                .symbol(Symbol::Custom("emptyCircle".into()))
                .symbol_size(10)
                .data(outliers),
        );
    Ok(ChartSpec {
        slot: 0,
        group: format!("series-{}", series.id),
        option_json: serde_json::to_string(&chart)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trend::changepoint::{analyse, Settings};
    use crate::trend::history::Point;
    use domain::compare::Figure;
    use domain::series::{MachineClass, PointOrder, ScenarioKey, SeriesKey};

    #[test]
    fn the_chart_marks_the_change_by_its_size_and_draws_outliers_hollow() {
        let values = [
            1000.0, 1002.0, 998.0, 1001.0, 1400.0, 999.0, 1000.0, 900.0, 901.0, 899.0, 900.0,
        ];
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                build: format!("2.{i}.0"),
                order: PointOrder::Release(vec![2, i as u64, 0]),
                first_ran_at: i as i64,
                values: vec![*v],
                median: *v,
                interval: None,
                run_ids: vec![i as i64 + 1],
                sides: vec![(i + 1).to_string()],
                claimed_by: None,
                claim_excluded_by: None,
                packages: Vec::new(),
                resolution: None,
                packages_vary: false,
            })
            .collect();
        let analysis = analyse(
            &values,
            Figure::RequestsPerSecond.better(),
            &[],
            &Settings::default(),
        )
        .expect("valid");
        let series = Series {
            id: "0123456789abcdef".into(),
            key: SeriesKey {
                scenario: ScenarioKey {
                    scenario: "built-in".into(),
                    source_sha256: "ab".into(),
                    concurrency: 10,
                    duration_ms: 30_000,
                    target: "built-in".into(),
                    requests: None,
                    valgrind: false,
                },
                figure: Figure::RequestsPerSecond,
                machine: MachineClass("m".into()),
            },
            figure_name: Figure::RequestsPerSecond.name(),
            better: Figure::RequestsPerSecond.better(),
            points,
            analysis,
            excluded_by: Default::default(),
            acknowledged_by: Default::default(),
            dependencies: Default::default(),
        };
        let spec = series_chart(&series).expect("a chart");
        let option: serde_json::Value = serde_json::from_str(&spec.option_json).expect("JSON");
        let text = spec.option_json.as_str();
        assert!(text.contains("\"-10.0 %\""), "{text}");
        assert_eq!(option["xAxis"]["data"][7], "2.7.0", "{option}");
        let outlier = option["series"]
            .as_array()
            .expect("series")
            .iter()
            .find(|s| s["name"] == "outlier")
            .expect("the outliers' series");
        assert_eq!(outlier["symbol"], "emptyCircle");
        assert_eq!(outlier["data"][0], serde_json::json!([4.0, 1400.0]));
        assert_eq!(spec.group, "series-0123456789abcdef");
    }
}
