//! A chart as the server sends it to the pages, and the ids of a
//! scenario's charts: made from the scenario and the chart's number, the
//! same on both sides (the server names the charts it draws, the page the
//! elements it draws them in).

use serde::{Deserialize, Serialize};

/// One chart: a DOM id and an ECharts option built on the server with charming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSpec {
    pub dom_id: String,
    pub group: String,
    pub option_json: String,
}

/// How many charts of its processes a scenario has (CPU, memory,
/// throughput, threads, open files, context switches, storage IO), and
/// their ids.
pub const CHARTS_PER_SCENARIO: usize = 7;
pub fn chart_dom_id(scenario_id: i64, index: usize) -> String {
    format!("chart-{scenario_id}-{index}")
}

/// How many charts of mite's own view a scenario has (latency, errors,
/// journeys), and their ids.
pub const MITE_CHARTS: usize = 3;
pub fn mite_chart_dom_id(scenario_id: i64, index: usize) -> String {
    format!("mite-chart-{scenario_id}-{index}")
}
