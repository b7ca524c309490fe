//! How the lab speaks HTTP(S) as a client (to another lab, to PyPI's
//! index): rustls with ring and the system's roots, no redirects followed.

use std::time::Duration;

/// rustls needs a process-wide cryptography provider; the lab uses ring.
/// Installing it again is harmless.
///
/// rustls 0.23.48 deprecates ring's provider for its lack of post-quantum
/// key exchange. ring builds in seconds with nothing but cc; aws-lc-rs,
/// the other provider, adds minutes of C build to every clean build and
/// test run. A CI job talking to its own lab does not need post-quantum
/// secrecy; move to aws-lc-rs when rustls drops ring.
#[allow(deprecated)]
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client as the lab's commands and tests use it: an answer is
/// judged as it is (no redirect followed), within `timeout`.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    install_crypto();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mite-perf/", env!("CARGO_PKG_VERSION")))
        .build()
}
