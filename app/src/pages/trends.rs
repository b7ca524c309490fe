//! Trends: every series of the lab's history (a figure of a scenario on a
//! machine class, across mite builds) with a sparkline and its latest
//! change, and one series' page with its chart, changes and points.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::answer_status;
use super::signin::IfMay;
use crate::api::{
    get_series, get_trends, BackfillOutcome, BackfillReleases, MarkTrend, SeriesSummary,
    TrendChange,
};
use crate::charts;
use domain::access::Action;

#[component]
pub fn TrendsPage() -> impl IntoView {
    let query = use_query_map();
    let figure = move || query.read().get("figure").unwrap_or_default();
    let series = Resource::new_blocking(figure, get_trends);
    view! {
        <section class="card">
            <h1>"Trends"</h1>
            <p class="hint">"Each figure of each scenario on one machine class, across mite builds (releases in version order, commits in commit order), with the steps found in it. Also on the command line: " <code>"mite-perf trend"</code> "."</p>
            <form method="get" action="/trends" class="filters">
                <input type="text" name="figure" placeholder="figure contains… (rss, cpu, journey)" value=figure/>
                <button type="submit">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || series.get().map(|answer| match answer {
                    Err(e) => {
                        answer_status(e.status());
                        view! { <p class="error">{e.to_string()}</p> }.into_any()
                    }
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No series yet: a series needs finished runs (with provenance) of a scenario. Measure a few mite builds, e.g. " <code>"mite-perf run --mite 2.10.0,2.11.0 --repeat 3"</code> "."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="trends">
                            <thead><tr><th>"Figure"</th><th>"Scenario"</th><th>"Machine"</th><th>"Builds"</th><th>"Latest"</th><th>"Latest change"</th></tr></thead>
                            <tbody>{list.into_iter().map(|s| view! { <SeriesRow series=s/> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <IfMay action=Action::Launch>
                <Backfill/>
            </IfMay>
        </section>
    }
}

/// A fresh lab's release history: one queued run per PyPI release of a range.
#[component]
fn Backfill() -> impl IntoView {
    let backfill = ServerAction::<BackfillReleases>::new();
    view! {
        <h2>"Release history"</h2>
        <p class="hint">"Queue one run per mite release on PyPI in a range (10 and 100 journeys, 30 s, three repeats, every release's dependencies from the agent's one dependency snapshot, labelled " <code>"releases"</code> "), so the trends show mite across its releases on this lab's machines. More choices (each release's dependencies as of its release date, too): " <code>"mite-perf trend --backfill 2.0.0..2.11.0"</code> "."</p>
        <ActionForm action=backfill attr:class="filters" attr:data-backfill="1">
            <input type="text" name="range" placeholder="2.0.0..2.11.0" required/>
            <button type="submit" disabled=move || backfill.pending().get()>"Queue the releases"</button>
        </ActionForm>
        {move || backfill.value().get().map(|answer| match answer {
            Ok(BackfillOutcome::Queued(runs)) => {
                let count = runs.len();
                view! {
                <p class="ok" data-backfilled=count.to_string()>
                    {format!("Queued {count} runs: ")}
                    {runs.into_iter().map(|(version, id)| view! {
                        <a href=format!("/runs/{id}")>{version}</a>" "
                    }).collect_view()}
                    <span class="hint" data-dependencies="snapshot">"(every release's dependencies from the agent's one dependency snapshot: alike, so a step is mite's)"</span>
                </p>
                }.into_any()
            }
            Ok(BackfillOutcome::Invalid(why)) => view! { <p class="error">{why}</p> }.into_any(),
            Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
        })}
    }
}

#[component]
fn SeriesRow(series: SeriesSummary) -> impl IntoView {
    let href = format!("/trends/{}", series.id);
    let direction = if series.higher_is_better {
        "↑"
    } else {
        "↓"
    };
    view! {
        <tr data-series=series.id.clone()>
            <td><a href=href>{format!("{} {direction}", series.figure)}</a></td>
            <td>{series.scenario.clone()}</td>
            <td class="machine">{series.machine.clone()}</td>
            <td><Sparkline values=series.medians.clone()/></td>
            <td>{format!("{}: {}", series.latest_build, series.latest)}</td>
            <td>
                {series.latest_change.map(|c| view! { <Change change=c/> })}
                {series.creep.map(|c| view! { <span class="badge badge-failed" data-creep="1">{format!("creep {c}")}</span> })}
            </td>
        </tr>
    }
}

/// A change: its size, worse or better, suspected or confirmed, and the
/// comparison around it.
#[component]
fn Change(change: TrendChange) -> impl IntoView {
    let class = if change.worse {
        "badge badge-failed"
    } else {
        "badge badge-done"
    };
    let state = if change.confirmed {
        "confirmed"
    } else {
        "suspected"
    };
    view! {
        <span class="change" data-change=change.build.clone() data-state=state>
            <span class=class>{format!("{} at {}", change.change, change.build)}</span>
            " " {state}
            {change.compare.map(|href| view! { " · " <a href=href>"compare"</a> })}
            {change.acknowledged_by.map(|who| view! { <span class="acknowledged" data-acknowledged=who.clone()>{format!(" · acknowledged by {who}")}</span> })}
            {change.claimed_by.map(|who| view! { <span class="claimed" data-claimed=who.clone()>{format!(" · its commit claimed by {who}")}</span> })}
            {change.dependencies.into_iter().map(|sentence| view! { <span class="dependencies" data-dependencies="">{format!(" · but {sentence}")}</span> }).collect::<Vec<_>>()}
        </span>
    }
}

/// A series' medians as a small line, newest at the right.
#[component]
fn Sparkline(values: Vec<f64>) -> impl IntoView {
    let (low, high) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(*v), h.max(*v))
        });
    let span = if high > low { high - low } else { 1.0 };
    let step = if values.len() > 1 {
        100.0 / (values.len() - 1) as f64
    } else {
        0.0
    };
    let points: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                22.0 - (v - low) / span * 20.0
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    view! {
        <svg class="sparkline" viewBox="0 0 100 24" preserveAspectRatio="none" role="img">
            <title>{format!("{} builds", values.len())}</title>
            <polyline points=points fill="none" stroke="currentColor" stroke-width="1.5"/>
        </svg>
    }
}

/// The element a series' chart is drawn in.
const SERIES_CHART: &str = "series-chart";

#[component]
pub fn SeriesPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let mark = ServerAction::<MarkTrend>::new();
    let series = Resource::new_blocking(
        move || (id(), mark.version().get()),
        |(id, _)| get_series(id),
    );
    // A mark's refusal (a role too low, a build gone) is said, not lost.
    let refused = move || match mark.value().get() {
        Some(Err(e)) => Some(view! { <p class="error">{e.to_string()}</p> }),
        _ => None,
    };
    let toggle = move |series: String, build: String, kind: &'static str, set: bool| {
        mark.dispatch(MarkTrend {
            series,
            build,
            kind: kind.into(),
            set,
        });
    };
    Effect::new(move |_| {
        if let Some(Ok(view)) = series.get() {
            request_animation_frame(move || {
                charts::render(SERIES_CHART, &view.chart.option_json, &view.chart.group);
            });
        }
    });
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || series.get().map(|answer| match answer {
                Err(e) => {
                    answer_status(e.status());
                    view! { <section class="card"><p class="error">{e.to_string()}</p></section> }.into_any()
                }
                Ok(view) => {
                    let s = view.summary.clone();
                    view! {
                        <section class="card">
                            <h1>{format!("{} {}", s.figure, if s.higher_is_better { "↑" } else { "↓" })}</h1>
                            <p>{s.scenario.clone()} " · on " {s.machine.clone()}</p>
                            <p><a href="/trends">"All series"</a></p>
                            <div class="chart wide" id=SERIES_CHART></div>
                            <h2>"Changes"</h2>
                            {refused}
                            {if view.changes.is_empty() {
                                view! { <p class="empty">"No change found."</p> }.into_any()
                            } else {
                                let series_id = s.id.clone();
                                view! { <ul class="changes">{view.changes.into_iter().map(|c| {
                                    let (series_id, build, set) = (series_id.clone(), c.build.clone(), c.acknowledged_by.is_none());
                                    let label = if set { "Acknowledge" } else { "Take back" };
                                    view! {
                                        <li>
                                            <Change change=c/>
                                            <IfMay action=Action::MarkTrend>
                                                " " <button class="small" data-acknowledge=build.clone() on:click=move |_| toggle(series_id.clone(), build.clone(), "acknowledged", set)>{label}</button>
                                            </IfMay>
                                        </li>
                                    }
                                }).collect_view()}</ul> }.into_any()
                            }}
                            {s.creep.map(|c| view! { <p class="warning" data-creep="1">{format!("Creep: {c}.")}</p> })}
                            <h2>"Points"</h2>
                            <table class="points">
                                <thead><tr><th>"Build"</th><th>"Median"</th><th>"95 % interval"</th><th>"Repeats"</th><th>"Runs"</th><th></th><th></th></tr></thead>
                                <tbody>
                                    {view.points.into_iter().map(|p| {
                                        let mut marks: Vec<String> = Vec::new();
                                        if p.release { marks.push("release".into()); }
                                        if p.step { marks.push("step".into()); }
                                        if p.outlier { marks.push("outlier".into()); }
                                        if let Some(who) = &p.claimed_by { marks.push(format!("commit claimed by {who}")); }
                                        if let Some(who) = &p.excluded_by { marks.push(format!("excluded by {who}")); }
                                        let (series_id, build, set) = (s.id.clone(), p.build.clone(), p.excluded_by.is_none());
                                        let label = if set { "Exclude" } else { "Include" };
                                        // An admin may leave out every point an uploader claimed.
                                        let claimant = p.claimed_by.clone().map(|who| {
                                            let (series_id, build, set) = (series_id.clone(), build.clone(), !p.claimant_excluded);
                                            view! {
                                                <IfMay action=Action::Administer>
                                                    " " <button class="small" data-exclude-claimant=who.clone() on:click={
                                                        let (series_id, build) = (series_id.clone(), build.clone());
                                                        move |_| toggle(series_id.clone(), build.clone(), "claimant", set)
                                                    }>{if set { format!("Exclude all of {who}") } else { format!("Include all of {who}") }}</button>
                                                </IfMay>
                                            }
                                        });
                                        view! {
                                            <tr data-build=p.build.clone()>
                                                <td>{p.build.clone()}</td>
                                                <td>{p.median.clone()}</td>
                                                <td>{p.interval.clone()}</td>
                                                <td>{p.repeats}</td>
                                                <td>{p.runs.iter().map(|r| view! { <a href=format!("/runs/{r}")>{r.to_string()}</a> " " }).collect_view()}</td>
                                                <td>{marks.join(", ")}</td>
                                                <td>
                                                    <IfMay action=Action::MarkTrend>
                                                        <button class="small" data-exclude=build.clone() on:click={
                                                            let (series_id, build) = (series_id.clone(), build.clone());
                                                            move |_| toggle(series_id.clone(), build.clone(), "excluded", set)
                                                        }>{label}</button>
                                                    </IfMay>
                                                    {claimant}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
