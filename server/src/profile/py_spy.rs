//! Invoking py-spy: where it is, how it reaches mite's processes (attach,
//! or start them under it), its record arguments, and where it writes.

use std::path::{Path, PathBuf};

use super::ProfileError;
use crate::model::ProcessKind;

/// Where py-spy is: this variable, or the lab's tools venv (scripts/setup).
pub const PY_SPY_ENV: &str = "MITE_PERF_PY_SPY";
/// How py-spy reached the process: it attached to it…
pub const ATTACHED: &str = "attached";
/// …or started it.
pub const STARTED: &str = "started under py-spy";
/// Forces how py-spy reaches the processes: `attach` or `start`.
pub const REACH_ENV: &str = "MITE_PERF_PROFILE_REACH";

/// Where py-spy writes the folded stacks of process `pid` of `kind`, in a
/// scenario's folder (`profile-runner-1234.folded`; the flame graph is
/// drawn beside it as `.svg`).
pub fn profile_file(dir: &Path, kind: ProcessKind, pid: &str) -> PathBuf {
    dir.join(format!("profile-{kind}-{pid}.folded"))
}

/// The process kind and pid a profile file is named for.
pub fn profile_file_names(file: &Path) -> Option<(ProcessKind, u32)> {
    let name = file.file_name()?.to_str()?;
    let (kind, pid) = name
        .strip_prefix("profile-")?
        .strip_suffix(".folded")?
        .split_once('-')?;
    Some((kind.parse().ok()?, pid.parse().ok()?))
}

/// In a profile file's path, replaced with the pid of the process, once
/// known (a process started under py-spy).
pub const PID_PLACEHOLDER: &str = "{pid}";

/// py-spy's arguments to record the process `pid` into `output` (where
/// [`PID_PLACEHOLDER`] becomes the pid), by function (no line numbers, so two builds
/// compare) and without pausing it.
pub fn record_args(rate: u32, output: &Path, pid: u32) -> Vec<String> {
    let output = output
        .display()
        .to_string()
        .replace(PID_PLACEHOLDER, &pid.to_string());
    vec![
        "record".into(),
        "--pid".into(),
        pid.to_string(),
        "--rate".into(),
        rate.to_string(),
        "--nonblocking".into(),
        "--nolineno".into(),
        "--format".into(),
        "raw".into(),
        "--output".into(),
        output,
    ]
}

/// How py-spy reaches the processes it profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// It attaches to them once they run.
    Attach,
    /// The lab starts them under it (`py-spy record -- …`).
    StartUnder,
}

impl Reach {
    pub fn mode(self) -> &'static str {
        match self {
            Reach::Attach => ATTACHED,
            Reach::StartUnder => STARTED,
        }
    }
}

/// How py-spy can reach mite's processes here: attach as root, or where
/// Yama is absent or lets a process trace others of its user
/// (`ptrace_scope` 0); start them under py-spy where only a process's
/// ancestors may (1); neither where only root may (2, 3). Processes in a
/// sandbox are attached to wherever Yama allows any attaching (0 to 2):
/// the lab's user owns the sandbox's user namespace, which is all Yama
/// asks up to 2. [`REACH_ENV`] forces either (start only unsandboxed).
pub fn reach(sandboxed: bool) -> Result<Reach, ProfileError> {
    if let Ok(forced) = std::env::var(REACH_ENV) {
        return match forced.as_str() {
            "attach" => Ok(Reach::Attach),
            "start" if !sandboxed => Ok(Reach::StartUnder),
            other => Err(ProfileError::ReachForced(other.to_string())),
        };
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(Reach::Attach);
    }
    let Ok(scope) = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") else {
        return Ok(Reach::Attach);
    };
    reach_for_scope(scope.trim(), sandboxed)
}

fn reach_for_scope(scope: &str, sandboxed: bool) -> Result<Reach, ProfileError> {
    match scope {
        "0" => Ok(Reach::Attach),
        "1" | "2" if sandboxed => Ok(Reach::Attach),
        "1" => Ok(Reach::StartUnder),
        _ => Err(ProfileError::ReachDenied {
            scope: scope.to_string(),
        }),
    }
}

/// The py-spy the lab uses.
pub fn py_spy() -> PathBuf {
    std::env::var_os(PY_SPY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::mite_env::data_dir().join("tools/bin/py-spy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_spy_attaches_or_starts_as_the_kernel_allows() {
        assert_eq!(reach_for_scope("0", false).ok(), Some(Reach::Attach));
        assert_eq!(reach_for_scope("1", false).ok(), Some(Reach::StartUnder));
        // The lab owns a sandbox's user namespace: it may attach there.
        assert_eq!(reach_for_scope("1", true).ok(), Some(Reach::Attach));
        assert_eq!(reach_for_scope("2", true).ok(), Some(Reach::Attach));
        assert!(reach_for_scope("3", true).is_err());
        for scope in ["2", "3"] {
            let refusal = reach_for_scope(scope, false)
                .expect_err("only root may")
                .to_string();
            assert!(
                refusal.contains(&format!("ptrace_scope is {scope}")),
                "{refusal}"
            );
            assert!(refusal.contains("run it as root"), "{refusal}");
        }
        assert_eq!(Reach::StartUnder.mode(), "started under py-spy");
    }

    #[test]
    fn profile_files_are_named_for_their_process() {
        let file = profile_file(Path::new("/out/s10"), ProcessKind::Runner, "1234");
        assert_eq!(file, Path::new("/out/s10/profile-runner-1234.folded"));
        assert_eq!(profile_file_names(&file), Some((ProcessKind::Runner, 1234)));
        for other in [
            "/out/s10/profile-runner-1234.svg",
            "/out/s10/profile-runner.folded",
            "/out/s10/profile-nobody-12.folded",
            "/out/s10/profile-runner-{pid}.folded",
            "/out/s10/runner.log",
        ] {
            assert_eq!(profile_file_names(Path::new(other)), None, "{other}");
        }
    }
}
