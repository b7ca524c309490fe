//! One run: live while it runs (status, charts and figures refresh every
//! 2 s), then its detail: charts, summaries, parameters and downloads.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::{answer_status, poll, StatusBadge};
use crate::api::{get_charts, get_run, CancelRun, RunView, ScenarioView};
use crate::charts;
use crate::format;
use crate::model::{RunStatus, ScenarioStatus};

/// How many charts a scenario has (CPU, memory, throughput), and their DOM ids.
pub const CHARTS_PER_SCENARIO: usize = 3;
pub fn chart_dom_id(scenario_id: i64, index: usize) -> String {
    format!("chart-{scenario_id}-{index}")
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let cancel = ServerAction::<CancelRun>::new();
    let refresh = RwSignal::new(0u64);
    // Blocking: the server waits for the run before answering, so that "no
    // such run" is a 404 and "the database is down" a 503.
    let run = Resource::new_blocking(
        move || (id(), refresh.get(), cancel.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_run(id).await,
                None => Ok(None),
            }
        },
    );
    let live = move || {
        run.get_untracked()
            .and_then(|r| r.ok().flatten())
            .map(|r| matches!(r.status, RunStatus::Queued | RunStatus::Running))
            .unwrap_or(false)
    };
    poll(std::time::Duration::from_secs(2), move || {
        if live() {
            refresh.update(|n| *n += 1);
        }
    });

    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || run.get().map(|r| match r {
                Err(e) => {
                    answer_status(e.status());
                    view! { <p class="error">{e.to_string()}</p> }.into_any()
                }
                Ok(None) => {
                    answer_status(404);
                    view! { <p class="empty">"No such run. " <a href="/runs">"See all runs"</a></p> }.into_any()
                }
                Ok(Some(run)) => view! { <RunHeader run=run.clone() cancel=cancel/> <RunBody run=run refresh=refresh/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn RunHeader(run: RunView, cancel: ServerAction<CancelRun>) -> impl IntoView {
    let id = run.id;
    let cancellable = matches!(run.status, RunStatus::Queued | RunStatus::Running);
    view! {
        <section class="card run-header">
            <div class="title-row">
                <h1>{format!("Run #{}", run.id)} {(!run.label.is_empty()).then(|| view! { <span class="label">{run.label.clone()}</span> })}</h1>
                <StatusBadge status=run.status.to_string()/>
                {cancellable.then(|| view! {
                    <button class="danger" on:click=move |_| { cancel.dispatch(CancelRun { run_id: id }); } disabled=move || cancel.pending().get()>
                        {if run.status == RunStatus::Queued { "Remove from queue" } else { "Cancel run" }}
                    </button>
                })}
            </div>
            {run.queue_position.map(|p| view! { <p class="hint">{format!("Waiting: #{p} in line. It starts by itself when the runs before it end.")}</p> })}
            {run.error.clone().map(|e| view! { <p class="error">{e}</p> })}
            <dl class="facts">
                <dt>"Scenarios"</dt><dd>{run.params.concurrencies.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")}</dd>
                <dt>"Duration"</dt><dd>{format::span(run.params.duration_ms as i64)} " each"</dd>
                <dt>"Sampling"</dt><dd>{format!("every {} ms", run.params.interval_ms)}</dd>
                <dt>"Spawn rate"</dt><dd>{format!("{} journeys/s", format::count(i64::from(run.params.spawn_rate)))}</dd>
                <dt>"Queued"</dt><dd>{format::utc(run.created_at)}{(!run.params.launched_by.is_empty()).then(|| format!(" by {}", run.params.launched_by))}</dd>
                <dt>"Started"</dt><dd>{run.started_at.map(format::utc).unwrap_or_else(|| "not yet".into())}</dd>
                <dt>"Ended"</dt><dd>{run.ended_at.map(format::utc).unwrap_or_else(|| "–".into())}</dd>
                <dt>"mite"</dt><dd>{run.mite_version.clone()}</dd>
                <dt>"Python"</dt><dd>{run.python_version.clone()}</dd>
                <dt>"Host"</dt><dd>{format!("{} ({} cores)", run.host, run.cores)}</dd>
            </dl>
            <div class="downloads">
                <strong>"Downloads: "</strong>
                <a href=format!("/runs/{id}/samples.csv") download>"samples.csv"</a>
                <a href=format!("/runs/{id}/chart.html") download>"chart.html"</a>
            </div>
        </section>
    }
}

#[component]
fn RunBody(run: RunView, refresh: RwSignal<u64>) -> impl IntoView {
    if run.scenarios.is_empty() {
        return view! { <p class="empty">"No scenarios yet."</p> }.into_any();
    }
    run.scenarios
        .into_iter()
        .map(|s| view! { <ScenarioCard scenario=s refresh=refresh/> })
        .collect_view()
        .into_any()
}

#[component]
fn ScenarioCard(scenario: ScenarioView, refresh: RwSignal<u64>) -> impl IntoView {
    let sid = scenario.id;
    let remaining = (scenario.duration_ms - scenario.elapsed_ms).max(0);
    let status_text = match scenario.status {
        ScenarioStatus::Running if remaining > 0 => {
            format!("running, {} left", format::span(remaining))
        }
        ScenarioStatus::Running => "running, mite is finishing".to_string(),
        other => other.to_string(),
    };
    let f = scenario.figures.clone();
    let has_samples = !f.processes.is_empty();
    view! {
        <section class="card scenario" data-scenario=scenario.name.clone() data-status=scenario.status.to_string()>
            <div class="title-row">
                <h2>{scenario.name.clone()} <small>{format!(" {} concurrent journeys", scenario.concurrency)}</small></h2>
                <StatusBadge status=scenario.status.to_string()/>
                <span class="muted status-text">{status_text}</span>
            </div>
            {scenario.error.clone().map(|e| view! { <p class="error">{e}</p> })}
            {scenario.error_log.clone().filter(|l| !l.is_empty()).map(|l| view! { <details open><summary>"Log of the failing process"</summary><pre class="log">{l}</pre></details> })}
            {has_samples.then(|| view! {
                <div class="figures">
                    <div class="figure"><span class="big" data-figure="total-requests">{format::count(f.total_requests)}</span><span>"requests"</span></div>
                    <div class="figure"><span class="big">{format!("{:.0}", f.mean_requests_per_second)}</span><span>"mean req/s"</span></div>
                    <div class="figure"><span class="big">{format!("{:.0}", f.peak_requests_per_second)}</span><span>"peak req/s"</span></div>
                    <div class="figure"><span class="big">{f.requests_per_runner_cpu_second.map(|r| format!("{r:.0}")).unwrap_or_else(|| "–".into())}</span><span>"requests per runner CPU-second"</span></div>
                </div>
                <table class="procs">
                    <thead><tr><th>"Process"</th><th class="num">"now CPU"</th><th class="num">"now RSS"</th><th class="num">"mean CPU"</th><th class="num">"peak CPU"</th><th class="num">"peak RSS"</th></tr></thead>
                    <tbody>
                        {f.processes.iter().map(|p| {
                            let now = scenario.latest.iter().find(|l| l.process == p.process).cloned();
                            view! {
                                <tr>
                                    <td>{p.process.to_string()}</td>
                                    <td class="num">{now.as_ref().map(|n| format::percent(n.cpu)).unwrap_or_else(|| "–".into())}</td>
                                    <td class="num">{now.as_ref().map(|n| format::mib(n.mem)).unwrap_or_else(|| "–".into())}</td>
                                    <td class="num">{format::percent(p.mean_cpu)}</td>
                                    <td class="num">{format::percent(p.peak_cpu)}</td>
                                    <td class="num">{format::mib(p.peak_rss)}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {match scenario.status {
                ScenarioStatus::Waiting => view! { <p class="empty">"Waiting for its turn."</p> }.into_any(),
                ScenarioStatus::Skipped => view! { <p class="empty">"Not run: the run ended before it."</p> }.into_any(),
                _ => view! { <ScenarioCharts scenario_id=sid refresh=refresh/> }.into_any(),
            }}
            <div class="downloads">
                <strong>"Downloads: "</strong>
                <a href=format!("/scenarios/{sid}/samples.csv") download>{format!("{}.csv", scenario.name)}</a>
                {scenario.logs.iter().map(|p| view! {
                    <a href=format!("/scenarios/{sid}/logs/{p}") download>{format!("{p}.log")}</a>
                }).collect_view()}
            </div>
        </section>
    }
}

/// The scenario's charts. The chart elements stay in place across live
/// updates, so zoom and legend choices survive them.
#[component]
fn ScenarioCharts(scenario_id: i64, refresh: RwSignal<u64>) -> impl IntoView {
    let data = Resource::new(
        move || refresh.get(),
        move |_| get_charts(scenario_id, None),
    );
    Effect::new(move |_| {
        if let Some(Ok(specs)) = data.get() {
            request_animation_frame(move || {
                for spec in &specs {
                    charts::render(&spec.dom_id, &spec.option_json, &spec.group);
                }
                // A scenario's charts zoom together: following the first is enough.
                if let Some(first) = specs.first() {
                    charts::follow_zoom(&first.dom_id, scenario_id);
                }
            });
        }
    });
    view! {
        <div class="charts">
            {(0..CHARTS_PER_SCENARIO).map(|i| view! { <div class="chart" id=chart_dom_id(scenario_id, i)></div> }).collect_view()}
        </div>
    }
}
