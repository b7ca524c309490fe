//! mite's own account of a run, read from its message bus (shared/MITE-NOTES.md):
//! every response with its status and timing, every error, every
//! transaction's end, and the controller's required against actual
//! concurrency.
//!
//! - [`message`]: one msgpack frame, decoded (pure).
//! - [`tally`]: messages counted into one-second intervals and totals per
//!   transaction, latency as HDR histograms (pure).
//! - [`reader`]: the ZeroMQ socket on the duplicator's output of the lab's own.
//! - [`dropped`]: the messages the duplicator could not pass on, from its log.

pub mod dropped;
pub mod message;
pub mod reader;
pub mod tally;
pub mod zmtp;

pub use reader::{BusError, BusReader};
pub use tally::{BusBatch, BusCounts, BUS_INTERVAL_MS};
