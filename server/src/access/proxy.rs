//! The single-sign-on proxy in front of the lab (oauth2-proxy, an nginx
//! `auth_request`), which names the user in a header.
//!
//! A proxy is believed only when it proves itself: the request comes from
//! one of its addresses *and*, when the lab was given a secret, carries
//! that secret in [`PROXY_SECRET_HEADER`]. An address alone proves little
//! when the proxy shares the lab's host: every local process (scenario
//! code, mite's HTTP clients) connects from 127.0.0.1 too, so a loopback
//! proxy without a secret is refused at start ([`TrustedProxy::refusal`]).

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::http::HeaderName;

use domain::access::Role;

use super::secret::Secret;

/// The header a proxy proves itself with (nginx: `proxy_set_header`).
pub const PROXY_SECRET_HEADER: &str = "x-mite-perf-proxy-secret";

/// A single-sign-on proxy in front of the lab.
#[derive(Debug, Clone)]
pub struct TrustedProxy {
    /// The header the proxy names the user in.
    pub header: HeaderName,
    /// The proxy's own addresses: the header counts only on requests from them.
    pub addresses: Vec<IpAddr>,
    /// What the proxy sends in [`PROXY_SECRET_HEADER`], when it was given one.
    pub secret: Option<Secret>,
    /// The role of a user the proxy names for the first time.
    pub default_role: Role,
}

impl TrustedProxy {
    /// Whether a request from `peer` comes from the proxy: from one of its
    /// addresses, with its secret when it has one.
    pub fn proven(&self, parts: &Parts, peer: Option<IpAddr>) -> bool {
        let from_proxy = peer.is_some_and(|ip| self.addresses.contains(&ip));
        from_proxy
            && self.secret.as_ref().is_none_or(|secret| {
                parts
                    .headers
                    .get(PROXY_SECRET_HEADER)
                    .is_some_and(|presented| secret.matches(presented.as_bytes()))
            })
    }

    /// Why the lab must not start trusting this proxy, or `None`: a proxy
    /// on this host's loopback (or any address of it) must prove itself
    /// with a secret, since every local process shares its address.
    pub fn refusal(&self) -> Option<String> {
        let local = self
            .addresses
            .iter()
            .find(|ip| ip.is_loopback() || ip.is_unspecified())?;
        self.secret.is_none().then(|| {
            format!(
                "the trusted proxy {local} is on this host, where every process (scenario code \
                 included) could name any user: give the proxy a secret with \
                 --trusted-proxy-secret-file FILE and have it send that secret in the \
                 {PROXY_SECRET_HEADER} header (deploy/nginx.conf shows how)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn proxy(addresses: &[IpAddr], secret: Option<&str>) -> TrustedProxy {
        TrustedProxy {
            header: HeaderName::from_static("x-forwarded-user"),
            addresses: addresses.to_vec(),
            secret: secret.map(|s| Secret::new(s).expect("secret")),
            default_role: Role::Viewer,
        }
    }

    fn parts(secret: Option<&str>) -> Parts {
        let mut request = axum::http::Request::get("/");
        if let Some(secret) = secret {
            request = request.header(PROXY_SECRET_HEADER, secret);
        }
        request.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn a_proxy_with_a_secret_is_believed_only_with_it_and_from_its_address() {
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 9].into();
        let p = proxy(&[loopback], Some(SECRET));
        assert!(p.proven(&parts(Some(SECRET)), Some(loopback)));
        assert!(!p.proven(&parts(None), Some(loopback)), "no secret");
        assert!(!p.proven(
            &parts(Some("0123456789abcdef0123456789abcdee")),
            Some(loopback)
        ));
        assert!(!p.proven(&parts(Some(SECRET)), Some(other)), "elsewhere");
        assert!(!p.proven(&parts(Some(SECRET)), None));
        // Without a secret, the address is enough (a proxy on another host).
        let remote = proxy(&[other], None);
        assert!(remote.proven(&parts(None), Some(other)));
        assert!(!remote.proven(&parts(None), Some(loopback)));
    }

    #[test]
    fn a_proxy_on_this_host_needs_a_secret() {
        for local in ["127.0.0.1", "::1", "0.0.0.0", "127.0.0.2"] {
            let ip: IpAddr = local.parse().expect("ip");
            let why = proxy(&[[10, 0, 0, 2].into(), ip], None)
                .refusal()
                .expect("refused");
            assert!(why.contains("--trusted-proxy-secret-file"), "{why}");
            assert_eq!(proxy(&[ip], Some(SECRET)).refusal(), None);
        }
        assert_eq!(proxy(&[[10, 0, 0, 2].into()], None).refusal(), None);
    }
}
