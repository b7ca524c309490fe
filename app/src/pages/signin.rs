//! Signing in, the caller in the header, and showing what a caller may do.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::access::{Action, Caller, Identity};
use crate::api::{who_am_i, LabError};

/// The caller of the page, as the lab sees them (asked once per page load).
pub type Me = Resource<Result<Option<Caller>, LabError>>;

/// Asks who is calling, for the whole app.
pub fn provide_me() {
    let me: Me = Resource::new(|| (), |_| who_am_i());
    provide_context(me);
}

fn me() -> Option<Me> {
    use_context::<Me>()
}

/// Shows `children` only when the caller may do `action` (the server
/// checks again: this only hides what would be refused).
#[component]
pub fn IfMay(action: Action, children: ChildrenFn) -> impl IntoView {
    let me = me();
    let may = move || {
        me.and_then(|me| me.get())
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|c| c.may(action))
    };
    view! {
        <Transition fallback=|| ()>
            <Show when=may fallback=|| ()>{children()}</Show>
        </Transition>
    }
}

/// The header's corner: who is signed in, with a way out; or a way in.
#[component]
pub fn CallerBadge() -> impl IntoView {
    let me = me();
    view! {
        <Transition fallback=|| ()>
            {move || me.and_then(|me| me.get()).map(|answer| match answer {
                Ok(Some(caller)) => {
                    let title = match caller.identity {
                        Identity::Local => "a lab without accounts: everyone here is its local user".to_string(),
                        Identity::Proxy => format!("{}, signed in through the team's proxy", caller.role),
                        Identity::Token => format!("{}, by API token", caller.role),
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
                    }.into_any()
                }
                _ => view! { <a href="/signin" class="signin-link">"Sign in"</a> }.into_any(),
            })}
        </Transition>
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
