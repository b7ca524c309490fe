//! mite's releases on PyPI, for `trend --backfill`: the simple index's
//! JSON (PEP 691), whose `versions` (PEP 700) list every version uploaded.
//! `MITE_PERF_PYPI_INDEX` names a mirror (a simple index's root URL).

use std::time::Duration;

/// The environment variable naming a mirror of PyPI's simple index.
pub const INDEX_ENV: &str = "MITE_PERF_PYPI_INDEX";
/// PyPI's simple index.
pub const PYPI_INDEX: &str = "https://pypi.org/simple";

#[derive(Debug, thiserror::Error)]
pub enum PypiError {
    #[error("cannot ask {url} for mite's versions: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered what is not a simple index's JSON: {reason}")]
    Unreadable { url: String, reason: String },
}

#[derive(serde::Deserialize)]
struct Project {
    versions: Vec<String>,
}

/// Every version of mite on the index (or its mirror).
pub async fn mite_versions() -> Result<Vec<String>, PypiError> {
    let root = std::env::var(INDEX_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| PYPI_INDEX.to_string());
    let url = format!("{}/mite/", root.trim().trim_end_matches('/'));
    let unreachable = |e: reqwest::Error| PypiError::Unreachable {
        url: url.clone(),
        reason: e.to_string(),
    };
    let client = crate::http_client::http_client(Duration::from_secs(30)).map_err(unreachable)?;
    let response = client
        .get(&url)
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.pypi.simple.v1+json",
        )
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(PypiError::Status {
            url: url.clone(),
            status: response.status().as_u16(),
        });
    }
    let project: Project = response.json().await.map_err(|e| PypiError::Unreadable {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    Ok(project.versions)
}
