//! Several agents on one database: which agent executes a run, and its
//! lease on it.
//!
//! A run taken from the queue (or started by `mite-perf run`) names the
//! [`AgentIdentity`] executing it and holds a lease (with an id of its own: a
//! [`Fence`] every write for the run carries) until [`AgentIdentity::lease`]
//! from now on the database's clock. While it executes, [`keep_lease`]
//! renews the lease every few seconds and reads whether someone asked, on
//! any host, to cancel it; a lease lost, or not renewed for a whole lease
//! time, stops the run. A host decides whether one of its own runs is alive
//! from its own `/proc`; another host's run only from its lease: a run
//! whose lease ran out is abandoned (its host or its lab died), and its
//! processes, on that host, are left to that host's cleanup. "Its own"
//! means the same name on the same boot *in the same PID namespace*: two
//! containers sharing a host name cannot see each other's processes, so
//! they are two hosts.

use tokio_util::sync::CancellationToken;

use crate::agent_identity::AgentIdentity;
use crate::store::{Fence, LeaseState, Store};

/// Renews the lease `store` is fenced with (on a connection of its own)
/// while the returned task lives
/// (abort it, or drop the guard, when the run ends), and cancels `cancel`
/// when a cancel was asked on any host, when the lease is lost (another
/// agent marked the run interrupted: the fenced store refuses every later
/// write anyway), or when no renewal has succeeded for a whole lease time
/// (the database unreachable: another agent may soon take the run for
/// abandoned). A renewal the database refuses before that is logged and
/// tried again: the run goes on, its samples wait for the database anyway.
pub fn keep_lease(store: Store, host: AgentIdentity, cancel: CancellationToken) -> LeaseGuard {
    let run_id = store.fence().map_or(0, |f: &Fence| f.run_id);
    let task = tokio::spawn(async move {
        let mut renewed = std::time::Instant::now();
        // A connection of its own: a renewal never waits for one.
        let store = match store.own_connection().await {
            Ok(own) => own,
            Err(e) => {
                tracing::warn!(
                    "run {run_id}: no connection of its own for the lease ({e}): renewing \
                     through the run's"
                );
                store
            }
        };
        loop {
            match store.renew_lease(&host).await {
                Ok(LeaseState::Held) => renewed = std::time::Instant::now(),
                Ok(LeaseState::CancelAsked) => {
                    renewed = std::time::Instant::now();
                    tracing::info!("run {run_id}: a cancel was asked: stopping");
                    cancel.cancel();
                }
                Ok(LeaseState::Lost) => {
                    tracing::error!(
                        "run {run_id}: its lease was lost (another agent marked it interrupted, \
                         or it ended): stopping; nothing more is stored"
                    );
                    cancel.cancel();
                    return;
                }
                Err(e) if renewed.elapsed() >= host.lease => {
                    tracing::error!(
                        "run {run_id}: its lease could not be renewed for {} s ({e}): stopping, \
                         as another agent may take it for abandoned",
                        renewed.elapsed().as_secs()
                    );
                    cancel.cancel();
                }
                Err(e) => tracing::warn!("run {run_id}: cannot renew its lease: {e}"),
            }
            tokio::time::sleep(host.renew_every()).await;
        }
    });
    LeaseGuard(task)
}

/// Stops renewing a lease when dropped.
pub struct LeaseGuard(tokio::task::JoinHandle<()>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
