//! The lab agents sharing the database: each one's machine, ports and
//! builds, its heartbeat and the run it executes.

use leptos::prelude::*;

use super::{answer_status, poll};
use crate::api::{get_agents, AgentState};

#[component]
pub fn AgentsPage() -> impl IntoView {
    let agents = Resource::new_blocking(|| (), |_| get_agents());
    poll(std::time::Duration::from_secs(3), move || agents.refetch());
    view! {
        <section class="card">
            <h1>"Agents"</h1>
            <p class="hint">"Each agent executes runs one at a time on its own ports. One silent for 30 s has its running run marked interrupted by another agent, which never touches its processes."</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || agents.get().map(|answer| match answer {
                    Err(e) => {
                        answer_status(e.status());
                        view! { <p class="error">{e.to_string()}</p> }.into_any()
                    }
                    Ok(agents) if agents.is_empty() => view! { <p class="empty">"No agent has registered: start one with " <code>"mite-perf agent"</code> " or " <code>"mite-perf serve"</code> "."</p> }.into_any(),
                    Ok(agents) => view! {
                        <table class="agents">
                            <thead><tr><th>"Agent"</th><th>"State"</th><th>"Heard from"</th><th>"Run"</th><th>"Machine"</th><th>"Ports"</th><th>"mite builds"</th></tr></thead>
                            <tbody>
                                {agents.into_iter().map(|a| {
                                    let (state, class) = match a.state {
                                        AgentState::Idle => ("idle", "badge badge-done"),
                                        AgentState::Running => ("running", "badge badge-running"),
                                        AgentState::Silent => ("silent", "badge badge-failed"),
                                        AgentState::Stopped => ("stopped", "badge badge-interrupted"),
                                    };
                                    view! {
                                        <tr data-agent=a.name.clone() data-state=state>
                                            <td>{a.name.clone()}</td>
                                            <td><span class=class>{state}</span></td>
                                            <td>{format!("{} s ago", a.heartbeat_age_ms / 1000)}</td>
                                            <td>{a.current_run.map(|id| view! { <a href=format!("/runs/{id}")>{format!("Run {id}")}</a> })}</td>
                                            <td>{format!("{}, {} cores, {}", a.hostname, a.cores, a.cpu_model)}</td>
                                            <td>{a.ports.clone()}</td>
                                            <td>{a.builds.join(", ")}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
