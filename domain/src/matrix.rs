//! A version matrix: a run's figures per mite build and concurrency, each
//! over its repeats (median and spread), as its page shows them in a table
//! and in charts.

use serde::{Deserialize, Serialize};

use crate::chart_spec::ChartSpec;
use crate::compare::{Figure, Spread};

/// One figure of one build at one concurrency, over its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// From 1, as scenario names (`-b2`) count.
    pub build: usize,
    pub build_name: String,
    pub concurrency: u32,
    pub figure: Figure,
    pub spread: Spread,
}

/// A run's matrix: its builds (in order), the rows of every finished
/// scenario, and its charts (one per figure, or per kind of memory figure).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMatrix {
    pub builds: Vec<String>,
    pub rows: Vec<MatrixRow>,
    pub charts: Vec<ChartSpec>,
}

impl RunMatrix {
    /// The concurrencies measured, ascending.
    pub fn concurrencies(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.rows.iter().map(|r| r.concurrency).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The figures measured, in the order tables show them.
    pub fn figures(&self) -> Vec<Figure> {
        Figure::all()
            .into_iter()
            .filter(|f| self.rows.iter().any(|r| r.figure == *f))
            .collect()
    }

    /// Build `build`'s (from 1) spread of `figure` at `concurrency`.
    pub fn cell(&self, build: usize, concurrency: u32, figure: Figure) -> Option<&Spread> {
        self.rows
            .iter()
            .find(|r| r.build == build && r.concurrency == concurrency && r.figure == figure)
            .map(|r| &r.spread)
    }

    /// How build `build`'s median of `figure` at `concurrency` differs from
    /// the first build's (`0.05` is 5 % more).
    pub fn change_from_first(&self, build: usize, concurrency: u32, figure: Figure) -> Option<f64> {
        let first = self.cell(1, concurrency, figure)?.median;
        let this = self.cell(build, concurrency, figure)?.median;
        (build > 1 && first > 0.0).then(|| this / first - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessKind;

    fn row(build: usize, concurrency: u32, figure: Figure, median: f64) -> MatrixRow {
        MatrixRow {
            build,
            build_name: format!("2.{build}.0"),
            concurrency,
            figure,
            spread: Spread::of(&[median]).expect("a spread"),
        }
    }

    #[test]
    fn cells_and_changes_are_found_by_build_concurrency_and_figure() {
        let rss = Figure::PeakRss(ProcessKind::Runner);
        let matrix = RunMatrix {
            builds: vec!["2.1.0".into(), "2.2.0".into()],
            rows: vec![
                row(1, 100, Figure::RequestsPerSecond, 200.0),
                row(1, 10, Figure::RequestsPerSecond, 100.0),
                row(2, 10, Figure::RequestsPerSecond, 90.0),
                row(2, 10, rss, 40.0),
            ],
            charts: vec![],
        };
        assert_eq!(matrix.concurrencies(), vec![10, 100]);
        assert_eq!(matrix.figures(), vec![Figure::RequestsPerSecond, rss]);
        assert_eq!(
            matrix
                .cell(2, 10, Figure::RequestsPerSecond)
                .map(|s| s.median),
            Some(90.0)
        );
        let change = matrix
            .change_from_first(2, 10, Figure::RequestsPerSecond)
            .expect("a change");
        assert!((change + 0.1).abs() < 1e-9, "{change}");
        // No first build to compare with, or the first build itself.
        assert_eq!(matrix.change_from_first(2, 10, rss), None);
        assert_eq!(
            matrix.change_from_first(1, 10, Figure::RequestsPerSecond),
            None
        );
        assert_eq!(matrix.cell(2, 100, Figure::RequestsPerSecond), None);
    }
}
