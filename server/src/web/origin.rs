//! No cross-site requests: a request that may change something (any method
//! but GET, HEAD and OPTIONS) is refused (403) when a browser says it comes
//! from another origin, so a web page open in the same browser cannot launch,
//! cancel or clean up by posting a form to the lab, whatever address the lab
//! listens on (another port on 127.0.0.1 is the same *site*, not the same
//! origin).
//!
//! Browsers say where a request comes from in `Sec-Fetch-Site` (all current
//! ones) and `Origin` (every non-GET request). The first is trusted when
//! present, else the second is compared with the `Host` the request was sent
//! to. A request with neither comes from no browser (curl, a CI job, a
//! script): no page can have sent it, so it goes on to whatever else checks it.
//! This is the check Go's `net/http.CrossOriginProtection` makes.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Why a request is refused as cross-origin, or `None` when it may go on.
pub fn cross_origin_refusal(method: &Method, headers: &HeaderMap) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("").trim());
    if let Some(site) = text("sec-fetch-site") {
        // `none`: the user's own action (a bookmark, the address bar).
        return match site {
            "same-origin" | "none" => None,
            other => Some(format!(
                "a {other} request: this lab takes changes only from its own pages"
            )),
        };
    }
    let origin = text(header::ORIGIN.as_str())?;
    let host = text(header::HOST.as_str()).unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        None
    } else {
        Some(format!(
            "a request from {origin} to {}: this lab takes changes only from its own pages",
            if host.is_empty() {
                "an unnamed host"
            } else {
                host
            }
        ))
    }
}

/// The middleware: refuses cross-origin requests with 403 and the reason.
pub async fn same_origin_only(request: Request, next: Next) -> Response {
    match cross_origin_refusal(request.method(), request.headers()) {
        None => next.run(request).await,
        Some(why) => {
            tracing::warn!(
                "refused {} {}: {why}",
                request.method(),
                request.uri().path()
            );
            (StatusCode::FORBIDDEN, format!("refused: {why}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_browser_saying_same_origin_goes_on_and_cross_site_is_refused() {
        let post = Method::POST;
        assert_eq!(
            cross_origin_refusal(&post, &headers(&[("sec-fetch-site", "same-origin")])),
            None
        );
        assert_eq!(
            cross_origin_refusal(&post, &headers(&[("sec-fetch-site", "none")])),
            None
        );
        for site in ["cross-site", "same-site"] {
            let why = cross_origin_refusal(&post, &headers(&[("sec-fetch-site", site)]))
                .expect("refused");
            assert!(why.contains(site), "{why}");
        }
        // Sec-Fetch-Site wins over a matching Origin.
        assert!(cross_origin_refusal(
            &post,
            &headers(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000"),
            ])
        )
        .is_some());
    }

    #[test]
    fn without_sec_fetch_site_the_origin_must_be_the_host_asked() {
        let post = Method::POST;
        let same = headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000"),
        ]);
        assert_eq!(cross_origin_refusal(&post, &same), None);
        let tls = headers(&[
            ("origin", "https://Lab.Example.com"),
            ("host", "lab.example.com"),
        ]);
        assert_eq!(cross_origin_refusal(&post, &tls), None);
        for (origin, host) in [
            ("http://127.0.0.1:8080", "127.0.0.1:3000"),
            ("http://evil.example", "lab.example.com"),
            ("null", "127.0.0.1:3000"),
            ("http://127.0.0.1:3000", ""),
        ] {
            let mut h = headers(&[]);
            h.insert("origin", HeaderValue::from_str(origin).expect("header"));
            if !host.is_empty() {
                h.insert("host", HeaderValue::from_str(host).expect("header"));
            }
            let why = cross_origin_refusal(&post, &h).expect("refused");
            assert!(why.contains(origin), "{why}");
        }
    }

    #[test]
    fn reads_and_requests_from_no_browser_go_on() {
        let cross = headers(&[("sec-fetch-site", "cross-site")]);
        assert_eq!(cross_origin_refusal(&Method::GET, &cross), None);
        assert_eq!(cross_origin_refusal(&Method::HEAD, &cross), None);
        // curl, a CI job: no page sent it.
        assert_eq!(cross_origin_refusal(&Method::POST, &headers(&[])), None);
        assert!(cross_origin_refusal(&Method::DELETE, &cross).is_some());
    }
}
