//! Where mite spends its time: py-spy samples the stacks of mite's
//! processes during a scenario ([`capture`]), attached to them or starting
//! them ([`started`]); the folded stacks are kept in
//! the database and the scenario's folder ([`folded`]) and drawn as flame
//! graphs ([`render`]).

pub mod capture;
pub mod diff;
pub mod folded;
pub mod py_spy;
pub mod render;
pub mod started;

use py_spy::REACH_ENV;

/// What profiling cannot do: read a profile, draw it, or reach mite's
/// processes here.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("line {line}: no sample count")]
    NoCount { line: usize },
    #[error("line {line}: `{count}` is not a sample count")]
    BadCount { line: usize, count: String },
    #[error("cannot draw the flame graph: {0}")]
    Draw(#[source] std::io::Error),
    #[error(
        "{REACH_ENV} is `{0}`: use attach, or start (only on a lab without a sandbox: \
         the lab attaches to sandboxed processes)"
    )]
    ReachForced(String),
    #[error(
        "py-spy cannot read mite's processes here: kernel.yama.ptrace_scope is {scope} \
         (only root may) and the lab does not run as root; run it as root, or set \
         kernel.yama.ptrace_scope to 1 (py-spy then starts them) or 0"
    )]
    ReachDenied { scope: String },
}

/// A profile's error as the pages and downloads see it: a stored profile
/// that cannot be read or drawn is the lab's fault (500), logged here.
impl From<ProfileError> for app::api::LabError {
    fn from(e: ProfileError) -> Self {
        tracing::error!("{e}");
        app::api::LabError::Internal(e.to_string())
    }
}
