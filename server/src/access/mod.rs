//! Who is calling, and whether the lab may be reached at all.
//!
//! Every request gets a [`Caller`] (or none) from, in this order: an API
//! token (`Authorization: Bearer`), the single-sign-on proxy's header (only
//! from the proxy, proven by its secret), a sign-in session, on a lab without
//! accounts the local user with every right, or an open share link (its
//! run only). A request without a caller reaches only the sign-in page,
//! share links, health and the site's files: a browser
//! opening a page or a download is sent to sign in and then back to it;
//! anything else is answered 401. What each role may do is decided by the
//! server functions and routes themselves ([`domain::access`]).

pub mod accounts;
pub mod proxy;
pub mod secret;
pub mod throttle;
pub mod tokens;

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::header;
use axum::http::request::Parts;
use axum_login::AuthSession;

use app::api::LabError;
use domain::access::{check_name, Caller, Identity, Role};

use crate::store::Store;
use accounts::Accounts;
pub use proxy::{ProxyError, TrustedProxy};
use throttle::SignInThrottle;

/// When the lab lets everyone in as the local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Openness {
    /// Never: every request needs an account, a token or the proxy.
    Never,
    /// Until the first account is added (a lab on loopback).
    WhileNoAccounts,
    /// Always (`--insecure-no-auth`).
    Always,
}

/// How the lab decides who may in.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub open: Openness,
    pub proxy: Option<TrustedProxy>,
    /// Session cookies only over HTTPS (the lab is behind a TLS proxy).
    pub secure_cookies: bool,
}

impl AccessPolicy {
    /// A lab on loopback without accounts: open until one is added.
    pub fn local() -> Self {
        AccessPolicy {
            open: Openness::WhileNoAccounts,
            proxy: None,
            secure_cookies: false,
        }
    }

    /// The policy of a lab listening on `addr`, decided once: only a lab
    /// on loopback may be open while it has no accounts. Anywhere else
    /// losing every account must not open it to the network.
    pub fn for_address(self, addr: SocketAddr) -> Self {
        let open = match self.open {
            Openness::WhileNoAccounts if !addr.ip().to_canonical().is_loopback() => Openness::Never,
            open => open,
        };
        AccessPolicy { open, ..self }
    }

    /// Why `serve` must not start with this policy on `addr`, or `None`:
    /// off loopback (or behind an HTTPS proxy, which makes a loopback
    /// address public) a lab needs an admin or a single-sign-on proxy's
    /// header, unless told it is open. (A proxy without a secret never
    /// gets this far: [`TrustedProxy::new`] refuses it.)
    pub fn refusal(&self, addr: SocketAddr, admins: i64) -> Option<String> {
        let single_sign_on = self.proxy.as_ref().is_some_and(|p| p.user_header.is_some());
        let guarded = self.open == Openness::Always || single_sign_on || admins > 0;
        let loopback = addr.ip().to_canonical().is_loopback();
        let reachable = !loopback || self.secure_cookies;
        (reachable && !guarded).then(|| {
            let whence = if loopback {
                format!("{addr} is reached through an HTTPS proxy")
            } else {
                format!("{addr} is reachable from other machines")
            };
            format!(
                "{whence} and the lab has no admin: add one with \
                 `mite-perf user add NAME --role admin` (same --database-url), or name a \
                 single-sign-on proxy with --trusted-user-header, --trusted-proxy and \
                 --trusted-proxy-secret-file, or pass --insecure-no-auth to let anyone who \
                 reaches it do anything"
            )
        })
    }
}

/// What the caller middleware needs.
#[derive(Debug)]
pub struct Access {
    pub policy: AccessPolicy,
    pub store: Store,
    pub throttle: SignInThrottle,
    /// Who a lab without accounts is: the user the lab runs as.
    local_name: String,
    /// Whether this lab has had an account: once it has, it stays closed
    /// for as long as it serves, whatever happens to the accounts.
    had_accounts: std::sync::atomic::AtomicBool,
}

impl Access {
    pub fn new(policy: AccessPolicy, store: Store) -> Self {
        let local_name = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .filter(|n| check_name(n).is_ok())
            .unwrap_or_else(|| "local".into());
        Access {
            policy,
            store,
            throttle: SignInThrottle::default(),
            local_name,
            had_accounts: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The caller of a request, `None` for nobody; an error when the
    /// request names a caller that is not valid (a wrong token) or the
    /// database cannot say.
    pub async fn caller(
        &self,
        parts: &Parts,
        peer: Option<IpAddr>,
    ) -> Result<Option<Caller>, LabError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            return self
                .token_caller(value.to_str().unwrap_or(""), self.source(parts))
                .await
                .map(Some);
        }
        if let Some(proxy) = &self.policy.proxy {
            let named = proxy
                .user_header
                .as_ref()
                .and_then(|header| Some((header, parts.headers.get(header)?)));
            if let Some((header, name)) = named {
                if proxy.proven(parts, peer) {
                    let name = name.to_str().unwrap_or("").trim();
                    check_name(name).map_err(|why| {
                        LabError::invalid(header.as_str(), format!("the proxy's user: {why}"))
                    })?;
                    let user = self.store.proxy_user(name, proxy.default_role).await?;
                    return Ok(Some(Caller {
                        name: user.name,
                        role: user.role,
                        identity: Identity::Proxy,
                        from: self.source(parts),
                        run_scope: None,
                        may_upload: false,
                    }));
                }
                tracing::warn!(
                    "ignored {header} from {}: not the trusted proxy (its address, with its \
                     secret)",
                    peer.map_or("an unknown address".into(), |ip| ip.to_string())
                );
            }
        }
        if let Some(user) = parts
            .extensions
            .get::<AuthSession<Accounts>>()
            .and_then(|s| s.user.as_ref())
        {
            return Ok(Some(Caller {
                name: user.name.clone(),
                role: user.role,
                identity: Identity::Account,
                from: self.source(parts),
                run_scope: None,
                may_upload: false,
            }));
        }
        let open = match self.policy.open {
            Openness::Always => true,
            Openness::Never => false,
            Openness::WhileNoAccounts => !self.has_had_accounts().await?,
        };
        if open {
            return Ok(Some(Caller {
                name: self.local_name.clone(),
                role: Role::Admin,
                identity: Identity::Local,
                from: self.source(parts),
                run_scope: None,
                // The person who started a lab without accounts: every right.
                may_upload: true,
            }));
        }
        self.share_caller(parts).await
    }

    /// Whether the lab has, or has had since it started, an account.
    async fn has_had_accounts(&self) -> Result<bool, LabError> {
        use std::sync::atomic::Ordering;
        if self.had_accounts.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let has = self.store.has_users().await?;
        if has {
            self.had_accounts.store(true, Ordering::Relaxed);
        }
        Ok(has)
    }

    /// Someone who opened a share link: its run, and nothing else, while
    /// the link is open (a revoked or expired link is nobody).
    async fn share_caller(&self, parts: &Parts) -> Result<Option<Caller>, LabError> {
        let Some(secret) = cookie(parts, SHARE_COOKIE) else {
            return Ok(None);
        };
        let link = self
            .store
            .share_link_by_hash(&tokens::token_hash(&secret))
            .await?;
        Ok(link
            .filter(|l| l.is_valid(crate::clock::now_ms()))
            .map(|l| Caller {
                name: format!("share link {}", l.id),
                role: Role::Viewer,
                identity: Identity::Share,
                from: self.source(parts),
                run_scope: Some(l.run_id),
                may_upload: false,
            }))
    }

    pub async fn token_caller(
        &self,
        authorization: &str,
        from: String,
    ) -> Result<Caller, LabError> {
        let unauthorized = || {
            LabError::Unauthenticated(
                "this token is not valid (revoked, or mistyped): ask an admin for one made with \
                 `mite-perf token create`"
                    .into(),
            )
        };
        let token = authorization
            .strip_prefix("Bearer ")
            .ok_or_else(|| LabError::Unauthenticated("use `Authorization: Bearer TOKEN`".into()))?;
        let record = self
            .store
            .use_token(&tokens::token_hash(token))
            .await?
            .ok_or_else(unauthorized)?;
        if record.expired(crate::clock::now_ms()) {
            return Err(LabError::Unauthenticated(format!(
                "the token {} expired on {}: ask for a new one",
                record.name,
                domain::format::utc(record.expires_at.unwrap_or_default())
            )));
        }
        // A token acts with at most its owner's role, and not at all once
        // its owner's account is gone.
        let role = match &record.owner {
            None => record.role,
            Some(owner) => {
                let owner = self
                    .store
                    .user_by_name(owner)
                    .await?
                    .ok_or_else(unauthorized)?;
                record.role.min(owner.role)
            }
        };
        Ok(Caller {
            name: format!("token:{}", record.name),
            role,
            identity: Identity::Token,
            from,
            run_scope: None,
            may_upload: record.may_upload,
        })
    }

    /// The client's address: the one the proven proxy forwarded for, else
    /// the peer's; canonical (`::ffff:192.0.2.7` is 192.0.2.7).
    pub fn client(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = peer_ip(parts);
        self.policy
            .proxy
            .as_ref()
            .and_then(|p| p.client(parts, peer))
            .or(peer.map(|ip| ip.to_canonical()))
    }

    /// Where a request comes from, for the activity log and the sign-in
    /// throttle: the client's address ([`Access::client`]).
    pub fn source(&self, parts: &Parts) -> String {
        self.client(parts)
            .map_or_else(|| "unknown".into(), |ip| ip.to_string())
    }
}

pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The cookie a browser that opened a share link keeps its secret in.
pub const SHARE_COOKIE: &str = "mite_perf_share";

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    #[test]
    fn only_loopback_labs_start_without_a_guard() {
        let local = AccessPolicy::local();
        let loopback: SocketAddr = ([127, 0, 0, 1], 3000).into();
        let public: SocketAddr = ([0, 0, 0, 0], 3000).into();
        assert_eq!(local.refusal(loopback, 0), None);
        let refused = local.refusal(public, 0).expect("refused");
        assert!(
            refused.contains("mite-perf user add NAME --role admin"),
            "{refused}"
        );
        assert!(refused.contains("--insecure-no-auth"), "{refused}");
        assert_eq!(local.refusal(public, 1), None);
        let open = AccessPolicy {
            open: Openness::Always,
            ..AccessPolicy::local()
        };
        assert_eq!(open.refusal(public, 0), None);
        let proxy = |header: Option<HeaderName>| {
            TrustedProxy::new(
                vec![[10, 0, 0, 2].into()],
                Some(secret::Secret::new("0123456789abcdef0123456789abcdef").expect("secret")),
                header,
                Role::Viewer,
            )
            .expect("a proxy")
        };
        let proxied = AccessPolicy {
            proxy: Some(proxy(Some(HeaderName::from_static("x-forwarded-user")))),
            ..AccessPolicy::local()
        };
        assert_eq!(proxied.refusal(public, 0), None);
        // A proxy that only forwards (TLS) names no user: it guards nothing.
        let forwarding = AccessPolicy {
            proxy: Some(proxy(None)),
            ..AccessPolicy::local()
        };
        assert!(forwarding.refusal(public, 0).is_some());
        assert_eq!(forwarding.refusal(public, 1), None);
        // Behind an HTTPS proxy, loopback is public too.
        let proxied_tls = AccessPolicy {
            secure_cookies: true,
            ..AccessPolicy::local()
        };
        let refused = proxied_tls.refusal(loopback, 0).expect("refused");
        assert!(refused.contains("through an HTTPS proxy"), "{refused}");
        assert_eq!(proxied_tls.refusal(loopback, 1), None);
    }

    #[test]
    fn only_a_loopback_lab_may_be_open_while_it_has_no_accounts() {
        let loopback: SocketAddr = ([127, 0, 0, 1], 3000).into();
        let v6: SocketAddr = (std::net::Ipv6Addr::LOCALHOST, 3000).into();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:3000".parse().expect("an address");
        for addr in [loopback, v6, mapped] {
            assert_eq!(
                AccessPolicy::local().for_address(addr).open,
                Openness::WhileNoAccounts
            );
        }
        for addr in [([0, 0, 0, 0], 3000).into(), ([10, 0, 0, 5], 3000).into()] {
            assert_eq!(
                AccessPolicy::local().for_address(addr).open,
                Openness::Never,
                "{addr}"
            );
            let insecure = AccessPolicy {
                open: Openness::Always,
                ..AccessPolicy::local()
            };
            assert_eq!(insecure.for_address(addr).open, Openness::Always);
        }
    }
}
