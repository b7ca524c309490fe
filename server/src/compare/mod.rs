//! Comparing runs: did a mite change make it slower or hungrier?
//!
//! - [`sides`]: what each side of a comparison measured (from the store);
//! - [`stats`]: a figure over repeats, compared, as a verdict (pure);
//! - [`matrix`]: a run's figures per build and concurrency, and its CSV;
//! - [`report`]: two sides compared figure by figure (pure);
//! - [`charts`]: the sides' charts overlaid on one time axis;
//! - [`format`]: the comparison as text, markdown, JSON and CSV (pure);
//! - [`gate`]: the CI gate's call on each figure, corrected for the number
//!   of figures tested, and [`gate_summary`] its markdown (pure);
//! - [`history`]: each figure's same-build spread from earlier runs of the
//!   scenario on the machine class, for the floor of a comparison with
//!   too few repeats of its own;
//! - [`stopping`]: whether a run that stops once decided has seen enough
//!   of a concurrency (pure);
//! - [`simulation`]: comparisons with known answers, for the tests and the
//!   benchmark of the verdict, its floor and its stopping rule.

pub mod charts;
pub mod format;
pub mod gate;
pub mod gate_summary;
pub mod history;
pub mod matrix;
pub mod report;
pub mod sides;
pub mod simulation;
pub mod stats;
pub mod stopping;

use domain::compare::ComparisonReport;
use domain::series::machine_facts;
use sides::{load_side, SideError, SideSpec};

use crate::store::Store;

/// Compares side `new` against side `base`; `baseline` on either side is
/// the baseline of the other side's label.
///
/// Two sides measured on different machines (by their stable facts) are
/// compared only `across_machines`, and the report then says so.
pub async fn compare_runs(
    store: &Store,
    base: SideSpec,
    new: SideSpec,
    threshold: f64,
    across_machines: bool,
) -> Result<ComparisonReport, SideError> {
    let (base_data, new_data) = load_sides(store, base, new).await?;
    let machines = match (&base_data.provenance, &new_data.provenance) {
        (Some(b), Some(n)) => Some((machine_facts(b), machine_facts(n))),
        _ => None,
    };
    let history = history_for(store, &base_data, &new_data).await;
    let mut report = report::build_report_with(
        &base_data,
        &new_data,
        threshold,
        domain::compare::ALPHA,
        &history,
    );
    if let Some((base_machine, new_machine)) = machines.filter(|(b, n)| b != n) {
        if !across_machines {
            return Err(SideError::OtherMachine {
                base: base_machine,
                new: new_machine,
            });
        }
        report.warnings.insert(
            0,
            format!(
                "compared across machines: {base_machine} against {new_machine}; a \
                 difference may be the machines', not mite's"
            ),
        );
    }
    Ok(report)
}

/// The same-build history of the sides' scenario and machine, when some
/// concurrency has too few repeats to tell its own spread (none
/// otherwise: it reads every finished scenario of the lab).
pub async fn history_for(
    store: &Store,
    base: &sides::SideData,
    new: &sides::SideData,
) -> report::History {
    let too_few = base.figures.iter().any(|(concurrency, repeats)| {
        let theirs = new.figures.get(concurrency).map_or(0, Vec::len);
        (repeats.len() + theirs).saturating_sub(2) < domain::compare::MIN_OWN_SPREAD_DF as usize
    });
    if !too_few {
        return report::History::new();
    }
    let own = [base.side.run_id, new.side.run_id];
    history::same_build_history(store, base.provenance.as_ref(), base.side.build, &own)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!("cannot read the lab's same-build spreads: {e}");
            report::History::new()
        })
}

/// Both sides' data; `baseline` on either side is the baseline of the
/// other side's label.
pub async fn load_sides(
    store: &Store,
    base: SideSpec,
    new: SideSpec,
) -> Result<(sides::SideData, sides::SideData), SideError> {
    let run_of = |spec: SideSpec| match spec {
        SideSpec::Run { run_id, .. } => Some(run_id),
        SideSpec::Baseline => None,
    };
    let base_data = load_side(store, base, run_of(new)).await?;
    let new_data = load_side(store, new, run_of(base)).await?;
    Ok((base_data, new_data))
}

/// Why a threshold cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    #[error("`{0}` is not a threshold (try 5% or 0.05)")]
    NotANumber(String),
    #[error("`{0}` is out of range: use more than 0 % and less than 100 % (5% or 0.05)")]
    OutOfRange(String),
}

/// Reads a threshold: `5%` or a fraction such as `0.05`.
pub fn parse_threshold(text: &str) -> Result<f64, ThresholdError> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| ThresholdError::NotANumber(text.to_string()))?;
    if !(value > 0.0 && value < 1.0) {
        return Err(ThresholdError::OutOfRange(text.to_string()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_as_percent_or_fraction() {
        assert_eq!(parse_threshold("5%"), Ok(0.05));
        assert_eq!(parse_threshold(" 2.5 % "), Ok(0.025));
        assert_eq!(parse_threshold("0.1"), Ok(0.1));
        for bad in ["5", "0%", "100%", "-1%", "five", ""] {
            assert!(parse_threshold(bad).is_err(), "{bad}");
        }
    }
}
