//! Launch a run; see the queue.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::{poll, StatusBadge};
use crate::api::{
    get_agents, get_builds, get_queue, LaunchForm, LaunchOutcome, LaunchRun, RemoveQueuedRun,
};
use crate::format;
use crate::model::FieldError;

const DEFAULT_SCENARIOS: [u32; 4] = [1, 10, 100, 1000];
/// Where the launch form posts when the page runs without JavaScript.
const LAUNCH_URL: &str = <LaunchRun as leptos::server_fn::ServerFn>::PATH;

#[component]
pub fn LaunchPage() -> impl IntoView {
    let chosen: Vec<RwSignal<bool>> = DEFAULT_SCENARIOS
        .iter()
        .map(|_| RwSignal::new(true))
        .collect();
    let custom = RwSignal::new(String::new());
    let duration = RwSignal::new("60s".to_string());
    let spawn_rate = RwSignal::new("1000000".to_string());
    let interval = RwSignal::new("1s".to_string());
    let label = RwSignal::new(String::new());
    let mite = RwSignal::new("pinned".to_string());
    let repeat = RwSignal::new("1".to_string());
    let runners = RwSignal::new("1".to_string());
    let agent = RwSignal::new(String::new());
    let builds = Resource::new(|| (), |_| get_builds());

    let launch = ServerAction::<LaunchRun>::new();
    let remove = ServerAction::<RemoveQueuedRun>::new();
    let queue = Resource::new(
        move || (launch.version().get(), remove.version().get()),
        |_| get_queue(),
    );
    poll(std::time::Duration::from_secs(2), move || queue.refetch());

    let errors = move || -> Vec<FieldError> {
        match launch.value().get() {
            Some(Ok(LaunchOutcome::Invalid(errors))) => errors,
            Some(Err(e)) => vec![FieldError {
                field: "form".into(),
                message: e.to_string(),
            }],
            _ => vec![],
        }
    };
    let error_for = move |field: &'static str| {
        move || {
            errors()
                .into_iter()
                .filter(|e| e.field == field)
                .map(|e| view! { <p class="field-error" data-field=field>{e.message}</p> })
                .collect_view()
        }
    };
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(LaunchOutcome::Queued { run_id, .. })) = launch.value().get() {
            navigate(&format!("/runs/{run_id}"), Default::default());
        }
    });

    let chosen_for_submit = chosen.clone();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut scenarios: Vec<String> = DEFAULT_SCENARIOS
            .iter()
            .zip(&chosen_for_submit)
            .filter(|(_, on)| on.get_untracked())
            .map(|(n, _)| n.to_string())
            .collect();
        let extra = custom.get_untracked();
        scenarios.extend(
            extra
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        launch.dispatch(LaunchRun {
            form: LaunchForm {
                scenarios: scenarios.join(","),
                chosen: vec![],
                duration: duration.get_untracked(),
                spawn_rate: spawn_rate.get_untracked(),
                interval: interval.get_untracked(),
                label: label.get_untracked(),
                mite: mite.get_untracked(),
                repeat: repeat.get_untracked(),
                agent: agent.get_untracked(),
                runners: runners.get_untracked(),
            },
        });
    };

    view! {
        <div class="launch-layout">
            <section class="card">
                <h1>"Launch a run"</h1>
                <p class="hint">"Each scenario starts the target and mite's duplicator, collector, runner and controller, then samples them. Runs take turns: the ports are fixed."</p>
                // Without JavaScript (or before the page is hydrated) the
                // browser posts the form to the server function itself.
                <form on:submit=on_submit class="launch-form" method="post" action=LAUNCH_URL>
                    <fieldset>
                        <legend>"Concurrent journeys (one scenario each)"</legend>
                        <div class="checks">
                            {DEFAULT_SCENARIOS
                                .iter()
                                .zip(chosen.clone())
                                .enumerate()
                                .map(|(i, (n, on))| {
                                    view! {
                                        <label class="check">
                                            <input type="checkbox" name=format!("form[chosen][{i}]") value=n.to_string() data-scenario=n.to_string()
                                                checked=on.get_untracked() on:change=move |ev| on.set(event_target_checked(&ev))/>
                                            {n.to_string()}
                                        </label>
                                    }
                                })
                                .collect_view()}
                        </div>
                        <label>"Custom concurrencies"
                            <input type="text" name="form[scenarios]" placeholder="e.g. 50, 500" value=custom.get_untracked() on:input=move |ev| custom.set(event_target_value(&ev))/>
                        </label>
                        {error_for("scenarios")}
                    </fieldset>
                    <div class="grid2">
                        <label>"Duration per scenario"
                            <input type="text" name="form[duration]" value=duration.get_untracked() on:input=move |ev| duration.set(event_target_value(&ev))/>
                            <span class="hint">"60s, 2m, 1h"</span>
                            {error_for("duration")}
                        </label>
                        <label>"Spawn rate (journeys/s)"
                            <input type="text" name="form[spawn_rate]" value=spawn_rate.get_untracked() on:input=move |ev| spawn_rate.set(event_target_value(&ev))/>
                            {error_for("spawn_rate")}
                        </label>
                        <label>"Sampling interval"
                            <input type="text" name="form[interval]" value=interval.get_untracked() on:input=move |ev| interval.set(event_target_value(&ev))/>
                            <span class="hint">"100ms at the least"</span>
                            {error_for("interval")}
                        </label>
                        <label>"Label"
                            <input type="text" name="form[label]" placeholder="e.g. mite main @ abc123" value=label.get_untracked() on:input=move |ev| label.set(event_target_value(&ev))/>
                            {error_for("label")}
                        </label>
                        <label>"mite builds"
                            <input type="text" name="form[mite]" list="mite-builds" value=mite.get_untracked() on:input=move |ev| mite.set(event_target_value(&ev))/>
                            <datalist id="mite-builds">
                                <Transition fallback=|| ()>
                                    {move || builds.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|b| { let text = b.clone(); view! { <option value=b>{text}</option> } }).collect_view()}
                                </Transition>
                            </datalist>
                            <span class="hint available-builds">{move || {
                                let have = builds.get().and_then(Result::ok).unwrap_or_default();
                                format!("comma separated, taking turns; this host has {}; any other PyPI version (2.10.0) is fetched first", have.join(", "))
                            }}</span>
                            {error_for("mite")}
                        </label>
                        <label>"Repeats"
                            <input type="text" name="form[repeat]" value=repeat.get_untracked() on:input=move |ev| repeat.set(event_target_value(&ev))/>
                            <span class="hint">"each scenario, per build: 3 or more for a verdict"</span>
                            {error_for("repeat")}
                        </label>
                        <label>"Runners"
                            <input type="text" name="form[runners]" value=runners.get_untracked() on:input=move |ev| runners.set(event_target_value(&ev))/>
                            <span class="hint">"mite runners against the one controller, as its users go past one core; each is sampled on its own"</span>
                            {error_for("runners")}
                        </label>
                        <AgentChoice agent=agent error=error_for("agent").into_any()/>
                    </div>
                    {error_for("form")}
                    <button type="submit" class="primary" disabled=move || launch.pending().get()>"Launch"</button>
                </form>
            </section>
            <section class="card">
                <h2>"Queue"</h2>
                <Transition fallback=|| view! { <p>"Loading…"</p> }>
                    {move || queue.get().map(|q| match q {
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                        Ok(entries) if entries.is_empty() => view! { <p class="empty">"Nothing running or waiting."</p> }.into_any(),
                        Ok(entries) => view! {
                            <ol class="queue">
                                {entries.into_iter().map(|e| {
                                    let id = e.id;
                                    view! {
                                        <li class="queue-entry">
                                            <a href=format!("/runs/{id}")>{format!("Run {id}")}</a>
                                            " "
                                            {if e.running { view! { <StatusBadge status="running".to_string()/> }.into_any() } else { view! { <span class="muted">{format!("#{} in line", e.position)}</span> }.into_any() }}
                                            <span class="muted">{format!(
                                                " {} · scenarios {:?} · by {} · queued {}",
                                                if e.label.is_empty() { "(no label)" } else { e.label.as_str() },
                                                e.concurrencies,
                                                if e.launched_by.is_empty() { "someone" } else { e.launched_by.as_str() },
                                                format::utc(e.created_at)
                                            )}</span>
                                            {(!e.running && e.can_cancel).then(|| view! {
                                                <button class="small" on:click=move |_| { remove.dispatch(RemoveQueuedRun { run_id: id }); }>"Remove"</button>
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ol>
                        }.into_any(),
                    })}
                </Transition>
            </section>
        </div>
    }
}

/// Which agent executes the run: any, or one by name.
#[component]
fn AgentChoice(agent: RwSignal<String>, error: AnyView) -> impl IntoView {
    let agents = Resource::new(|| (), |_| get_agents());
    view! {
        <label>"Agent"
            <select name="form[agent]" on:change=move |ev| agent.set(event_target_value(&ev))>
                <option value="">"any (the first free)"</option>
                <Transition fallback=|| ()>
                    {move || agents.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|a| {
                        let label = format!("{} ({}, {} cores)", a.name, a.hostname, a.cores);
                        view! { <option value=a.name>{label}</option> }
                    }).collect_view()}
                </Transition>
            </select>
            <span class="hint">"runs to compare want one machine"</span>
            {error}
        </label>
    }
}
