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

use app::api::LabError;
use domain::access::{check_name, safe_next};

use super::errors::ErrorResponse;
use super::WebState;
use crate::access::accounts::{Accounts, Credentials};
use crate::access::throttle::DEVICE_COOKIE;

#[derive(Deserialize)]
pub struct SignInForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

fn back_to_form(next: &str, failed: &str) -> Response {
    let next = super::caller::next_query(safe_next(next));
    Redirect::to(&format!("/signin?failed={failed}&{next}")).into_response()
}

/// The longest password the lab checks (a longer one cannot be right, and
/// the check's cost grows with it).
pub const MAX_PASSWORD: usize = 1024;

/// A 429 with a sentence and when to come back (whole seconds, rounded up).
fn slow_down(sentence: String, wait: std::time::Duration) -> Response {
    let mut response = (StatusCode::TOO_MANY_REQUESTS, format!("{sentence}\n")).into_response();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `POST /signin`: on success, on to `next` (a path of this lab); else back
/// to the form; 429 after repeated failures ([`crate::access::throttle`])
/// or while too many passwords wait to be checked.
pub async fn sign_in(
    State(state): State<WebState>,
    mut auth: AuthSession<Accounts>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let from = state.access.source(&parts);
    let device = crate::access::cookie(&parts, DEVICE_COOKIE);
    let Ok(Form(form)) =
        Form::<SignInForm>::from_request(Request::from_parts(parts, body), &()).await
    else {
        return ErrorResponse(LabError::invalid("form", "send a name and a password"))
            .into_response();
    };
    let name = form.name.trim().to_string();
    let throttle = &state.access.throttle;
    let store = &state.access.store;
    if let Err(refusal) = throttle.check(&name, &from, device.as_deref(), Instant::now()) {
        return slow_down(refusal.sentence(&bounded(&name)), refusal.wait);
    }
    // A name the lab cannot hold, or a password longer than any it keeps,
    // is wrong without being checked.
    if check_name(&name).is_err() || form.password.len() > MAX_PASSWORD {
        throttle.failed(&name, &from, device.as_deref(), Instant::now());
        log(store, &bounded(&name), "sign-in failed", &from).await;
        return back_to_form(&form.next, "1");
    }
    let Some(_turn) = state.lab.password_checks().turn().await else {
        return slow_down(
            "The lab is checking many sign-ins at once: try again in a few seconds.".into(),
            std::time::Duration::from_secs(5),
        );
    };
    // Failures counted while this one waited its turn count too.
    if let Err(refusal) = throttle.check(&name, &from, device.as_deref(), Instant::now()) {
        return slow_down(refusal.sentence(&bounded(&name)), refusal.wait);
    }
    let credentials = Credentials {
        name: name.clone(),
        password: form.password,
    };
    match auth.authenticate(credentials).await {
        Ok(Some(user)) => {
            if let Err(e) = auth.login(&user).await {
                tracing::error!("cannot open a session for {name}: {e}");
                return ErrorResponse(LabError::Unavailable(
                    "cannot open a session now: try again in a moment".into(),
                ))
                .into_response();
            }
            let device = throttle.succeeded(&name, &from, device.as_deref());
            log(store, &name, "sign-in", &from).await;
            let mut response = Redirect::to(safe_next(&form.next)).into_response();
            if let Some(value) = device.and_then(|d| {
                HeaderValue::from_str(&format!(
                    "{DEVICE_COOKIE}={d}; Path=/signin; Max-Age={DEVICE_MAX_AGE}; HttpOnly; \
                     SameSite=Strict{}",
                    if state.access.policy.secure_cookies {
                        "; Secure"
                    } else {
                        ""
                    }
                ))
                .ok()
            }) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Ok(None) => {
            throttle.failed(&name, &from, device.as_deref(), Instant::now());
            log(store, &name, "sign-in failed", &from).await;
            back_to_form(&form.next, "1")
        }
        Err(e) => {
            tracing::error!("cannot check {name}'s password: {e}");
            back_to_form(&form.next, "unavailable")
        }
    }
}

/// How long a browser is remembered as one that signed in (a year).
const DEVICE_MAX_AGE: u64 = 365 * 24 * 3600;

/// A typed name as the log and the answers show it: at most 64
/// characters, control characters replaced.
fn bounded(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if name.chars().count() > 64 {
        shown.push('…');
    }
    shown
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
