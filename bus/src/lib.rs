//! mite's message bus as the lab reads it (shared/MITE-NOTES.md): the
//! duplicator's PUSH socket read over ZeroMQ's wire protocol, each frame
//! decoded, and the messages counted. Pure but for the reader's TCP
//! stream: no async runtime, no web, no database, so its parsers build,
//! test and fuzz in seconds (fuzz/).
//!
//! - [`zmtp`]: the PULL side of ZMTP on a plain TCP stream, frame by frame.
//! - [`message`]: one msgpack frame, decoded.
//! - [`tally`]: messages counted into one-second intervals and totals per
//!   transaction, latency as HDR histograms.
//! - `peer` (feature `test-peer`): a PUSH peer written by hand, for tests.

pub mod message;
#[cfg(any(test, feature = "test-peer"))]
pub mod peer;
pub mod tally;
pub mod zmtp;
