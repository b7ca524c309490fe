//! Who did what (admins only): sign-ins and failed ones, launches, cancels,
//! removals, cleanups, account and token changes, newest first.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::answer_status;
use crate::api::get_activity;
use domain::format;

#[component]
pub fn ActivityPage() -> impl IntoView {
    let query = use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<i64>().ok())
    };
    let entries = Resource::new_blocking(before, get_activity);
    view! {
        <section class="card">
            <h1>"Activity"</h1>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || entries.get().map(|answer| match answer {
                    Err(e) => {
                        answer_status(e.status());
                        view! { <p class="error">{e.to_string()}</p> }.into_any()
                    }
                    Ok(entries) if entries.is_empty() => view! { <p class="empty">"Nothing yet."</p> }.into_any(),
                    Ok(entries) => {
                        let oldest = entries.last().map(|e| e.id);
                        view! {
                            <table class="activity">
                                <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"To what"</th><th>"From"</th></tr></thead>
                                <tbody>
                                    {entries.into_iter().map(|e| { let action = e.action.clone(); view! {
                                        <tr data-action=action>
                                            <td>{format::utc(e.at)}</td>
                                            <td>{e.actor}</td>
                                            <td>{e.action}</td>
                                            <td>{e.subject}</td>
                                            <td>{e.source}</td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                            {oldest.map(|id| view! { <a href=format!("/activity?before={id}")>"Older"</a> })}
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
