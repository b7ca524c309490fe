//! Run history: newest first, paginated, filtered by label and status.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{answer_status, StatusBadge};
use crate::api::list_runs;
use domain::format;
use domain::model::RunStatus;

#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
    };
    let label = move || query.read().get("label").unwrap_or_default();
    let status = move || {
        query
            .read()
            .get("status")
            .and_then(|s| s.parse::<RunStatus>().ok())
    };
    // Blocking: a caller who may not list runs (a share link's holder) is
    // answered with the refusal's status, not a 200 page saying it.
    let runs = Resource::new_blocking(
        move || (page(), label(), status()),
        |(page, label, status)| list_runs(page, label, status),
    );
    let link = move |p: u32| {
        let mut href = format!("/runs?page={p}");
        if !label().is_empty() {
            href.push_str(&format!("&label={}", label()));
        }
        if let Some(s) = status() {
            href.push_str(&format!("&status={s}"));
        }
        href
    };
    view! {
        <section class="card">
            <h1>"Runs"</h1>
            <form method="get" action="/runs" class="filters">
                <input type="text" name="label" placeholder="label contains…" value=label/>
                <select name="status">
                    <option value="">"any status"</option>
                    {["queued", "running", "done", "failed", "interrupted"].into_iter().map(|s| {
                        let selected = move || status().map(|x| x.as_str() == s).unwrap_or(false);
                        view! { <option value=s selected=selected>{s}</option> }
                    }).collect_view()}
                </select>
                <button type="submit">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || runs.get().map(|r| match r {
                    Err(e) => {
                        answer_status(e.status());
                        view! { <p class="error">{e.to_string()}</p> }.into_any()
                    }
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">"No runs yet: " <a href="/">"launch one"</a> "."</p>
                    }.into_any(),
                    Ok(p) => view! {
                        // Two runs ticked and "Compare" opens /compare?runs=A&runs=B,
                        // with or without JavaScript.
                        <form method="get" action="/compare" class="compare-pick">
                        <table class="runs">
                            <thead><tr>
                                <th>"Compare"</th><th>"Run"</th><th>"Label"</th><th>"Started"</th><th>"Duration"</th>
                                <th>"Scenarios"</th><th>"Status"</th><th>"mite"</th><th class="num">"Requests"</th>
                            </tr></thead>
                            <tbody>
                                {p.items.into_iter().map(|run| view! {
                                    <tr>
                                        <td><input type="checkbox" name="runs" value=run.id.to_string() data-compare=run.id.to_string()/></td>
                                        <td><a href=format!("/runs/{}", run.id)>{format!("#{}", run.id)}</a></td>
                                        <td>{run.label.clone()}</td>
                                        <td>{run.started_at.map(format::utc).unwrap_or_else(|| "not yet".into())}</td>
                                        <td>{match (run.started_at, run.ended_at) {
                                            (Some(s), Some(e)) => format::span(e - s),
                                            (Some(_), None) => "running".into(),
                                            _ => String::new(),
                                        }}</td>
                                        <td>{run.concurrencies.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")}</td>
                                        <td><StatusBadge status=run.status.to_string()/></td>
                                        <td>{run.mite_version.clone()}</td>
                                        <td class="num">{format::count(run.total_requests)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <button type="submit" class="compare-selected">"Compare the two ticked runs"</button>
                        </form>
                        <nav class="pager">
                            {(p.page > 1).then(|| view! { <a href=link(p.page - 1)>"← newer"</a> })}
                            <span>{format!("page {} of {} ({} runs)", p.page, p.pages.max(1), p.total)}</span>
                            {(p.page < p.pages).then(|| view! { <a href=link(p.page + 1)>"older →"</a> })}
                        </nav>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
