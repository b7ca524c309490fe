//! The reverse proxy in front of the lab (nginx terminating TLS, perhaps
//! with oauth2-proxy or an `auth_request` for single sign-on).
//!
//! A proxy is believed only when it proves itself: the request comes from
//! one of its addresses *and* carries its secret in
//! [`PROXY_SECRET_HEADER`]. An address alone proves nothing, wherever the
//! proxy is: every process on the lab's host connects from its loopback,
//! its LAN address or a container bridge's gateway alike (scenario code,
//! mite's HTTP clients), so a proxy without a secret is refused at start
//! ([`TrustedProxy::new`]). A proven proxy says who the client is
//! (`X-Forwarded-For`: the sign-in throttle and the activity log use it)
//! and, with single sign-on, who the user is. Addresses are compared in
//! canonical form: `::ffff:127.0.0.1` is 127.0.0.1.

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::http::HeaderName;

use domain::access::Role;

use super::secret::Secret;

/// The header a proxy proves itself with (nginx: `proxy_set_header`).
pub const PROXY_SECRET_HEADER: &str = "x-mite-perf-proxy-secret";

/// The header a proven proxy names the client's address in.
pub const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";

/// Why the lab may not trust a proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Named without a secret to prove itself with.
    #[error(
        "the trusted proxy {0} has no secret, and an address proves nothing: every process on \
         this host (scenario code included) can connect from 127.0.0.1, the host's own \
         addresses or a container bridge's gateway, and could then name any user or client. \
         Give the proxy a secret with --trusted-proxy-secret-file FILE and have it send that \
         secret in the X-Mite-Perf-Proxy-Secret header (deploy/nginx.conf shows how)"
    )]
    NoSecret(IpAddr),
    /// `--trusted-proxy` not given, but something that needs it was.
    #[error("name the proxy's address with --trusted-proxy")]
    NoAddress,
}

/// The reverse proxy in front of the lab.
#[derive(Debug, Clone)]
pub struct TrustedProxy {
    /// The proxy's own addresses, canonical: it is believed only on
    /// requests from them.
    addresses: Vec<IpAddr>,
    /// What the proxy sends in [`PROXY_SECRET_HEADER`].
    secret: Secret,
    /// The header the proxy names the user in (single sign-on); `None`: a
    /// proxy that only forwards (TLS), whose users sign in with passwords.
    pub user_header: Option<HeaderName>,
    /// The role of a user the proxy names for the first time.
    pub default_role: Role,
}

impl TrustedProxy {
    /// The proxy at `addresses`, which proves itself with `secret`: without
    /// a secret it is refused, whatever its addresses.
    pub fn new(
        addresses: Vec<IpAddr>,
        secret: Option<Secret>,
        user_header: Option<HeaderName>,
        default_role: Role,
    ) -> Result<TrustedProxy, ProxyError> {
        let first = *addresses.first().ok_or(ProxyError::NoAddress)?;
        let secret = secret.ok_or(ProxyError::NoSecret(first.to_canonical()))?;
        Ok(TrustedProxy {
            addresses: addresses.iter().map(IpAddr::to_canonical).collect(),
            secret,
            user_header,
            default_role,
        })
    }

    /// The proxy's addresses, canonical.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// Whether a request from `peer` comes from the proxy: from one of its
    /// addresses (compared in canonical form), with its secret.
    pub fn proven(&self, parts: &Parts, peer: Option<IpAddr>) -> bool {
        let from_proxy = peer.is_some_and(|ip| self.addresses.contains(&ip.to_canonical()));
        from_proxy
            && parts
                .headers
                .get(PROXY_SECRET_HEADER)
                .is_some_and(|presented| self.secret.matches(presented.as_bytes()))
    }

    /// The client a proven proxy forwarded the request for: the last
    /// address of its `X-Forwarded-For` (the one the proxy itself saw; the
    /// earlier ones are the client's own claim), canonical. `None` when the
    /// request is not the proxy's, or names no address.
    pub fn client(&self, parts: &Parts, peer: Option<IpAddr>) -> Option<IpAddr> {
        if !self.proven(parts, peer) {
            return None;
        }
        let forwarded = parts
            .headers
            .get_all(FORWARDED_FOR_HEADER)
            .iter()
            .next_back()?;
        let last = forwarded.to_str().ok()?.rsplit(',').next()?.trim();
        last.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn proxy(addresses: &[IpAddr]) -> TrustedProxy {
        TrustedProxy::new(
            addresses.to_vec(),
            Some(Secret::new(SECRET).expect("secret")),
            Some(HeaderName::from_static("x-forwarded-user")),
            Role::Viewer,
        )
        .expect("a proxy with a secret")
    }

    fn parts(secret: Option<&str>, forwarded: Option<&str>) -> Parts {
        let mut request = axum::http::Request::get("/");
        if let Some(secret) = secret {
            request = request.header(PROXY_SECRET_HEADER, secret);
        }
        if let Some(forwarded) = forwarded {
            request = request.header(FORWARDED_FOR_HEADER, forwarded);
        }
        request.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn a_proxy_is_believed_only_with_its_secret_and_from_its_address() {
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 9].into();
        let p = proxy(&[loopback]);
        assert!(p.proven(&parts(Some(SECRET), None), Some(loopback)));
        assert!(!p.proven(&parts(None, None), Some(loopback)), "no secret");
        assert!(!p.proven(
            &parts(Some("0123456789abcdef0123456789abcdee"), None),
            Some(loopback)
        ));
        assert!(
            !p.proven(&parts(Some(SECRET), None), Some(other)),
            "elsewhere"
        );
        assert!(!p.proven(&parts(Some(SECRET), None), None));
        // A lab bound to [::] sees local peers IPv4-mapped.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(p.proven(&parts(Some(SECRET), None), Some(mapped)));
        let named_mapped = proxy(&[mapped]);
        assert_eq!(named_mapped.addresses(), &[loopback]);
        assert!(named_mapped.proven(&parts(Some(SECRET), None), Some(loopback)));
    }

    #[test]
    fn a_proxy_without_a_secret_is_refused_whatever_its_address() {
        for address in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "10.0.0.5",
            "172.17.0.1",
            "192.0.2.10",
        ] {
            let ip: IpAddr = address.parse().expect("ip");
            let refused = TrustedProxy::new(vec![ip], None, None, Role::Viewer)
                .expect_err("no secret, no trust");
            assert!(
                refused.to_string().contains("--trusted-proxy-secret-file"),
                "{refused}"
            );
            assert_eq!(refused, ProxyError::NoSecret(ip.to_canonical()));
        }
        assert_eq!(
            TrustedProxy::new(
                Vec::new(),
                Some(Secret::new(SECRET).expect("secret")),
                None,
                Role::Viewer
            )
            .map(|_| ()),
            Err(ProxyError::NoAddress)
        );
    }

    #[test]
    fn the_client_is_the_last_forwarded_address_of_a_proven_proxy() {
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let p = proxy(&[loopback]);
        let client = |secret, forwarded| p.client(&parts(secret, forwarded), Some(loopback));
        assert_eq!(
            client(Some(SECRET), Some("192.0.2.7")),
            Some([192, 0, 2, 7].into())
        );
        // What the client claimed comes first; the proxy's word is last.
        assert_eq!(
            client(Some(SECRET), Some("203.0.113.1, 192.0.2.7")),
            Some([192, 0, 2, 7].into())
        );
        assert_eq!(
            client(Some(SECRET), Some("::ffff:192.0.2.7")),
            Some([192, 0, 2, 7].into())
        );
        assert_eq!(client(Some(SECRET), Some("not an address")), None);
        assert_eq!(client(Some(SECRET), None), None);
        assert_eq!(client(None, Some("192.0.2.7")), None, "not proven");
    }
}
