//! Signing in, the caller in the header, and showing what a caller may do.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use leptos::server::SharedValue;

use domain::access::{Action, Caller, Identity};

/// The caller of the page, as the lab saw them when it rendered the page:
/// computed on the server and handed to the browser with the page (no
/// request of its own, nothing to wait for).
#[derive(Debug, Clone, PartialEq)]
pub struct Me(pub Option<Caller>);

/// Gives the whole app its caller.
pub fn provide_me() {
    let caller = SharedValue::new(|| {
        #[cfg(feature = "ssr")]
        {
            crate::api::current_caller()
        }
        #[cfg(not(feature = "ssr"))]
        {
            None::<Caller>
        }
    });
    provide_context(Me(caller.into_inner()));
}

fn me() -> Option<Caller> {
    use_context::<Me>().and_then(|me| me.0)
}

/// Shows `children` only when the caller may do `action` (the server
/// checks again: this only hides what would be refused).
#[component]
pub fn IfMay(action: Action, children: Children) -> impl IntoView {
    let may = me().is_some_and(|c| c.may(action));
    may.then(children)
}

/// The header's corner: who is signed in, with a way out; or a way in.
#[component]
pub fn CallerBadge() -> impl IntoView {
    match me() {
        Some(caller) => {
            let title = match caller.identity {
                Identity::Local => {
                    "a lab without accounts: everyone here is its local user".to_string()
                }
                Identity::Proxy => format!("{}, signed in through the team's proxy", caller.role),
                Identity::Token => format!("{}, by API token", caller.role),
                Identity::Share => "a read-only link to one run".to_string(),
                Identity::Account => caller.role.to_string(),
            };
            let signs_out = caller.identity == Identity::Account;
            view! {
                <span class="caller" title=title data-role=caller.role.as_str()>
                    <span class="caller-name">{caller.name.clone()}</span>
                    <span class="caller-role">{format!(" · {}", caller.role)}</span>
                </span>
                {signs_out.then(|| view! {
                    <form method="post" action="/signout" class="signout">
                        <button type="submit" class="small">"Sign out"</button>
                    </form>
                })}
            }
            .into_any()
        }
        None => view! { <a href="/signin" class="signin-link">"Sign in"</a> }.into_any(),
    }
}

/// `/signin`: a plain form (it works before the page's script runs) that
/// posts to the lab, which sends the browser on to `next`.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    let failed = move || query.read().get("failed");
    view! {
        <section class="card signin">
            <h1>"Sign in"</h1>
            {move || failed().map(|why| view! {
                <p class="error">{if why == "unavailable" {
                    "The lab cannot check passwords now: try again in a moment."
                } else {
                    "Wrong name or password."
                }}</p>
            })}
            <form method="post" action="/signin" class="signin-form">
                <label>"Name"
                    <input type="text" name="name" autocomplete="username" required/>
                </label>
                <label>"Password"
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <input type="hidden" name="next" value=next/>
                <button type="submit" class="primary">"Sign in"</button>
            </form>
            <p class="hint">"An admin adds accounts with " <code>"mite-perf user add NAME --role runner"</code> "."</p>
        </section>
    }
}
