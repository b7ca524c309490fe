//! One run: live while it runs (status, figures and charts refresh every
//! 2 s), then its detail: charts, summaries, parameters and downloads.
//!
//! The page is built once per run; live updates change its text in place
//! and append new points to its charts, so a zoom or a hidden series stays
//! as the user left it.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::compare::ComparisonTable;
use super::matrix::{has_matrix, BuildMatrix};
use super::mite_view::MiteViewPanel;
use super::share::ShareLinks;
use super::signin::IfMay;
use super::{answer_status, poll, StatusBadge};
use crate::api::{
    compare_runs, get_chart_points, get_charts, get_run, CancelRun, MarkBaseline, RunView,
    ScenarioView,
};
use crate::charts;
use crate::charts::scenario_chart_id;
use domain::access::Action;
use domain::chart_spec::CHARTS_PER_SCENARIO;
use domain::format;
use domain::model::{RunStatus, ScenarioStatus};
use domain::profile::ProfileView;
use domain::provenance::Provenance;

/// How often a live run's page asks for news.
const LIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let cancel = ServerAction::<CancelRun>::new();
    // Blocking: the server waits for the run before answering, so that "no
    // such run" is a 404 and "the database is down" a 503.
    let run = Resource::new_blocking(
        move || (id(), cancel.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_run(id).await,
                None => Ok(None),
            }
        },
    );
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
                Ok(Some(run)) => view! { <LiveRun initial=run cancel=cancel/> }.into_any(),
            })}
        </Transition>
    }
}

/// A run's page, kept current while the run is queued or running.
#[component]
fn LiveRun(initial: RunView, cancel: ServerAction<CancelRun>) -> impl IntoView {
    let run_id = initial.id;
    let latest = RwSignal::new(initial);
    let asking = StoredValue::new(false);
    poll(LIVE_EVERY, move || {
        let live =
            latest.with_untracked(|r| matches!(r.status, RunStatus::Queued | RunStatus::Running));
        if live && !asking.get_value() {
            asking.set_value(true);
            leptos::task::spawn_local(async move {
                if let Ok(Some(view)) = get_run(run_id).await {
                    latest.set(view);
                }
                asking.set_value(false);
            });
        }
    });
    let scenario_ids =
        Memo::new(move |_| latest.with(|r| r.scenarios.iter().map(|s| s.id).collect::<Vec<_>>()));
    let matrix = latest.with_untracked(has_matrix);
    let read_bus = latest.with_untracked(|r| r.params.read_bus);
    view! {
        <RunHeader run=latest cancel=cancel/>
        {matrix.then(|| view! { <BuildMatrix run=latest/> })}
        {move || scenario_ids.with(Vec::is_empty).then(|| view! { <p class="empty">"No scenarios yet."</p> })}
        <For each=move || scenario_ids.get() key=|id| *id let:scenario_id>
            <ScenarioCard scenario=Memo::new(move |_| {
                latest.with(|r| r.scenarios.iter().find(|s| s.id == scenario_id).cloned())
            }) scenario_id=scenario_id read_bus=read_bus/>
        </For>
    }
}

#[component]
fn RunHeader(run: RwSignal<RunView>, cancel: ServerAction<CancelRun>) -> impl IntoView {
    let r = run.get_untracked();
    let id = r.id;
    let status = move || run.with(|r| r.status);
    let cancellable = move || {
        matches!(status(), RunStatus::Queued | RunStatus::Running) && run.with(|r| r.can_cancel)
    };
    view! {
        <section class="card run-header">
            <div class="title-row">
                <h1>{format!("Run #{}", r.id)} {(!r.label.is_empty()).then(|| view! { <span class="label">{r.label.clone()}</span> })}</h1>
                {move || view! { <StatusBadge status=status().to_string()/> }}
                {move || cancellable().then(|| view! {
                    <button class="danger" on:click=move |_| { cancel.dispatch(CancelRun { run_id: id }); } disabled=move || cancel.pending().get()>
                        {if status() == RunStatus::Queued { "Remove from queue" } else { "Cancel run" }}
                    </button>
                })}
            </div>
            {move || run.with(|r| r.queue_position).map(|p| view! { <p class="hint">{format!("Waiting: #{p} in line. It starts by itself when the runs before it end.")}</p> })}
            {move || run.with(|r| r.stage.clone()).map(|s| view! { <p class="stage hint">{format!("Preparing: {s}")}</p> })}
            {move || run.with(|r| r.error.clone()).map(|e| view! { <p class="error">{e}</p> })}
            <dl class="facts">
                <dt>"Scenarios"</dt><dd>{r.params.concurrencies.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")}</dd>
                <dt>"Duration"</dt><dd>{format::span(r.params.duration_ms as i64)} " each"</dd>
                <dt>"Sampling"</dt><dd>{format!("every {} ms", r.params.interval_ms)}</dd>
                <dt>"Spawn rate"</dt><dd>{format!("{} journeys/s", format::count(i64::from(r.params.spawn_rate)))}</dd>
                {r.params.requests.map(|n| view! {
                    <dt>"Fixed work"</dt>
                    <dd class="fixed-work">{if r.params.valgrind {
                        format!("{} and {} requests a scenario, under Valgrind (instructions per request)", format::count(n as i64), format::count(2 * n as i64))
                    } else {
                        format!("{} requests a scenario", format::count(n as i64))
                    }}</dd>
                })}
                {r.params.profile.clone().map(|p| view! {
                    <dt>"Profiled"</dt>
                    <dd class="profiled">{format!("{} ({} stack samples a second, py-spy)", p.processes.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "), p.rate)}</dd>
                })}
                {(!r.params.read_bus).then(|| view! {
                    <dt>"mite's bus"</dt>
                    <dd class="bus-unread">"not read (the seed's measurement only)"</dd>
                })}
                <dt>"Collector data"</dt><dd class="collector-keep">{format!("{} kept per scenario", r.params.collector)}</dd>
                <dt>"Queued"</dt><dd>{format::utc(r.created_at)}{(!r.params.launched_by.is_empty()).then(|| view! { " by " <span class="launched-by">{r.params.launched_by.clone()}</span> })}</dd>
                <dt>"Started"</dt><dd>{move || run.with(|r| r.started_at).map(format::utc).unwrap_or_else(|| "not yet".into())}</dd>
                <dt>"Ended"</dt><dd>{move || run.with(|r| r.ended_at).map(format::utc).unwrap_or_else(|| "–".into())}{move || run.with(|r| r.cancelled_by.clone()).map(|who| view! { <span class="cancelled-by">{format!(" (cancelled by {who})")}</span> })}</dd>
                <dt>"mite"</dt><dd>{move || run.with(|r| r.mite_version.clone())}</dd>
                <dt>"Python"</dt><dd>{move || run.with(|r| r.python_version.clone())}</dd>
                <dt>"Host"</dt><dd>{move || run.with(|r| format!("{} ({} cores)", r.host, r.cores))}</dd>
                <dt>"Agent"</dt><dd class="agent">{move || run.with(|r| r.agent.clone().or_else(|| r.params.agent.clone().map(|a| format!("{a} (asked for)"))).unwrap_or_else(|| "any".into()))}</dd>
            </dl>
            {r.provenance.clone().map(|p| view! { <ProvenanceFacts provenance=p/> })}
            <IfMay action=Action::Read>
                <Baseline run=run/>
            </IfMay>
            <IfMay action=Action::Share>
                <ShareLinks run_id=id/>
            </IfMay>
            <div class="downloads">
                <strong>"Downloads: "</strong>
                <a href=format!("/runs/{id}/samples.csv") download>"samples.csv"</a>
                <a href=format!("/runs/{id}/chart.html") download>"chart.html"</a>
                <a href=format!("/runs/{id}/figures.csv") download>"figures.csv"</a>
                <a href=format!("/runs/{id}/transactions.csv") download>"transactions.csv"</a>
            </div>
        </section>
    }
}

/// What the run measured: its builds, the machine, the target, the scenario.
#[component]
fn ProvenanceFacts(provenance: Provenance) -> impl IntoView {
    let p = provenance;
    let scenario = match &p.scenario.dir {
        Some(dir) => format!(
            "{} from {} (sha256 {})",
            p.scenario.name,
            dir,
            short(&p.scenario.sha256)
        ),
        None => format!("{} (sha256 {})", p.scenario.name, short(&p.scenario.sha256)),
    };
    view! {
        <details class="provenance" open={p.builds.len() > 1}>
            <summary>"What ran"</summary>
            <table class="builds">
                <thead><tr><th>"Build"</th><th>"Asked for"</th><th>"mite"</th><th>"Python"</th><th>"Packages"</th><th>"venv"</th></tr></thead>
                <tbody>
                    {p.builds.iter().enumerate().map(|(i, b)| view! {
                        <tr data-build=(i + 1).to_string()>
                            <td>{format!("b{}", i + 1)}</td>
                            <td>{b.asked.clone()}</td>
                            <td class="build-name">{b.describe()}</td>
                            <td>{b.python_version.clone()}</td>
                            <td class="packages">{packages(b)}</td>
                            <td class="muted">{b.venv.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <dl class="facts">
                <dt>"Scenario"</dt><dd class="scenario-source">{scenario}</dd>
                <dt>"Target"</dt><dd>{p.target.clone()}</dd>
                <dt>"Repeats"</dt><dd>{p.repeats.to_string()}</dd>
                <dt>"CPU"</dt><dd>{format!("{} ({} cores)", p.cpu_model, p.cores)}</dd>
                <dt>"Kernel"</dt><dd>{p.kernel.clone()}</dd>
                <dt>"Lab"</dt><dd>{format!("mite-perf {}", p.lab_version)}</dd>
            </dl>
        </details>
    }
}

/// A build's packages, folded: how many, how they were resolved, and the
/// list (`not recorded` for runs made before the lab kept them).
fn packages(build: &domain::provenance::BuildProvenance) -> impl IntoView {
    if build.packages.is_empty() {
        return view! { <span class="muted">"not recorded"</span> }.into_any();
    }
    let resolved = build
        .resolution
        .as_ref()
        .map(|r| format!(", from {}", r.describe()))
        .unwrap_or_default();
    view! {
        <details>
            <summary>{format!("{} packages{resolved}", build.packages.len())}</summary>
            <pre class="package-list">{build.packages.join("\n")}</pre>
        </details>
    }
    .into_any()
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Against its label's baseline, without a click; or the means to make
/// this run the baseline; or links comparing its builds.
#[component]
fn Baseline(run: RwSignal<RunView>) -> impl IntoView {
    let mark = ServerAction::<MarkBaseline>::new();
    let r = run.get_untracked();
    let id = r.id;
    let builds = r.params.builds().len();
    let done = move || run.with(|r| r.status == RunStatus::Done);
    let baseline = move || {
        let marked = matches!(mark.value().get(), Some(Ok(_)));
        if marked {
            Some(id)
        } else {
            run.with(|r| r.baseline_run)
        }
    };
    let against = Resource::new(
        move || (done(), baseline()),
        move |(done, baseline)| async move {
            match baseline {
                Some(b) if done && b != id => compare_runs(format!("{b},{id}"), None, None)
                    .await
                    .map(Some),
                _ => Ok(None),
            }
        },
    );
    let can_mark =
        move || done() && builds == 1 && !r.label.trim().is_empty() && baseline() != Some(id);
    view! {
        <div class="baseline">
            {move || (baseline() == Some(id)).then(|| view! { <p class="baseline-mark">"This run is the baseline of its label."</p> })}
            {move || can_mark().then(|| view! {
                <button class="small mark-baseline" on:click=move |_| { mark.dispatch(MarkBaseline { run_id: id }); }>"Make this the baseline of its label"</button>
            })}
            {move || match mark.value().get() {
                Some(Err(e)) => Some(view! { <p class="error">{e.to_string()}</p> }),
                _ => None,
            }}
            {(builds > 1).then(|| view! {
                <p class="compare-builds">"Compare its builds: "
                    {(2..=builds).map(|b| view! { <a href=format!("/compare?runs={id}:1,{id}:{b}")>{format!("b{b} against b1")}</a>" " }).collect_view()}
                </p>
            })}
            <Transition fallback=|| ()>
                {move || against.get().map(|a| match a {
                    Ok(Some(report)) => {
                        let base = report.base.run_id;
                        view! {
                            <div class="against-baseline">
                                <h3>"Against baseline " <a href=format!("/compare?runs={base},{id}")>{format!("run {base}")}</a></h3>
                                <ComparisonTable report=report changed_only=true/>
                            </div>
                        }.into_any()
                    }
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p class="warning">{format!("Cannot compare with the baseline: {e}")}</p> }.into_any(),
                })}
            </Transition>
        </div>
    }
}

fn status_text(s: &ScenarioView) -> String {
    let remaining = (s.duration_ms - s.elapsed_ms).max(0);
    match s.status {
        ScenarioStatus::Running if remaining > 0 => {
            format!("running, {} left", format::span(remaining))
        }
        ScenarioStatus::Running => "running, mite is finishing".to_string(),
        other => other.to_string(),
    }
}

#[component]
fn ScenarioCard(
    scenario: Memo<Option<ScenarioView>>,
    scenario_id: i64,
    /// Whether the run read mite's bus (its own view has nothing otherwise).
    read_bus: bool,
) -> impl IntoView {
    let s = scenario.get_untracked();
    let name = s.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    let concurrency = s.as_ref().map(|s| s.concurrency).unwrap_or_default();
    let status = Memo::new(move |_| {
        scenario.with(|s| {
            s.as_ref()
                .map(|s| s.status)
                .unwrap_or(ScenarioStatus::Waiting)
        })
    });
    let field = move |f: fn(&ScenarioView) -> String| {
        move || scenario.with(|s| s.as_ref().map(f).unwrap_or_default())
    };
    let has_samples =
        move || scenario.with(|s| s.as_ref().is_some_and(|s| !s.figures.processes.is_empty()));
    let charted = Memo::new(move |_| {
        !matches!(
            status.get(),
            ScenarioStatus::Waiting | ScenarioStatus::Skipped
        )
    });
    view! {
        <section class="card scenario" data-scenario=name.clone() data-status=move || status.get().to_string()>
            <div class="title-row">
                <h2>{name.clone()} <small>{format!(" {concurrency} concurrent journeys")}</small></h2>
                {move || view! { <StatusBadge status=status.get().to_string()/> }}
                <span class="muted status-text">{field(status_text)}</span>
            </div>
            {move || scenario.with(|s| s.as_ref().and_then(|s| s.error.clone())).map(|e| view! { <p class="error">{e}</p> })}
            {move || scenario.with(|s| s.as_ref().map(|s| s.flags.clone()).unwrap_or_default()).into_iter().map(|f| view! {
                <p class="warning validity" data-issue=f.issue.as_str()><strong>{format!("{}: ", f.issue.as_str())}</strong>{f.sentence}</p>
            }).collect_view()}
            {move || scenario.with(|s| s.as_ref().and_then(|s| s.error_log.clone())).filter(|l| !l.is_empty()).map(|l| view! { <details open><summary>"Log of the failing process"</summary><pre class="log">{l}</pre></details> })}
            <Show when=has_samples>
                <div class="figures">
                    <div class="figure"><span class="big" data-figure="total-requests">{field(|s| format::count(s.figures.total_requests))}</span><span>"requests"</span></div>
                    <div class="figure"><span class="big">{field(|s| format!("{:.0}", s.figures.mean_requests_per_second))}</span><span>"mean req/s"</span></div>
                    <div class="figure"><span class="big">{field(|s| format!("{:.0}", s.figures.peak_requests_per_second))}</span><span>"peak req/s"</span></div>
                    <div class="figure"><span class="big">{field(|s| s.figures.requests_per_runner_cpu_second.map(|r| format!("{r:.0}")).unwrap_or_else(|| "–".into()))}</span><span>"requests per runner CPU-second"</span></div>
                </div>
                <Show when=move || scenario.with(|s| s.as_ref().is_some_and(|s| !s.figures.instructions.is_empty()))>
                    <p class="instructions" data-figure="instructions-per-request">{field(|s| domain::instrument::summary(&s.figures.instructions).unwrap_or_default())}</p>
                </Show>
                <ProcessTable scenario=scenario/>
            </Show>
            {move || match status.get() {
                ScenarioStatus::Waiting => Some(view! { <p class="empty">"Waiting for its turn."</p> }.into_any()),
                ScenarioStatus::Skipped => Some(view! { <p class="empty">"Not run: the run ended before it."</p> }.into_any()),
                _ => None,
            }}
            <Show when=move || charted.get()>
                <ScenarioCharts scenario_id=scenario_id status=status/>
                {if read_bus {
                    view! { <MiteViewPanel scenario_id=scenario_id status=status/> }.into_any()
                } else {
                    view! { <p class="empty bus-unread">"mite's own view: the run left mite's message bus unread (the seed's measurement only)."</p> }.into_any()
                }}
            </Show>
            <div class="downloads">
                <strong>"Downloads: "</strong>
                <a href=format!("/scenarios/{scenario_id}/samples.csv") download>{format!("{name}.csv")}</a>
                <a href=format!("/scenarios/{scenario_id}/transactions.csv") download>{format!("{name}-transactions.csv")}</a>
                <a href=format!("/scenarios/{scenario_id}/processes.csv") download>{format!("{name}-processes.csv")}</a>
                {move || scenario.with(|s| s.as_ref().map(|s| s.logs.clone()).unwrap_or_default()).into_iter().map(|p| view! {
                    <a href=format!("/scenarios/{scenario_id}/logs/{p}") download>{format!("{p}.log")}</a>
                }).collect_view()}
            </div>
            {move || {
                let profiles = scenario.with(|s| s.as_ref().map(|s| s.profiles.clone()).unwrap_or_default());
                (!profiles.is_empty()).then(|| view! { <Profiles profiles=profiles/> })
            }}
            {move || {
                let files = scenario.with(|s| s.as_ref().map(|s| s.collector_files.clone()).unwrap_or_default());
                (!files.is_empty()).then(|| view! {
                    <div class="downloads collector-files">
                        <strong>"mite's collector data: "</strong>
                        {files.into_iter().map(|f| view! {
                            <a href=format!("/scenarios/{scenario_id}/collector/{}", f.name) download data-bytes=f.bytes.to_string()>{f.name.clone()}</a>
                            <span class="muted">{format!(" {} ", format::mib(f.bytes as i64))}</span>
                        }).collect_view()}
                    </div>
                })
            }}
        </section>
    }
}

/// Where mite spent its time: a flame graph per profiled process, drawn as
/// an image; "open alone" shows inferno's SVG with its search, zoom and
/// hover (its script runs sandboxed, apart from the lab's pages).
#[component]
fn Profiles(profiles: Vec<ProfileView>) -> impl IntoView {
    view! {
        <div class="profiles">
            <h3>"Where mite spent its time"</h3>
            {profiles.into_iter().map(|p| {
                let id = p.id;
                let caption = format!("{} (pid {}): {} stack samples at {}/s, {}", p.process, p.pid, format::count(p.samples), p.rate, p.reached());
                view! {
                    <figure class="profile" data-profile=id.to_string() data-process=p.process.to_string()>
                        <figcaption>{caption}</figcaption>
                        {p.problem.clone().map(|problem| view! { <p class="error profile-problem">{problem}</p> })}
                        {(p.samples > 0).then(|| view! {
                            <img class="flamegraph" src=format!("/profiles/{id}/flamegraph.svg") alt="flame graph"/>
                            <div class="downloads">
                                <a href=format!("/profiles/{id}/flamegraph.svg") target="_blank">"open alone (search, zoom)"</a>
                                <a href=format!("/profiles/{id}/stacks.folded") download>"folded stacks"</a>
                                <a href=format!("/profiles/{id}/speedscope.json") download>"speedscope JSON"</a>
                            </div>
                        })}
                    </figure>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
fn ProcessTable(scenario: Memo<Option<ScenarioView>>) -> impl IntoView {
    view! {
        <table class="procs">
            <thead><tr><th>"Process"</th><th class="num">"now CPU"</th><th class="num">"now RSS"</th><th class="num">"mean CPU"</th><th class="num">"peak CPU"</th><th class="num">"peak RSS"</th></tr></thead>
            <tbody>
                {move || scenario.get().map(|s| s.figures.processes.iter().map(|p| {
                    let now = s.latest.iter().find(|l| l.process == p.process).cloned();
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
                }).collect_view())}
            </tbody>
        </table>
    }
}

/// The scenario's charts. Their elements are made once: while the scenario
/// runs, new points are appended (a zoom and hidden series stay); once it
/// ends, the charts are drawn again from its kept overview.
#[component]
fn ScenarioCharts(scenario_id: i64, status: Memo<ScenarioStatus>) -> impl IntoView {
    // Bucket and latest point drawn: what the next update asks from.
    let drawn = StoredValue::new(None::<(i64, i64)>);
    let asking = StoredValue::new(false);
    // The charts the scenario has: runs stored before a chart existed have
    // fewer, and their empty places are not shown.
    let present = RwSignal::new(None::<Vec<usize>>);
    let draw_all = move || {
        leptos::task::spawn_local(async move {
            if let Ok(found) = get_charts(scenario_id, None).await {
                drawn.set_value(Some((found.bucket_ms, found.last_ms)));
                present.set(Some(found.charts.iter().map(|c| c.slot).collect()));
                request_animation_frame(move || {
                    for spec in &found.charts {
                        charts::render(
                            &scenario_chart_id(scenario_id, spec.slot),
                            &spec.option_json,
                            &spec.group,
                        );
                    }
                    // A scenario's charts zoom together: following the first is enough.
                    if let Some(first) = found.charts.first() {
                        charts::follow_zoom(
                            &scenario_chart_id(scenario_id, first.slot),
                            scenario_id,
                        );
                    }
                });
            }
        });
    };
    // Drawn whole at first, and again when the scenario ends.
    Effect::new(move |was_running: Option<bool>| {
        let running = status.get() == ScenarioStatus::Running;
        if was_running.is_none() || (was_running == Some(true) && !running) {
            draw_all();
        }
        running
    });
    poll(LIVE_EVERY, move || {
        if status.get_untracked() != ScenarioStatus::Running || asking.get_value() {
            return;
        }
        let Some((bucket, last)) = drawn.get_value() else {
            return;
        };
        asking.set_value(true);
        leptos::task::spawn_local(async move {
            if let Ok(points) = get_chart_points(scenario_id, bucket, last.max(0)).await {
                drawn.set_value(Some((bucket, points.last_ms.max(last))));
                for chart in &points.charts {
                    charts::append(&scenario_chart_id(scenario_id, chart.slot), &chart.series);
                }
            }
            asking.set_value(false);
        });
    });
    view! {
        <div class="charts processes">
            {(0..CHARTS_PER_SCENARIO).map(|slot| {
                let id = scenario_chart_id(scenario_id, slot);
                let absent =
                    move || present.with(|p| p.as_ref().is_some_and(|slots| !slots.contains(&slot)));
                view! { <div class="chart" class:absent=absent id=id></div> }
            }).collect_view()}
        </div>
    }
}
