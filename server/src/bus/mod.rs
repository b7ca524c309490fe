//! mite's own account of a run, read from its message bus (shared/MITE-NOTES.md):
//! every response with its status and timing, every error, every
//! transaction's end, and the controller's required against actual
//! concurrency.
//!
//! - [`zmtp`], [`message`], [`tally`]: the wire protocol, one msgpack
//!   frame decoded and the messages counted, pure, in their own crate
//!   (`mite-bus`, re-exported here).
//! - [`reader`]: the thread that reads the duplicator's output of the lab's
//!   own, in the scenario's network.
//! - [`dropped`]: the messages the duplicator could not pass on, from its log.

pub mod dropped;
pub mod reader;

pub use mite_bus::{message, tally, zmtp};
pub use reader::{BusError, BusReader};
pub use tally::{BusBatch, BusCounts, BUS_INTERVAL_MS};
