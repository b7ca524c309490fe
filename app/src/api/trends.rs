//! The trends pages: series, their points and the changes found in them.

use serde::{Deserialize, Serialize};

use domain::chart_spec::ChartSpec;

/// A change found in a series, as the trends pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendChange {
    /// The build at the new level.
    pub build: String,
    /// `-9.8 %`.
    pub change: String,
    pub worse: bool,
    pub confirmed: bool,
    pub p: f64,
    /// The compare page of the points before and at the change.
    pub compare: Option<String>,
    /// Who acknowledged it, if anyone.
    pub acknowledged_by: Option<String>,
    /// Whose word the commit at the new level is (an uploader's claim).
    pub claimed_by: Option<String>,
    /// What differs between the packages of the points before and at the
    /// change, as sentences (none: the same, or not recorded on either).
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// A series in the list of /trends: what it is, a sparkline's values and
/// the latest change found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    pub id: String,
    /// `requests per runner CPU-s`.
    pub figure: String,
    pub higher_is_better: bool,
    /// `built-in, 100 journeys, 1 min 00 s`.
    pub scenario: String,
    pub machine: String,
    /// Each point's median, in order (the sparkline).
    pub medians: Vec<f64>,
    pub latest_build: String,
    /// `11,650 req/CPU-s`.
    pub latest: String,
    pub latest_change: Option<TrendChange>,
    /// `-6.1 % from the best level since the last release`.
    pub creep: Option<String>,
}

/// A point of a series on its page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub build: String,
    pub median: String,
    /// `990 – 1,022`, or empty from a single repeat.
    pub interval: String,
    pub repeats: usize,
    pub runs: Vec<i64>,
    pub release: bool,
    pub outlier: bool,
    pub step: bool,
    /// Who excluded it from the fit, if anyone.
    pub excluded_by: Option<String>,
    /// Whose word its commit is (`token:ci`: an uploaded wheel's commit,
    /// as its uploader said); `None`: the lab saw the commit, or none.
    pub claimed_by: Option<String>,
    /// Whether an admin left out every point of its claimant.
    pub claimant_excluded: bool,
}

/// What a backfill of releases did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BackfillOutcome {
    /// The runs queued, oldest release first: (version, run).
    Queued(Vec<(String, i64)>),
    /// Why nothing was queued (the range, or no release in it).
    Invalid(String),
}

/// One series' page: its points, its changes and its chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesView {
    pub summary: SeriesSummary,
    pub points: Vec<TrendPoint>,
    pub changes: Vec<TrendChange>,
    pub chart: ChartSpec,
}
