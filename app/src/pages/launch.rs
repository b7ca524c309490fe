//! Launch a run; see the queue.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::{answer_status, poll, StatusBadge};
use crate::api::{
    get_agents, get_builds, get_library, get_queue, LaunchForm, LaunchOutcome, LaunchRun,
    RemoveQueuedRun,
};
use domain::defaults::CONCURRENCIES as DEFAULT_CONCURRENCIES;
use domain::format;
use domain::library::{LibraryScenario, SHAPE_DURATION_S};
use domain::model::FieldError;

/// Where the launch form posts when the page runs without JavaScript.
const LAUNCH_URL: &str = <LaunchRun as leptos::server_fn::ServerFn>::PATH;

#[component]
pub fn LaunchPage() -> impl IntoView {
    // The form starts from the run's defaults (domain::defaults).
    let form = LaunchForm::default();
    let chosen: Vec<RwSignal<bool>> = DEFAULT_CONCURRENCIES
        .iter()
        .map(|_| RwSignal::new(true))
        .collect();
    let custom = RwSignal::new(String::new());
    let duration = RwSignal::new(form.duration);
    let spawn_rate = RwSignal::new(form.spawn_rate);
    let interval = RwSignal::new(form.interval);
    let label = RwSignal::new(form.label);
    let mite = RwSignal::new(form.mite);
    let repeat = RwSignal::new(form.repeat);
    let runners = RwSignal::new(form.runners);
    let collector = RwSignal::new(form.collector);
    let collector_mib = RwSignal::new(form.collector_mib);
    let scenario = RwSignal::new(String::new());
    let profile = RwSignal::new(false);
    let profile_all = RwSignal::new(false);
    let bus_off = RwSignal::new(false);
    let requests = RwSignal::new(String::new());
    let valgrind = RwSignal::new(false);
    let agent = RwSignal::new(String::new());
    let builds = Resource::new(|| (), |_| get_builds());

    let launch = ServerAction::<LaunchRun>::new();
    let remove = ServerAction::<RemoveQueuedRun>::new();
    // Blocking: a caller who may not see the queue (a share link's holder)
    // gets the refusal's status.
    let queue = Resource::new_blocking(
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
        let mut concurrencies: Vec<String> = DEFAULT_CONCURRENCIES
            .iter()
            .zip(&chosen_for_submit)
            .filter(|(_, on)| on.get_untracked())
            .map(|(n, _)| n.to_string())
            .collect();
        let extra = custom.get_untracked();
        concurrencies.extend(
            extra
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        launch.dispatch(LaunchRun {
            form: LaunchForm {
                concurrencies: concurrencies.join(","),
                chosen: vec![],
                duration: duration.get_untracked(),
                spawn_rate: spawn_rate.get_untracked(),
                interval: interval.get_untracked(),
                label: label.get_untracked(),
                mite: mite.get_untracked(),
                repeat: repeat.get_untracked(),
                agent: agent.get_untracked(),
                runners: runners.get_untracked(),
                collector: collector.get_untracked(),
                collector_mib: collector_mib.get_untracked(),
                scenario: scenario.get_untracked(),
                profile: if profile.get_untracked() {
                    "on".into()
                } else {
                    String::new()
                },
                profile_all: if profile_all.get_untracked() {
                    "on".into()
                } else {
                    String::new()
                },
                bus_off: if bus_off.get_untracked() {
                    "on".into()
                } else {
                    String::new()
                },
                requests: requests.get_untracked(),
                valgrind: if valgrind.get_untracked() {
                    "on".into()
                } else {
                    String::new()
                },
                ..LaunchForm::default()
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
                            {DEFAULT_CONCURRENCIES
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
                            <input type="text" name="form[concurrencies]" placeholder="e.g. 50, 500" value=custom.get_untracked() on:input=move |ev| custom.set(event_target_value(&ev))/>
                        </label>
                        {error_for("concurrencies")}
                    </fieldset>
                    <ScenarioChoice scenario=scenario chosen=chosen.clone() error=error_for("scenario").into_any()/>
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
                                builds_hint(builds.get().and_then(Result::ok).as_deref())
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
                        <label>"Collector data kept"
                            <span class="inline-fields">
                                <select name="form[collector]" on:change=move |ev| collector.set(event_target_value(&ev))>
                                    <option value="last" selected=true>"the last"</option>
                                    <option value="all">"all of it"</option>
                                    <option value="none">"none"</option>
                                </select>
                                <input type="text" name="form[collector_mib]" class="short" value=collector_mib.get_untracked()
                                    disabled=move || collector.get() != "last"
                                    on:input=move |ev| collector_mib.set(event_target_value(&ev))/>
                                " MiB per scenario"
                            </span>
                            <span class="hint">"mite's collector writes every message (~0.9 KB a request); the files kept can be downloaded from the run's page"</span>
                            {error_for("collector")}
                        </label>
                        <AgentChoice agent=agent error=error_for("agent").into_any()/>
                        <fieldset class="profile-choice">
                            <legend>"Profile"</legend>
                            <label class="check">
                                <input type="checkbox" name="form[profile]" value="on" on:change=move |ev| profile.set(event_target_checked(&ev))/>
                                {format!("sample mite's stacks (py-spy, {}/s): a flame graph per runner", domain::profile::ProfileSpec::DEFAULT_RATE)}
                            </label>
                            <label class="check">
                                <input type="checkbox" name="form[profile_all]" value="on" disabled=move || !profile.get() on:change=move |ev| profile_all.set(event_target_checked(&ev))/>
                                "its controller, duplicator and collector too"
                            </label>
                            {error_for("profile")}
                        </fieldset>
                        <fieldset class="bus-choice">
                            <legend>"mite's own view"</legend>
                            <label class="check">
                                <input type="checkbox" name="form[bus_off]" value="on" on:change=move |ev| bus_off.set(event_target_checked(&ev))/>
                                "leave mite's message bus unread: the seed's measurement only, the lab's footprint at its floor"
                            </label>
                        </fieldset>
                        <fieldset class="fixed-work">
                            <legend>"Fixed work"</legend>
                            <label>
                                "requests per scenario (empty: the duration's worth)"
                                <input type="text" name="form[requests]" inputmode="numeric" placeholder="e.g. 3000" prop:value=move || requests.get() on:input=move |ev| requests.set(event_target_value(&ev))/>
                            </label>
                            <label class="check">
                                <input type="checkbox" name="form[valgrind]" value="on" on:change=move |ev| valgrind.set(event_target_checked(&ev))/>
                                "count instructions per request under Valgrind (each scenario with N and 2N requests; dozens of times slower, give the duration room)"
                            </label>
                            {error_for("requests")}
                            {error_for("valgrind")}
                        </fieldset>
                    </div>
                    {error_for("form")}
                    <button type="submit" class="primary" disabled=move || launch.pending().get()>"Launch"</button>
                </form>
            </section>
            <section class="card">
                <h2>"Queue"</h2>
                <Transition fallback=|| view! { <p>"Loading…"</p> }>
                    {move || queue.get().map(|q| match q {
                        Err(e) => {
                            answer_status(e.status());
                            view! { <p class="error">{e.to_string()}</p> }.into_any()
                        }
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

/// Which mite scenario the run drives: the built-in one, or one of the
/// agents' library, with its docstring and its volume model's shape.
#[component]
fn ScenarioChoice(
    scenario: RwSignal<String>,
    chosen: Vec<RwSignal<bool>>,
    error: AnyView,
) -> impl IntoView {
    let library = Resource::new(|| (), |_| get_library());
    let listed = move || library.get().and_then(Result::ok).unwrap_or_default();
    let picked = move || {
        let spec = scenario.get();
        listed().into_iter().find(|s| s.spec == spec)
    };
    let concurrencies = Signal::derive(move || -> Vec<u32> {
        DEFAULT_CONCURRENCIES
            .iter()
            .zip(&chosen)
            .filter(|(_, on)| on.get())
            .map(|(n, _)| *n)
            .collect()
    });
    view! {
        <label>"Scenario"
            <select name="form[scenario]" class="scenario-choice" on:change=move |ev| scenario.set(event_target_value(&ev))>
                <option value="">"built-in: GET the target, constant concurrency"</option>
                <Transition fallback=|| ()>
                    {move || {
                        let mut seen: Vec<(String, Vec<String>)> = Vec::new();
                        for s in listed() {
                            match seen.iter_mut().find(|(spec, _)| *spec == s.spec) {
                                Some((_, agents)) => agents.push(s.agent),
                                None => seen.push((s.spec, vec![s.agent])),
                            }
                        }
                        seen.into_iter().map(|(spec, agents)| {
                            let label = format!("{spec} (on {})", agents.join(", "));
                            view! { <option value=spec>{label}</option> }
                        }).collect_view()
                    }}
                </Transition>
            </select>
            <span class="hint">{move || if listed().is_empty() {
                "agents started with --scenario-dir list the scenarios they find there"
            } else {
                "the agents' scenario library: each gets MITE_CONF_mite_perf_concurrency, _duration and _target_url"
            }}</span>
            {error}
        </label>
        {move || picked().map(|s| view! { <LibraryDetails scenario=s concurrencies=concurrencies/> })}
    }
}

/// A library scenario's docstrings, problem and volume shape.
#[component]
fn LibraryDetails(scenario: LibraryScenario, concurrencies: Signal<Vec<u32>>) -> impl IntoView {
    let follows = scenario.follows_concurrency();
    let doc = [scenario.function_doc.clone(), scenario.doc.clone()]
        .into_iter()
        .filter(|d| !d.trim().is_empty())
        .collect::<Vec<_>>();
    view! {
        <div class="library-scenario">
            {doc.into_iter().map(|d| view! { <p class="scenario-doc">{d}</p> }).collect_view()}
            {scenario.problem.clone().map(|p| view! { <p class="error scenario-problem">{p}</p> })}
            {(follows == Some(false)).then(|| view! {
                <p class="hint fixed-volume">"Its volume model sets its own concurrency: the concurrencies chosen above only repeat it."</p>
            })}
            {(!scenario.shapes.is_empty()).then(|| {
                let shapes = scenario.shapes.clone();
                view! { <VolumePreview shapes=shapes concurrencies=concurrencies/> }
            })}
        </div>
    }
}

/// The required journeys over time, one line per chosen concurrency (all
/// the computed ones when none of them is chosen).
#[component]
fn VolumePreview(
    shapes: Vec<domain::library::VolumeShape>,
    concurrencies: Signal<Vec<u32>>,
) -> impl IntoView {
    const W: f64 = 480.0;
    const H: f64 = 120.0;
    const COLOURS: [&str; 4] = ["#2f6fdf", "#e07b00", "#2e9e5b", "#b03a9a"];
    let drawn = move || {
        let chosen = concurrencies.get();
        let shown: Vec<(usize, domain::library::VolumeShape)> = shapes
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, s)| chosen.is_empty() || chosen.contains(&s.concurrency))
            .collect();
        let seconds = shown
            .iter()
            .map(|(_, s)| s.required.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let most = shown
            .iter()
            .flat_map(|(_, s)| s.required.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1);
        let x = move |t: usize| t as f64 * W / seconds as f64;
        let y = move |v: u32| H - f64::from(v) * (H - 4.0) / f64::from(most);
        let lines = shown.iter().map(|(i, s)| {
            let mut points = String::new();
            for (t, v) in s.required.iter().enumerate() {
                points.push_str(&format!("{:.1},{:.1} {:.1},{:.1} ", x(t), y(*v), x(t + 1), y(*v)));
            }
            let colour = COLOURS[i % COLOURS.len()];
            view! { <polyline class="volume-line" data-concurrency=s.concurrency.to_string() points=points fill="none" stroke=colour stroke-width="2"/> }
        }).collect_view();
        let legend = shown.iter().map(|(i, s)| {
            let colour = COLOURS[i % COLOURS.len()];
            let text = format!(
                "{} → up to {} journeys{}",
                s.concurrency,
                s.required.iter().max().copied().unwrap_or(0),
                if s.stops { "" } else { ", and on past the end" }
            );
            view! { <span class="legend-item"><span class="swatch" style=format!("background:{colour}")></span>{text}</span> }
        }).collect_view();
        view! {
            <svg class="volume-shape" viewBox=format!("0 0 {W} {H}") width=W.to_string() height=H.to_string() role="img">
                <line x1="0" y1=H.to_string() x2=W.to_string() y2=H.to_string() stroke="#c9cfdb"/>
                {lines}
            </svg>
            <p class="hint">{format!("Required journeys over {seconds} s (at most {most}), as its volume model asks for them with a {SHAPE_DURATION_S} s duration, per concurrency: ")}{legend}</p>
        }
    };
    view! { <div class="volume-preview">{drawn}</div> }
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

/// The hint under the builds field: what this host has installed, once
/// known (`None`: not read yet, so nothing is said of it), and what else
/// it can fetch.
fn builds_hint(have: Option<&[String]>) -> String {
    match have {
        None => "comma separated, taking turns; any PyPI version (e.g. 2.10.0) is fetched \
                 first if this host lacks it"
            .to_string(),
        Some([]) => "comma separated, taking turns; none installed on this host yet: any \
                     PyPI version (e.g. 2.10.0) is fetched first"
            .to_string(),
        Some(have) => format!(
            "comma separated, taking turns; this host has {}; any other PyPI version \
             (e.g. 2.10.0) is fetched first",
            have.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::builds_hint;

    #[test]
    fn the_builds_hint_never_shows_an_empty_list() {
        let unknown = builds_hint(None);
        assert!(
            !unknown.contains("has") && !unknown.contains("none"),
            "{unknown}"
        );
        let none = builds_hint(Some(&[]));
        assert!(
            !none.contains("has ;") && none.contains("none installed"),
            "{none}"
        );
        let some = builds_hint(Some(&["pinned".into(), "2.11.0".into()]));
        assert!(some.contains("this host has pinned, 2.11.0;"), "{some}");
    }
}
