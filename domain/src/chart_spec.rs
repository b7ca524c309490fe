//! A chart as the server sends it to the pages: data, keyed by its place
//! in its set (a scenario's charts, mite's view of it, a comparison, a
//! matrix), never by the element a page draws it in: the pages name their
//! elements (`app::charts`), and the database keeps no layout.

use serde::{Deserialize, Serialize};

/// One chart: its number in its set, the group whose charts zoom together,
/// and an ECharts option built on the server with charming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSpec {
    pub slot: usize,
    pub group: String,
    pub option_json: String,
}

/// How many charts of its processes a scenario has (CPU, memory,
/// throughput, threads, open files, context switches, storage IO).
pub const CHARTS_PER_SCENARIO: usize = 7;

/// How many charts of mite's own view a scenario has (latency, errors,
/// journeys).
pub const MITE_CHARTS: usize = 3;
