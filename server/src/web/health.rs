//! `GET /healthz`: 200 when the database answers and the run worker is
//! well; 503 with the reason otherwise.

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
    let worker = state.lab.health();
    let status = if db.is_ok() && worker.panic.is_none() {
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
            worker: worker.panic.unwrap_or_else(|| "ok".to_string()),
            run_in_progress: state.lab.current_run(),
        }),
    )
}
