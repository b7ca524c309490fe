//! The lab's stored time: milliseconds since the unix epoch, read from this
//! host's clock (leases and heartbeats, which several hosts compare, are
//! timed by the database's clock instead: `store`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch, the lab's stored time format.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
