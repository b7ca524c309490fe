//! Measured code runs where it cannot reach the lab.
//!
//! A build of mite, a scenario module and a target command are code the
//! lab did not write: an uploaded wheel is a pull request's. Everything
//! that runs such code (installers and the build back ends they start,
//! mite's four components, the scenario finder, a target command, a
//! probe of a venv's Python) runs in a bubblewrap sandbox of its own
//! ([`jail`]): its own user, PID, IPC, UTS and mount namespaces, no
//! capability, only the system's programs and the paths it needs, at the
//! same paths as outside (the build's venv read-only, the collector's
//! folder writable), so it cannot read any lab process's environment or
//! command line, open the database or another run's output, or write any
//! build's venv. A scenario's children share a network of their own with
//! only a loopback ([`net`]); installers alone have the host's network,
//! to fetch from an index. The lab still sees and measures every sandboxed
//! process from outside (its pid, `/proc`, py-spy).
//!
//! A host that cannot sandbox (no bubblewrap, or no user namespaces for
//! this user) refuses uploaded wheels and local builds, unless its admin
//! started the lab with `--insecure-unsandboxed-builds` ([`Isolation`]).

pub mod jail;
pub mod net;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub use jail::{Jail, Network};
pub use net::ScenarioNet;

use crate::child_env::CleanEnv;

/// The flag that lets a lab run measured code unsandboxed.
pub const INSECURE_FLAG: &str = "--insecure-unsandboxed-builds";
/// The bubblewrap to use, where it is not `bwrap` on `PATH`.
pub const BWRAP_ENV: &str = "MITE_PERF_BWRAP";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot make the scenario's network: {0}")]
    Network(String),
}

/// bubblewrap, found and seen to work on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    bwrap: PathBuf,
    /// `bubblewrap 0.8.0`.
    version: String,
}

impl Sandbox {
    /// Finds bubblewrap and makes one sandbox of each kind the lab uses (a
    /// network of its own, a child joining it): `Err` says what is missing.
    pub fn probe() -> Result<Sandbox, String> {
        let bwrap = match std::env::var_os(BWRAP_ENV) {
            Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
            None => find_on_path("bwrap"),
        };
        let Some(bwrap) = bwrap else {
            return Err(format!(
                "bubblewrap is not installed (no `bwrap` on PATH, or where {BWRAP_ENV} says): \
                 run scripts/setup, or `apt-get install bubblewrap`"
            ));
        };
        let version = std::process::Command::new(&bwrap)
            .arg("--version")
            .basic_env()
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bwrap.display()))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let sandbox = Sandbox { bwrap, version };
        let no_userns = |said: String| {
            format!(
                "bubblewrap cannot make a sandbox for this user ({said}): allow unprivileged \
                 user namespaces (sysctl kernel.unprivileged_userns_clone=1 or \
                 user.max_user_namespaces > 0; on Ubuntu 24.04 the AppArmor profile \
                 that lets bwrap use them), or run the lab as root"
            )
        };
        let net = ScenarioNet::create(&sandbox.bwrap).map_err(|e| no_userns(e.to_string()))?;
        let mut check = sandbox.command(
            &Jail::new(Path::new("/"), Network::Scenario),
            Path::new("/bin/true"),
            &[],
        );
        check.basic_env().stdin(Stdio::null()).stdout(Stdio::null());
        // SAFETY: joining two namespaces between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut check, net.joiner());
        }
        let output = check
            .output()
            .map_err(|e| no_userns(format!("cannot start bubblewrap: {e}")))?;
        if !output.status.success() {
            return Err(no_userns(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
        Ok(sandbox)
    }

    /// `bubblewrap 0.8.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn bwrap(&self) -> &Path {
        &self.bwrap
    }

    /// The command that runs `program` with `args` in `jail`.
    pub fn command(&self, jail: &Jail, program: &Path, args: &[OsString]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.bwrap);
        command.args(jail.arguments(program, args));
        command
    }

    /// `command` run in `jail` instead: the same program, arguments and
    /// settings given to it (its folder is the jail's). What it inherits
    /// besides is the caller's to set, as for any child (`CleanEnv`).
    pub fn enclose(
        &self,
        jail: &Jail,
        command: &tokio::process::Command,
    ) -> tokio::process::Command {
        let inner = command.as_std();
        let args: Vec<OsString> = inner.get_args().map(OsString::from).collect();
        let mut outer = self.command(jail, Path::new(inner.get_program()), &args);
        for (name, value) in inner.get_envs() {
            match value {
                Some(value) => outer.env(name, value),
                None => outer.env_remove(name),
            };
        }
        tokio::process::Command::from(outer)
    }
}

/// Whether this host runs measured code in a sandbox, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    Sandboxed(Sandbox),
    /// An admin started the lab with `--insecure-unsandboxed-builds`.
    Insecure,
    /// This host cannot sandbox: what is missing.
    Impossible(String),
}

impl Isolation {
    /// What this host does: a sandbox where it can, unless `insecure`.
    pub fn detect(insecure: bool) -> Isolation {
        if insecure {
            return Isolation::Insecure;
        }
        match Sandbox::probe() {
            Ok(sandbox) => Isolation::Sandboxed(sandbox),
            Err(missing) => Isolation::Impossible(missing),
        }
    }

    pub fn sandbox(&self) -> Option<&Sandbox> {
        match self {
            Isolation::Sandboxed(sandbox) => Some(sandbox),
            _ => None,
        }
    }

    /// Why builds the lab did not choose (uploads, checkouts, wheels) are
    /// refused here: this host cannot sandbox them and no admin said they
    /// may run without.
    pub fn refuses_untrusted(&self) -> Option<&str> {
        match self {
            Isolation::Impossible(missing) => Some(missing),
            _ => None,
        }
    }

    /// How measured code runs, for a run's provenance.
    pub fn describe(&self) -> String {
        match self {
            Isolation::Sandboxed(sandbox) => sandbox.version.clone(),
            Isolation::Insecure => format!("none ({INSECURE_FLAG})"),
            Isolation::Impossible(_) => "none (this host cannot sandbox)".into(),
        }
    }
}

/// Whether a child recorded with this command line ran in a sandbox (its
/// program is bubblewrap).
pub fn is_sandbox_command(command: &str) -> bool {
    command
        .split(' ')
        .next()
        .is_some_and(|program| Path::new(program).file_name() == Some("bwrap".as_ref()))
}

/// `name` in one of `PATH`'s folders (or the usual ones).
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests;
