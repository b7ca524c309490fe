//! A run's read-only share links: make one (runners and admins), see who
//! made which and until when, revoke one.

use leptos::prelude::*;

use crate::api::{get_share_links, RevokeShareLink, ShareRun};
use domain::format;

#[component]
pub fn ShareLinks(run_id: i64) -> impl IntoView {
    let share = ServerAction::<ShareRun>::new();
    let revoke = ServerAction::<RevokeShareLink>::new();
    let days = RwSignal::new("7".to_string());
    let links = Resource::new(
        move || (share.version().get(), revoke.version().get()),
        move |_| get_share_links(run_id),
    );
    let make = move |_| {
        let Ok(days) = days.get_untracked().trim().parse::<u32>() else {
            return;
        };
        share.dispatch(ShareRun { run_id, days });
    };
    view! {
        <div class="share">
            <strong>"Share: "</strong>
            "a read-only link to this run for "
            <input class="share-days" type="text" size="3" prop:value=days on:input=move |ev| days.set(event_target_value(&ev))/>
            " days "
            <button class="small make-share" on:click=make disabled=move || share.pending().get()>"Make a link"</button>
            {move || share.value().get().map(|made| match made {
                Ok(link) => {
                    let path = link.path.unwrap_or_default();
                    view! {
                        <p class="share-made">"Anyone with this link sees this run until "
                            {format::utc(link.expires_at)} " (it is shown this once): "
                            <a class="share-link" href=path.clone()>{path.clone()}</a>
                        </p>
                    }.into_any()
                }
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
            <Transition fallback=|| ()>
                {move || links.get().and_then(Result::ok).map(|links| {
                    links.into_iter().map(|l| {
                        let id = l.id;
                        let state = if l.revoked { "revoked".to_string() } else { format!("open until {}", format::utc(l.expires_at)) };
                        view! {
                            <p class="share-entry" data-link=id.to_string()>
                                {format!("Link {id} by {}, {state}", l.created_by)}
                                {(!l.revoked).then(|| view! {
                                    " " <button class="small revoke-share" on:click=move |_| { revoke.dispatch(RevokeShareLink { link_id: id }); }>"Revoke"</button>
                                })}
                            </p>
                        }
                    }).collect_view()
                })}
            </Transition>
            {move || match revoke.value().get() {
                Some(Err(e)) => Some(view! { <p class="error">{e.to_string()}</p> }),
                _ => None,
            }}
        </div>
    }
}
