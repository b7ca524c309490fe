//! A run's figures per build and concurrency over its repeats (median,
//! quartiles, range): the table behind a version matrix, and its CSV (one
//! row per build × concurrency × figure).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use app::compare::{Figure, Spread};
use app::figures::ScenarioFigures;

use crate::model::ScenarioStatus;
use crate::store::{Store, StoreError};

/// One figure of one build at one concurrency, over its repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixRow {
    /// From 1, as scenario names (`-b2`) count.
    pub build: usize,
    pub build_name: String,
    pub concurrency: u32,
    pub figure: Figure,
    pub spread: Spread,
}

/// Every finished scenario's figures of run `run_id`, grouped.
pub async fn run_matrix(store: &Store, run_id: i64) -> Result<Vec<MatrixRow>, StoreError> {
    let Some(run) = store.run(run_id).await? else {
        return Ok(vec![]);
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
    let name = |build: i64| {
        run.provenance
            .as_ref()
            .and_then(|p| p.builds.get(build as usize))
            .map(|b| b.describe())
            .unwrap_or_else(|| run.environment.mite_version.clone())
    };
    Ok(matrix_rows(&groups, name))
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
            r.build_name.replace(',', " "),
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
}
