//! mite's performance over time: a figure of one scenario on one machine
//! class, across mite's releases and commits, and the steps in it.
//!
//! - [`history`]: the lab's finished scenarios as series (a figure of a
//!   scenario on a machine class), their points (one per mite build, in
//!   release or commit order) and the detector's reading;
//! - [`changepoint`]: finds the steps, outliers and creep in a series of
//!   points (pure: no store, no clock);
//! - [`format`]: series as text and JSON; [`chart`]: a series' chart;
//! - [`synthetic`]: series with known steps, for its tests and benchmark;
//! - [`backfill`]: one queued run per PyPI release of a range.

pub mod backfill;
pub mod changepoint;
pub mod chart;
pub mod format;
pub mod history;
pub mod synthetic;
