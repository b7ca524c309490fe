//! `GET /healthz`: 200 when the database answers and the run worker (if
//! this lab has one) is well; 503 with the reason otherwise.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use super::WebState;

#[derive(serde::Serialize)]
struct Health {
    database: String,
    worker: String,
    run_in_progress: Option<i64>,
}

pub async fn healthz(State(state): State<WebState>) -> impl IntoResponse {
    let db = state.lab.store().ping().await;
    let health = state.lab.health();
    let worker = if let Some(panic) = health.panic {
        Err(panic)
    } else if health.ended {
        Err("ended: no queued run will be taken until the lab restarts".to_string())
    } else if state.lab.is_agent() {
        Ok("ok")
    } else {
        // A web front alone: its agents execute the runs.
        Ok("none: this lab executes no runs")
    };
    let status = if db.is_ok() && worker.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            database: db
                .map(|()| "ok".to_string())
                .unwrap_or_else(|e| e.to_string()),
            worker: worker.map_or_else(|why| why, str::to_string),
            run_in_progress: state.lab.current_run(),
        }),
    )
}
