//! Where mite is installed (a Python venv) and what versions it has.
//!
//! - [`builds`]: one venv per mite build (PyPI version, checkout, wheel), kept;
//! - [`source`]: a local build's commit, dirty flag, fingerprint and hashes;
//! - [`wheel`]: what makes an uploaded file a mite wheel;
//! - [`git_wheels`]: wheels built from a repository's commits, kept by commit;
//! - [`pypi`]: mite's releases on PyPI.

pub mod builds;
pub mod git_wheels;
pub mod pypi;
pub mod source;
pub mod wheel;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::child_env::CleanEnv;
use crate::sandbox::{Jail, Network, Sandbox};

/// The mite version the set-up script installs.
pub const MITE_VERSION: &str = "2.11.0";
/// The environment variable naming the venv, as `--mite-venv` does.
pub const VENV_ENV: &str = "MITE_PERF_VENV";

#[derive(Debug, thiserror::Error)]
pub enum MiteEnvError {
    #[error(
        "mite is not installed in {venv}: run scripts/setup, or point --mite-venv (or {VENV_ENV}) at a venv with mite"
    )]
    Missing { venv: PathBuf },
    #[error("cannot ask {python} for versions: {reason}")]
    Versions { python: PathBuf, reason: String },
}

/// What a venv's Python says of itself: mite's version, its own, then
/// every distribution installed (`name==version`, a line each).
const PROBE: &str = "import importlib.metadata as m, platform\n\
print(m.version('mite'))\n\
print(platform.python_version())\n\
for d in m.distributions():\n    \
name = d.metadata['Name']\n    \
if name:\n        \
print(f'{name}=={d.version}')\n";

/// A venv with mite in it.
#[derive(Debug, Clone)]
pub struct MiteEnv {
    pub venv: PathBuf,
    pub mite_version: String,
    pub python_version: String,
}

/// The lab's data folder (venvs, tools): `$XDG_DATA_HOME/mite-perf`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("mite-perf")
}

/// The venv the set-up script creates.
pub fn default_venv() -> PathBuf {
    data_dir().join(format!("venv-mite-{MITE_VERSION}"))
}

impl MiteEnv {
    /// Checks `venv` has mite and reads its versions (with
    /// `importlib.metadata`: `mite --version` prints usage in 2.11.0).
    /// It waits for the venv's Python: for a command line, or a lab
    /// starting; a run asks [`Self::probe_in`].
    pub fn locate(venv: &Path) -> Result<Self, MiteEnvError> {
        let (mut command, python) = Self::probe_command(venv, None)?;
        let output = command.output().map_err(|e| MiteEnvError::Versions {
            python: python.clone(),
            reason: e.to_string(),
        })?;
        Self::read_probe(venv, python, &output).map(|(env, _)| env)
    }

    /// As [`Self::locate`], with every package installed in the venv
    /// (`name==version`, sorted by name: see
    /// [`domain::dependencies::parse_packages`]), read with
    /// `importlib.metadata` by the venv's own Python, in `sandbox` where
    /// there is one: starting it runs the build's own code (a `.pth` file of
    /// a wheel runs at every start). The Python is awaited, never waited
    /// for: a run's runtime renews its lease meanwhile (a Python starting on
    /// a busy machine takes seconds).
    pub async fn probe_in(
        venv: &Path,
        sandbox: Option<&Sandbox>,
    ) -> Result<(Self, Vec<String>), MiteEnvError> {
        let (command, python) = Self::probe_command(venv, sandbox)?;
        let output = tokio::process::Command::from(command)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| MiteEnvError::Versions {
                python: python.clone(),
                reason: e.to_string(),
            })?;
        Self::read_probe(venv, python, &output)
    }

    /// The command that asks `venv`'s Python for versions, and that Python.
    fn probe_command(
        venv: &Path,
        sandbox: Option<&Sandbox>,
    ) -> Result<(Command, PathBuf), MiteEnvError> {
        let python = venv.join("bin/python");
        if !venv.join("bin/mite").is_file() || !python.is_file() {
            return Err(MiteEnvError::Missing {
                venv: venv.to_path_buf(),
            });
        }
        let args = ["-c", PROBE];
        let mut command = match sandbox {
            Some(sandbox) => sandbox.command(
                &Jail::new(Path::new("/tmp"), Network::Loopback)
                    .read_only(venv)
                    .python_of(venv),
                &python,
                &args.map(std::ffi::OsString::from),
            ),
            None => {
                let mut command = Command::new(&python);
                command.args(args);
                command
            }
        };
        command.basic_env().stdin(std::process::Stdio::null());
        Ok((command, python))
    }

    /// What the probe printed: mite's version, Python's, the packages.
    fn read_probe(
        venv: &Path,
        python: PathBuf,
        output: &std::process::Output,
    ) -> Result<(Self, Vec<String>), MiteEnvError> {
        if !output.status.success() {
            return Err(MiteEnvError::Versions {
                python,
                reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines();
        let mite_version = lines.next().unwrap_or_default().trim().to_string();
        let python_version = lines.next().unwrap_or_default().trim().to_string();
        let packages = domain::dependencies::parse_packages(&lines.collect::<Vec<_>>().join("\n"));
        Ok((
            MiteEnv {
                venv: venv.to_path_buf(),
                mite_version,
                python_version,
            },
            packages,
        ))
    }

    /// The `mite` command of this venv.
    pub fn mite(&self) -> PathBuf {
        self.venv.join("bin/mite")
    }

    /// This venv's Python.
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }

    /// `PATH` with the venv's bin first, so an external target command such
    /// as `python http_server.py` finds the venv's Python.
    pub fn path_var(&self) -> String {
        let bin = self.venv.join("bin").display().to_string();
        match std::env::var("PATH") {
            Ok(path) if !path.is_empty() => format!("{bin}:{path}"),
            _ => bin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's runtime has one thread, which also renews the run's lease:
    /// a Python slow to start (a busy machine) must not hold it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_probe_awaits_the_venvs_python_and_the_runtime_goes_on() {
        let venv = std::env::temp_dir().join(format!("mite-perf-slow-venv-{}", std::process::id()));
        let bin = venv.join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        std::fs::write(bin.join("mite"), "").expect("mite");
        let python = bin.join("python");
        std::fs::write(
            &python,
            "#!/bin/sh\nsleep 1\necho 2.11.0\necho 3.11.2\necho mite==2.11.0\necho acurl==2.0.0\n",
        )
        .expect("python");
        std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        let (env, packages) = MiteEnv::probe_in(&venv, None).await.expect("probed");
        let ticked = ticks.load(std::sync::atomic::Ordering::Relaxed);
        ticker.abort();
        let _ = std::fs::remove_dir_all(&venv);
        assert_eq!(
            (env.mite_version.as_str(), env.python_version.as_str()),
            ("2.11.0", "3.11.2")
        );
        assert_eq!(packages, ["acurl==2.0.0", "mite==2.11.0"]);
        // A second of Python: about 20 ticks; none if it was waited for.
        assert!(
            ticked >= 5,
            "the runtime ticked {ticked} times while Python started"
        );
    }

    #[test]
    fn missing_venv_says_how_to_fix_it() {
        let err = MiteEnv::locate(Path::new("/nonexistent/venv")).expect_err("no venv there");
        let text = err.to_string();
        assert!(
            text.contains("scripts/setup") && text.contains("--mite-venv"),
            "{text}"
        );
    }
}
