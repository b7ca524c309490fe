//! Who may do what. Every request is someone's: a [`Caller`] with a
//! [`Role`]. Viewers read and download; runners also launch, and cancel or
//! remove their own runs; admins also cancel anyone's, clean up and manage
//! accounts. Uploading a build ([`Action::Upload`]) comes with no role: it
//! is a right of its own, carried only by an API token an admin made with
//! it (for CI), since an uploaded wheel is code every agent will run. The
//! server decides the caller of each request; the pages use the same rules
//! only to hide what the caller could not do anyway.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Viewer,
    Runner,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Runner, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Runner => "runner",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("`{s}` is not a role: use viewer, runner or admin"))
    }
}

/// How the lab knows who a caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// Signed in with a name and password (a session cookie).
    Account,
    /// Named by the team's single-sign-on proxy (a trusted header).
    Proxy,
    /// An API token (`Authorization: Bearer`).
    Token,
    /// A lab without accounts (on loopback, or `--insecure-no-auth`): the
    /// person who started it, with every right.
    Local,
    /// A read-only share link to one run, for someone without an account.
    Share,
}

/// Someone making a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// What runs record as their launcher: a user's name, or `token:NAME`.
    pub name: String,
    pub role: Role,
    pub identity: Identity,
    /// Where the request came from (an address), for the activity log.
    pub from: String,
    /// The one run a share link shows; `None`: not limited to a run.
    #[serde(default)]
    pub run_scope: Option<i64>,
    /// Whether the caller holds the right to upload builds, which no role
    /// brings: an API token made with it (`mite-perf token create …
    /// --may-upload`), or the local user of a lab without accounts.
    #[serde(default)]
    pub may_upload: bool,
}

/// What a request does, as far as rights go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// See pages, runs, charts, ports and builds; download CSVs, logs, charts.
    Read,
    /// See one run: its page, charts, figures and downloads (what a share
    /// link allows).
    ReadRun(i64),
    /// Make (or revoke) a read-only share link to a run.
    Share,
    /// Queue a run.
    Launch,
    /// Upload a build (a mite wheel) for runs to install: a runner's, and
    /// only with the right to upload ([`Caller::may_upload`]).
    Upload,
    /// Make a run the baseline of its label.
    MarkBaseline,
    /// Exclude a trend's point from its fit, or acknowledge a change.
    MarkTrend,
    /// Cancel or remove a run someone else launched (one's own: [`Role::Runner`]).
    CancelAnyones,
    /// Stop the leftovers of a crashed lab.
    Cleanup,
    /// See the activity log; manage accounts and tokens.
    Administer,
}

impl Action {
    /// The least role that may do it.
    pub fn least_role(self) -> Role {
        match self {
            Action::Read | Action::ReadRun(_) => Role::Viewer,
            Action::Launch
            | Action::Upload
            | Action::MarkBaseline
            | Action::MarkTrend
            | Action::Share => Role::Runner,
            Action::CancelAnyones | Action::Cleanup | Action::Administer => Role::Admin,
        }
    }

    fn in_words(self) -> &'static str {
        match self {
            Action::Read => "see the lab",
            Action::ReadRun(_) => "see this run",
            Action::Share => "share runs",
            Action::Launch => "launch runs",
            Action::Upload => "upload builds",
            Action::MarkBaseline => "mark baselines",
            Action::MarkTrend => "mark trends' points",
            Action::CancelAnyones => "cancel other people's runs",
            Action::Cleanup => "clean up the lab host",
            Action::Administer => "manage the lab",
        }
    }
}

/// Why a caller may not do something: the contract answers it as
/// forbidden (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

impl Caller {
    pub fn may(&self, action: Action) -> bool {
        match self.run_scope {
            // A share link: its own run, and nothing else.
            Some(scope) => action == Action::ReadRun(scope),
            None if action == Action::Upload => self.may_upload && self.role >= action.least_role(),
            None => self.role >= action.least_role(),
        }
    }

    /// `Ok` when the caller may do it, else why not.
    pub fn require(&self, action: Action) -> Result<(), Denied> {
        if self.may(action) {
            Ok(())
        } else if let Some(scope) = self.run_scope {
            Err(Denied(format!(
                "this share link shows run {scope} only: sign in to see more"
            )))
        } else if action == Action::Upload && self.role >= action.least_role() {
            Err(Denied(format!(
                "{} may not upload builds: a wheel is code every agent will run, so only an \
                 API token an admin made with `mite-perf token create NAME --role runner \
                 --may-upload` may (a CI job's)",
                self.name
            )))
        } else {
            Err(Denied(format!(
                "{} is a {}: only a {} or above may {}",
                self.name,
                self.role,
                action.least_role(),
                action.in_words()
            )))
        }
    }

    /// Whether the caller may cancel (or remove from the queue) a run that
    /// `launched_by` launched: admins any run, runners their own.
    pub fn may_cancel(&self, launched_by: &str) -> bool {
        self.may(Action::CancelAnyones) || (self.may(Action::Launch) && self.name == launched_by)
    }

    pub fn require_cancel(&self, launched_by: &str) -> Result<(), Denied> {
        if self.may_cancel(launched_by) {
            Ok(())
        } else if self.may(Action::Launch) {
            Err(Denied(format!(
                "this run is {}'s: only they or an admin may cancel it",
                if launched_by.is_empty() {
                    "someone else"
                } else {
                    launched_by
                }
            )))
        } else {
            self.require(Action::Launch)
        }
    }
}

/// Whether `name` may name a user or a token: 1 to 64 letters, digits and
/// `.`, `_`, `-`, `@` (a proxy's names are often e-mail addresses).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a name is 1 to 64 characters".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        Some(c) => Err(format!(
            "`{c}` cannot be in a name: use letters, digits, `.`, `_`, `-` and `@`"
        )),
        None => Ok(()),
    }
}

/// Where to go after signing in: `next` when it is a path of this lab
/// (`/runs/7`), else the front page. Never another site (`//evil`, `https:`).
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if local {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str, role: Role) -> Caller {
        Caller {
            name: name.into(),
            role,
            identity: Identity::Account,
            from: "10.0.0.9".into(),
            run_scope: None,
            may_upload: false,
        }
    }

    #[test]
    fn roles_grow_rights_and_runners_cancel_only_their_own() {
        let viewer = caller("vi", Role::Viewer);
        let runner = caller("ru", Role::Runner);
        let admin = caller("ad", Role::Admin);
        assert!(viewer.may(Action::Read));
        assert!(!viewer.may(Action::Launch));
        assert!(runner.may(Action::Launch) && !runner.may(Action::Cleanup));
        assert!(admin.may(Action::Cleanup) && admin.may(Action::Administer));

        assert!(runner.may_cancel("ru"));
        assert!(!runner.may_cancel("ad"));
        assert!(!runner.may_cancel(""));
        assert!(admin.may_cancel("ru"));
        // A viewer cannot cancel even a run recorded under their name.
        assert!(!viewer.may_cancel("vi"));

        let refused = runner.require_cancel("ad").expect_err("not theirs");
        assert!(refused.to_string().contains("ad's"), "{refused}");
        let refused = viewer.require(Action::Launch).expect_err("viewer");
        assert_eq!(
            refused.to_string(),
            "vi is a viewer: only a runner or above may launch runs"
        );
    }

    #[test]
    fn uploading_is_a_right_of_its_own_that_no_role_brings() {
        let runner = caller("ru", Role::Runner);
        let admin = caller("ad", Role::Admin);
        for who in [&runner, &admin] {
            assert!(who.may(Action::Launch) && !who.may(Action::Upload));
            let refused = who.require(Action::Upload).expect_err("no right");
            assert!(refused.to_string().contains("--may-upload"), "{refused}");
        }
        let ci = Caller {
            may_upload: true,
            ..caller("token:ci", Role::Runner)
        };
        assert!(ci.may(Action::Upload));
        // The right does not outrank the role: a token whose owner became a
        // viewer acts as a viewer, and a share link only sees its run.
        let demoted = Caller {
            may_upload: true,
            ..caller("token:ci", Role::Viewer)
        };
        assert!(!demoted.may(Action::Upload));
        let refused = demoted.require(Action::Upload).expect_err("a viewer");
        assert!(refused.to_string().contains("only a runner"), "{refused}");
        let shared = Caller {
            run_scope: Some(7),
            ..ci.clone()
        };
        assert!(!shared.may(Action::Upload));
    }

    #[test]
    fn a_share_link_sees_its_run_and_nothing_else() {
        let shared = Caller {
            run_scope: Some(7),
            identity: Identity::Share,
            ..caller("share link 3", Role::Viewer)
        };
        assert!(shared.may(Action::ReadRun(7)));
        assert!(!shared.may(Action::ReadRun(8)));
        assert!(!shared.may(Action::Read));
        assert!(!shared.may_cancel("share link 3"));
        let refused = shared.require(Action::ReadRun(8)).expect_err("another run");
        assert!(refused.to_string().contains("run 7 only"), "{refused}");
        let viewer = caller("vi", Role::Viewer);
        assert!(viewer.may(Action::ReadRun(8)) && !viewer.may(Action::Share));
        assert!(caller("ru", Role::Runner).may(Action::Share));
    }

    #[test]
    fn roles_and_names_are_checked() {
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
        assert!(check_name("ana.lopez@example.com").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("token:ci").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn sign_in_only_sends_back_into_the_lab() {
        assert_eq!(safe_next("/runs/7/samples.csv"), "/runs/7/samples.csv");
        assert_eq!(safe_next("/compare?runs=1,2"), "/compare?runs=1,2");
        for outside in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "runs",
        ] {
            assert_eq!(safe_next(outside), "/", "{outside}");
        }
    }
}
