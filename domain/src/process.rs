//! The processes a scenario runs.

use serde::{Deserialize, Serialize};

use crate::text_enum::text_enum;

/// The processes a scenario runs, in start order: the target (the HTTP
/// server under load; `http` in the original script's CSV and in rows
/// stored before it was named so), then mite's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessKind {
    #[serde(alias = "http")]
    Target,
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
        ProcessKind::Target,
        ProcessKind::Duplicator,
        ProcessKind::Collector,
        ProcessKind::Runner,
        ProcessKind::Controller,
    ];
}

text_enum!(ProcessKind {
    Target => "target" | "http",
    Duplicator => "duplicator",
    Collector => "collector",
    Runner => "runner",
    Controller => "controller",
    Profiler => "profiler",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_named_so_and_old_rows_still_read() {
        assert_eq!(ProcessKind::Target.to_string(), "target");
        assert_eq!("target".parse(), Ok(ProcessKind::Target));
        // Rows and figures stored before the rename.
        assert_eq!("http".parse(), Ok(ProcessKind::Target));
        let old: ProcessKind = serde_json::from_str("\"http\"").expect("old JSON");
        assert_eq!(old, ProcessKind::Target);
        assert_eq!(
            serde_json::to_string(&ProcessKind::Target).expect("JSON"),
            "\"target\""
        );
        assert!("nginx".parse::<ProcessKind>().is_err());
    }
}
