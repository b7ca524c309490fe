//! The lab's pages.

pub mod launch;
pub mod ports;
pub mod run;
pub mod runs;

use leptos::prelude::*;
use std::time::Duration;

/// Calls `tick` every `every` while the page is open (in the browser only).
pub fn poll(every: Duration, tick: impl Fn() + Clone + 'static) {
    Effect::new(move |_| {
        let tick = tick.clone();
        if let Ok(handle) = set_interval_with_handle(tick, every) {
            on_cleanup(move || handle.clear());
        }
    });
}

/// A status as a coloured badge.
#[component]
pub fn StatusBadge(status: String) -> impl IntoView {
    let class = format!("badge badge-{status}");
    view! { <span class=class>{status}</span> }
}
