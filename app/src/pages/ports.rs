//! Who holds the lab's ports, and a cleanup for what the lab left behind.

use leptos::prelude::*;

use super::signin::IfMay;
use super::{answer_status, poll};
use crate::api::{get_ports, CleanupPorts, PortHolder};
use domain::access::Action;

#[component]
pub fn PortsPage() -> impl IntoView {
    let cleanup = ServerAction::<CleanupPorts>::new();
    // Blocking: a caller who may not see the ports gets the refusal's status.
    let ports = Resource::new_blocking(move || cleanup.version().get(), |_| get_ports());
    poll(std::time::Duration::from_secs(3), move || ports.refetch());
    view! {
        <section class="card">
            <h1>"Ports"</h1>
            <p class="hint">"Each agent's five ports: a run needs them all free. Ports of agents on other machines can only be looked at there. Cleanup stops only processes the lab itself started (on this machine); anything else is named, never killed."</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || ports.get().map(|p| match p {
                    Err(e) => {
                        answer_status(e.status());
                        view! { <p class="error">{e.to_string()}</p> }.into_any()
                    }
                    Ok(ports) if ports.is_empty() => view! {
                        <p class="empty">"No agent is alive: start one (`mite-perf agent`, or `mite-perf serve` without --no-agent)."</p>
                    }.into_any(),
                    Ok(ports) => view! {
                        <table class="ports">
                            <thead><tr><th>"Agent"</th><th>"Port"</th><th>"Used by"</th><th>"State"</th></tr></thead>
                            <tbody>
                                {ports.into_iter().map(|p| view! {
                                    <tr data-port=p.port.to_string() data-agent=p.agent.clone()>
                                        <td>{p.agent.clone()}</td>
                                        <td class="num">{p.port.to_string()}</td>
                                        <td>{p.purpose.clone()}</td>
                                        <td>{if !p.seen {
                                            view! { <span class="badge">"on that agent's machine"</span> }.into_any()
                                        } else if p.holders.is_empty() {
                                            view! { <span class="badge badge-done">"free"</span> }.into_any()
                                        } else {
                                            p.holders.into_iter().map(|h| match h {
                                                PortHolder::Lab { pid, command } => view! {
                                                    <div><span class="badge badge-running">"lab"</span>{format!(" pid {pid}: {command}")}</div>
                                                }.into_any(),
                                                PortHolder::Foreign { pid, command } => view! {
                                                    <div><span class="badge badge-failed">"other process"</span>{format!(" pid {}: {command}", pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()))}</div>
                                                }.into_any(),
                                            }).collect_view().into_any()
                                        }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <IfMay action=Action::Cleanup>
                <button class="primary" on:click=move |_| { cleanup.dispatch(CleanupPorts {}); } disabled=move || cleanup.pending().get()>
                    "Clean up the lab's leftovers"
                </button>
            </IfMay>
            {move || cleanup.value().get().map(|r| match r {
                Ok(report) => view! { <pre class="report">{report}</pre> }.into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
        </section>
    }
}
