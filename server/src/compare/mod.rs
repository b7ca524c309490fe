//! Comparing runs: did a mite change make it slower or hungrier?
//!
//! - [`stats`]: a figure over repeats, compared, as a verdict (pure).

pub mod stats;
