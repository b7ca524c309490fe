//! mite's own account of a scenario on its run page: per transaction,
//! requests, errors and latency percentiles; errors by kind; what mite's
//! bus carried and dropped; and charts of latency, errors and journeys,
//! redrawn every 2 s while the scenario runs.

use leptos::prelude::*;

use super::poll;
use crate::api::{get_mite_view, MiteView};
use crate::charts;
use crate::charts::mite_chart_id;
use domain::chart_spec::MITE_CHARTS;
use domain::format;
use domain::model::ScenarioStatus;

const LIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

fn ms(x: Option<f64>) -> String {
    match x {
        Some(x) if x < 10.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.1}"),
        None => "–".into(),
    }
}

fn opt_count(n: Option<i64>) -> String {
    n.map(format::count).unwrap_or_else(|| "–".into())
}

/// The panel of one scenario. Its charts' elements are made once and
/// redrawn in place (merging, so a zoom stays).
#[component]
pub fn MiteViewPanel(scenario_id: i64, status: Memo<ScenarioStatus>) -> impl IntoView {
    let view_now = RwSignal::new(None::<MiteView>);
    let asking = StoredValue::new(false);
    let fetch = move || {
        if asking.get_value() {
            return;
        }
        asking.set_value(true);
        leptos::task::spawn_local(async move {
            if let Ok(found) = get_mite_view(scenario_id).await {
                let specs = found.charts.clone();
                view_now.set(Some(found));
                request_animation_frame(move || {
                    for spec in &specs {
                        charts::render(
                            &mite_chart_id(scenario_id, spec.slot),
                            &spec.option_json,
                            &spec.group,
                        );
                    }
                });
            }
            asking.set_value(false);
        });
    };
    // Once at first, and once more when the scenario ends.
    Effect::new(move |was_running: Option<bool>| {
        let running = status.get() == ScenarioStatus::Running;
        if was_running.is_none() || (was_running == Some(true) && !running) {
            fetch();
        }
        running
    });
    poll(LIVE_EVERY, move || {
        if status.get_untracked() == ScenarioStatus::Running {
            fetch();
        }
    });
    let has_data = move || view_now.with(|v| v.as_ref().is_some_and(|v| !v.totals.is_empty()));
    view! {
        <div class="mite-view" data-mite-view=scenario_id.to_string()>
            <h3>"mite's own view " <small class="muted">"(from its message bus)"</small></h3>
            {move || view_now.with(|v| v.as_ref().map(|v| {
                let v = &v.summary;
                let missed = v.missed.unwrap_or(0);
                view! {
                    <p class="muted bus-counts">
                        {format!("{} messages, {} journeys ended", opt_count(v.messages), opt_count(v.journeys))}
                        {(v.undecodable.unwrap_or(0) > 0).then(|| format!("; {} unreadable", opt_count(v.undecodable)))}
                        {v.collector_dropped.filter(|n| *n > 0).map(|n| format!("; the duplicator dropped {} for the collector", format::count(n)))}
                    </p>
                    {(missed > 0).then(|| view! {
                        <p class="warning">{format!("mite's duplicator dropped {} messages before the lab read them: mite's figures below are short by that many.", format::count(missed))}</p>
                    })}
                }
            }))}
            <Show when=has_data fallback=move || view! {
                <p class="empty">{move || if view_now.with(Option::is_none) {
                    // Not asked yet (the page as served, before its script runs).
                    "Loading mite's own view…"
                } else if status.get() == ScenarioStatus::Running {
                    "Waiting for mite's first messages."
                } else {
                    "No messages from mite were recorded for this scenario."
                }}</p>
            }>
                <table class="procs transactions">
                    <thead><tr>
                        <th>"Transaction"</th><th class="num">"requests"</th><th class="num">"errors (≥ 400)"</th><th class="num">"exceptions"</th>
                        <th class="num">"p50 ms"</th><th class="num">"p90 ms"</th><th class="num">"p99 ms"</th><th class="num">"max ms"</th><th class="num">"mean ms"</th>
                    </tr></thead>
                    <tbody>
                        {move || view_now.with(|v| v.as_ref().map(|v| v.totals.iter().map(|t| view! {
                            <tr data-transaction=t.transaction.clone()>
                                <td>{t.transaction.clone()}</td>
                                <td class="num" data-field="requests">{format::count(t.requests)}</td>
                                <td class="num" data-field="errors">{format::count(t.errors)}</td>
                                <td class="num" data-field="exceptions">{format::count(t.exceptions)}</td>
                                <td class="num">{ms(t.p50_ms)}</td>
                                <td class="num">{ms(t.p90_ms)}</td>
                                <td class="num">{ms(t.p99_ms)}</td>
                                <td class="num">{ms(t.max_ms)}</td>
                                <td class="num">{ms(t.mean_ms)}</td>
                            </tr>
                        }).collect_view()))}
                    </tbody>
                </table>
                {move || view_now.with(|v| v.as_ref().filter(|v| !v.errors.is_empty()).map(|v| view! {
                    <details class="error-kinds">
                        <summary>{format!("Errors by kind ({})", v.errors.len())}</summary>
                        <table>
                            <thead><tr><th>"Transaction"</th><th>"Kind"</th><th class="num">"count"</th><th>"One message"</th></tr></thead>
                            <tbody>
                                {v.errors.iter().map(|e| view! {
                                    <tr><td>{e.transaction.clone()}</td><td>{e.kind.clone()}</td><td class="num">{format::count(e.count)}</td><td class="muted">{e.example.clone()}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </details>
                }))}
            </Show>
            <div class="charts mite-charts">
                {(0..MITE_CHARTS).map(|i| view! { <div class="chart" id=mite_chart_id(scenario_id, i)></div> }).collect_view()}
            </div>
        </div>
    }
}
