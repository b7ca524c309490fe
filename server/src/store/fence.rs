//! Fencing: a run's writes carry the lease of the agent executing it.
//!
//! An agent that takes a run from the queue (or starts one from the
//! command line) gets a lease with an id of its own ([`Fence`]). The run
//! executor writes through a store bound to that fence
//! ([`super::Store::fenced`]): every write it makes for the run (samples,
//! bus data, processes, scenario starts and ends, profiles, the run's own
//! row) happens only while the run is still running under that lease.
//! Once the lease is lost (another agent found it run out and marked the
//! run interrupted, or the agent gave it up) nothing more is stored, and
//! an interrupted run is never brought back. A store without a fence
//! (cleanup closing a dead agent's run, tests seeding rows) writes as
//! before.

/// The lease an agent holds on the run it executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub run_id: i64,
    /// Random, new at each claim: two agents that share a name (and so an
    /// agent id) never share a lease.
    pub lease_id: String,
}

impl Fence {
    /// A new lease's id: 128 random bits.
    pub fn new_id() -> super::Result<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| {
            super::StoreError::Invalid(format!("no randomness for a lease's id: {e}"))
        })?;
        Ok(hex::encode(bytes))
    }
}

/// The SQL condition a fenced write adds: true without a fence (`$lease`
/// bound to NULL), else only while run `$run` is running under lease
/// `$lease`. `run` and `lease` are the placeholders' numbers.
pub(crate) fn guard(run: usize, lease: usize) -> String {
    format!(
        "(${lease} IS NULL OR EXISTS (SELECT 1 FROM runs fenced WHERE fenced.id = ${run} \
         AND fenced.lease_id = ${lease} AND fenced.status = 'running'))"
    )
}

/// Whether run `$1` runs under lease `$2` (a row when it does).
pub(crate) const HELD: &str =
    "SELECT 1 FROM runs WHERE id = $1 AND lease_id = $2 AND status = 'running'";
/// The same, locking the run's row until the transaction ends (PostgreSQL).
pub(crate) const HELD_FOR_SHARE: &str =
    "SELECT 1 FROM runs WHERE id = $1 AND lease_id = $2 AND status = 'running' FOR SHARE";
