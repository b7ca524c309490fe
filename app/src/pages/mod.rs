//! The lab's pages.

pub mod activity;
pub mod agents;
pub mod compare;
pub mod launch;
pub mod matrix;
pub mod mite_view;
pub mod ports;
pub mod run;
pub mod runs;
pub mod share;
pub mod signin;
pub mod trends;

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

/// Gives the page being rendered on the server the HTTP status of its
/// answer (404 for "no such run", 503 for "the database is down"). Does
/// nothing in the browser.
pub fn answer_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(options), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(code),
    ) {
        options.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}

/// A status as a coloured badge.
#[component]
pub fn StatusBadge(status: String) -> impl IntoView {
    let class = format!("badge badge-{status}");
    view! { <span class=class>{status}</span> }
}
