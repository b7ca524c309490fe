//! The lab answers only to the names it serves. A page on another site can
//! have its own name resolved to 127.0.0.1 (DNS rebinding) and then call
//! the lab as a page of the same origin: the browser sends that name as
//! the `Host`, so such requests are refused (421) before any handler runs.
//!
//! Served: the bound address, loopback addresses, `localhost`, the names of
//! `--public-url`s, and, on a lab bound to every address, any address
//! literal and this machine's host name. An address literal cannot be
//! rebound. A request without a `Host` comes from no browser (HTTP/1.0,
//! a script) and goes on.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The names and addresses a lab answers to.
#[derive(Debug, Clone)]
pub struct ServedHosts {
    bound: IpAddr,
    /// Lower case, without ports.
    names: Vec<String>,
}

impl ServedHosts {
    /// A lab bound to `addr`, also reached as the hosts of `public_urls`.
    pub fn new(addr: SocketAddr, public_urls: &[PublicUrl]) -> Self {
        let mut names = vec!["localhost".to_string()];
        names.extend(public_urls.iter().map(|u| u.host.clone()));
        if addr.ip().is_unspecified() {
            if let Some(host) = sysinfo::System::host_name() {
                names.push(host.to_ascii_lowercase());
            }
        }
        names.sort();
        names.dedup();
        ServedHosts {
            bound: addr.ip(),
            names,
        }
    }

    /// Whether a request sent to `host` (a `Host` header: a name or an
    /// address, maybe with a port) is for this lab.
    pub fn serves(&self, host: &str) -> bool {
        let Some(name) = host_of(host) else {
            return false;
        };
        match name.parse::<IpAddr>() {
            Ok(ip) => self.bound.is_unspecified() || ip == self.bound || ip.is_loopback(),
            Err(_) => self.names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }

    /// What the lab answers to, for the refusal.
    fn described(&self) -> String {
        let address = if self.bound.is_unspecified() {
            "this machine's addresses".to_string()
        } else {
            format!("{} and loopback addresses", self.bound)
        };
        format!("{address}, {}", self.names.join(", "))
    }
}

/// The host part of a `Host` header: `[::1]:3000` → `::1`,
/// `lab.example.com:443` → `lab.example.com`; `None` when malformed.
fn host_of(host: &str) -> Option<&str> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return (after.is_empty() || after.starts_with(':')).then_some(inside);
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    (!name.is_empty()).then_some(name.trim_end_matches('.'))
}

/// An address the lab is reached at from outside (`--public-url
/// https://lab.example.com`): its host is a name the lab answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub url: String,
    /// Lower case, without a port.
    pub host: String,
}

/// Why `--public-url` cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PublicUrlError {
    #[error("`{text}` is not a URL: {source}")]
    NotAUrl {
        text: String,
        source: axum::http::uri::InvalidUri,
    },
    #[error("`{0}`: give the whole URL the lab is reached at, as https://lab.example.com")]
    NotWhole(String),
    #[error("`{0}` names no host")]
    NoHost(String),
}

impl std::str::FromStr for PublicUrl {
    type Err = PublicUrlError;

    fn from_str(text: &str) -> Result<Self, PublicUrlError> {
        let uri: axum::http::Uri = text.parse().map_err(|source| PublicUrlError::NotAUrl {
            text: text.to_string(),
            source,
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(PublicUrlError::NotWhole(text.to_string()));
        }
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| PublicUrlError::NoHost(text.to_string()))?;
        Ok(PublicUrl {
            url: text.trim_end_matches('/').to_string(),
            host: host.to_ascii_lowercase(),
        })
    }
}

/// The middleware: a request for a name the lab does not serve is
/// answered 421 (Misdirected Request) before anything else sees it.
pub async fn served_hosts_only(
    State(hosts): State<Arc<ServedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let asked = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}").to_string())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match asked {
        Some(host) if !hosts.serves(&host) => {
            tracing::warn!(
                "refused {} {} for host {host:?}: not a name this lab serves",
                request.method(),
                request.uri().path()
            );
            (
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "This lab does not answer to {:?}: it answers to {} (more names with \
                     `serve --public-url https://NAME`).\n",
                    host.chars().take(100).collect::<String>(),
                    hosts.described()
                ),
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_lab_answers_to_loopback_names_only() {
        let hosts = ServedHosts::new(([127, 0, 0, 1], 3000).into(), &[]);
        for ok in [
            "127.0.0.1:3000",
            "127.0.0.1",
            "localhost:3000",
            "LOCALHOST",
            "localhost.:3000",
            "[::1]:3000",
            "127.0.0.2:3000",
        ] {
            assert!(hosts.serves(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
            "10.0.0.5:3000",
            "",
            ":3000",
            "[::1",
            "a:b:c",
        ] {
            assert!(!hosts.serves(bad), "{bad}");
        }
    }

    #[test]
    fn public_urls_add_their_names_and_an_open_bind_any_address() {
        let url: PublicUrl = "https://Lab.Example.com/".parse().expect("url");
        assert_eq!(url.host, "lab.example.com");
        assert_eq!(url.url, "https://Lab.Example.com");
        let hosts = ServedHosts::new(([127, 0, 0, 1], 3000).into(), &[url]);
        assert!(hosts.serves("lab.example.com"));
        assert!(hosts.serves("lab.example.com:443"));
        assert!(!hosts.serves("other.example.com"));
        let everywhere = ServedHosts::new(([0, 0, 0, 0], 3000).into(), &[]);
        assert!(everywhere.serves("10.0.0.5:3000"));
        assert!(everywhere.serves("[fe80::1]:3000"));
        assert!(!everywhere.serves("evil.example"));
        let bound = ServedHosts::new(([10, 0, 0, 5], 3000).into(), &[]);
        assert!(bound.serves("10.0.0.5:3000"));
        assert!(!bound.serves("10.0.0.6:3000"));
        for bad in ["lab.example.com", "ftp://lab", "https://"] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
        }
        let v6: PublicUrl = "http://[fd00::1]:3000".parse().expect("url");
        assert_eq!(v6.host, "fd00::1");
    }
}
