//! Signing in and out with a name and a password: plain form posts, so
//! they work before (or without) the page's script. A signed-in browser
//! holds a session cookie (HttpOnly, SameSite=Lax, Secure behind TLS); its
//! session lives in the database.

use std::time::Instant;

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_login::AuthSession;
use serde::Deserialize;

use app::access::safe_next;
use app::api::LabError;

use super::errors::ErrorResponse;
use super::WebState;
use crate::access::accounts::{Accounts, Credentials};

#[derive(Deserialize)]
pub struct SignInForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

fn back_to_form(next: &str, failed: &str) -> Response {
    let next = crate::access::next_query(safe_next(next));
    Redirect::to(&format!("/signin?failed={failed}&{next}")).into_response()
}

/// `POST /signin`: on success, on to `next` (a path of this lab); else back
/// to the form; 429 after repeated failures.
pub async fn sign_in(
    State(state): State<WebState>,
    mut auth: AuthSession<Accounts>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let from = state.access.source(&parts);
    let Ok(Form(form)) =
        Form::<SignInForm>::from_request(Request::from_parts(parts, body), &()).await
    else {
        return ErrorResponse(LabError::invalid("form", "send a name and a password"))
            .into_response();
    };
    let name = form.name.trim().to_string();
    let throttle = &state.access.throttle;
    if let Err(wait) = throttle.check(&name, &from, Instant::now()) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-ins for {name} from here: try again in {minutes} minute{}.\n",
                if minutes == 1 { "" } else { "s" }
            ),
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let credentials = Credentials {
        name: name.clone(),
        password: form.password,
    };
    let store = &state.access.store;
    match auth.authenticate(credentials).await {
        Ok(Some(user)) => {
            if let Err(e) = auth.login(&user).await {
                tracing::error!("cannot open a session for {name}: {e}");
                return ErrorResponse(LabError::Unavailable(
                    "cannot open a session now: try again in a moment".into(),
                ))
                .into_response();
            }
            throttle.succeeded(&name, &from);
            log(store, &name, "sign-in", &from).await;
            Redirect::to(safe_next(&form.next)).into_response()
        }
        Ok(None) => {
            throttle.failed(&name, &from, Instant::now());
            log(store, &name, "sign-in failed", &from).await;
            back_to_form(&form.next, "1")
        }
        Err(e) => {
            tracing::error!("cannot check {name}'s password: {e}");
            back_to_form(&form.next, "unavailable")
        }
    }
}

/// `POST /signout`: ends the session, back to the sign-in form.
pub async fn sign_out(
    State(state): State<WebState>,
    mut auth: AuthSession<Accounts>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    match auth.logout().await {
        Ok(Some(user)) => {
            log(
                &state.access.store,
                &user.name,
                "sign-out",
                &state.access.source(&parts),
            )
            .await
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot end a session: {e}"),
    }
    Redirect::to("/signin").into_response()
}

async fn log(store: &crate::store::Store, who: &str, action: &str, from: &str) {
    if let Err(e) = store.record_activity(who, action, "", from).await {
        tracing::warn!("cannot log {action} of {who}: {e}");
    }
}
