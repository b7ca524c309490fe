//! mite's releases on PyPI, for `trend --backfill`: the simple index's
//! JSON (PEP 691), whose `versions` (PEP 700) list every version uploaded
//! and whose files say when each was uploaded (`upload-time`, PEP 700): a
//! release's moment, for resolving its dependencies as of its release.
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
    #[serde(default)]
    files: Vec<File>,
}

#[derive(serde::Deserialize)]
struct File {
    filename: String,
    #[serde(rename = "upload-time", default)]
    upload_time: Option<String>,
}

/// A release of mite on the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    /// When its last file was uploaded (RFC 3339, UTC), where the index
    /// says (PyPI does; a mirror may not).
    pub uploaded_at: Option<String>,
}

/// The version a file of mite's names: `mite-2.7.0-py3-none-any.whl`,
/// `mite-2.7.0.tar.gz`.
fn file_version(filename: &str) -> Option<&str> {
    let rest = filename.strip_prefix("mite-")?;
    if let Some(wheel) = rest.strip_suffix(".whl") {
        return wheel.split('-').next();
    }
    [".tar.gz", ".zip", ".tar.bz2"]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix))
}

/// Each version with its upload time: the latest of its files'.
fn releases_of(project: Project) -> Vec<Release> {
    project
        .versions
        .into_iter()
        .map(|version| {
            let uploaded_at = project
                .files
                .iter()
                .filter(|f| file_version(&f.filename) == Some(version.as_str()))
                .filter_map(|f| f.upload_time.clone())
                .max();
            Release {
                version,
                uploaded_at,
            }
        })
        .collect()
}

/// Every release of mite on the index (or its mirror), with when it was
/// uploaded.
pub async fn mite_releases() -> Result<Vec<Release>, PypiError> {
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
    Ok(releases_of(project))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_as_old_as_its_last_file() {
        let project: Project = serde_json::from_str(
            r#"{"versions": ["2.7.0", "2.10.0", "2.12.0rc1"], "files": [
                {"filename": "mite-2.7.0-py3-none-any.whl", "upload-time": "2025-11-28T16:06:31.508122Z"},
                {"filename": "mite-2.7.0.tar.gz", "upload-time": "2025-11-28T16:06:36.286493Z"},
                {"filename": "mite-2.10.0.tar.gz", "upload-time": "2026-09-21T13:28:07.298136Z"},
                {"filename": "mite-2.12.0rc1.tar.gz"}
            ]}"#,
        )
        .expect("a simple index's JSON");
        let releases = releases_of(project);
        let at: Vec<Option<&str>> = releases.iter().map(|r| r.uploaded_at.as_deref()).collect();
        assert_eq!(
            at,
            [
                Some("2025-11-28T16:06:36.286493Z"),
                Some("2026-09-21T13:28:07.298136Z"),
                None
            ]
        );
        assert_eq!(file_version("mite-2.7.0-py3-none-any.whl"), Some("2.7.0"));
        assert_eq!(file_version("mite_perf-1.0.tar.gz"), None);
    }
}
