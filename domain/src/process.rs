//! The processes a scenario runs.

use serde::{Deserialize, Serialize};

use crate::text_enum::text_enum;

/// The processes a scenario runs, in start order. `Http` is the target
/// server (named as in the original script's CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessKind {
    Http,
    Duplicator,
    Collector,
    Runner,
    Controller,
    /// py-spy, sampling the stacks of one of the others (not itself
    /// sampled: it is not part of what is measured).
    Profiler,
}

impl ProcessKind {
    /// The processes a scenario measures.
    pub const ALL: [ProcessKind; 5] = [
        ProcessKind::Http,
        ProcessKind::Duplicator,
        ProcessKind::Collector,
        ProcessKind::Runner,
        ProcessKind::Controller,
    ];
}

text_enum!(ProcessKind {
    Http => "http",
    Duplicator => "duplicator",
    Collector => "collector",
    Runner => "runner",
    Controller => "controller",
    Profiler => "profiler",
});
