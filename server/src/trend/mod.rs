//! mite's performance over time: a figure of one scenario on one machine
//! class, across mite's releases and commits, and the steps in it.
//!
//! - [`changepoint`]: finds the steps, outliers and creep in a series of
//!   points (pure: no store, no clock);
//! - [`synthetic`]: series with known steps, for its tests and benchmark.

pub mod changepoint;
pub mod synthetic;
