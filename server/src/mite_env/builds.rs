//! One venv per mite build, made once and kept: a PyPI version (the pinned
//! build is its version's), a local checkout (made again when its files
//! change) or a wheel. Made with `uv` where scripts/setup installed it
//! (seconds), plain `venv` + `pip` otherwise. Every build's dependencies
//! are resolved alike: as the index was at the agent's dependency snapshot
//! (uv's `--exclude-newer`), or at a moment a run chose; the packages each
//! venv holds are kept with it and in its provenance. Whatever cannot be
//! had is said before any process starts.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use domain::builds::MiteBuild;
use domain::dependencies::{parse_moment, DependencyChoice, Resolution};
use domain::provenance::BuildProvenance;
use tokio::process::Command;

use super::source::{checkout_state, sha256_bytes, sha256_file, sha256_text};
use super::{data_dir, MiteEnv, MiteEnvError};
use crate::child_env::CleanEnv;
use crate::sandbox::jail::python_prefix;
use crate::sandbox::{Jail, Network, Sandbox};

/// The environment variable naming the builds folder, as `--builds-dir` does.
pub const BUILDS_DIR_ENV: &str = "MITE_PERF_BUILDS_DIR";

/// Written in a venv once it is complete: what was installed there.
const MARKER: &str = "mite-perf-build.json";
/// Written in a venv beside the marker: every package it holds,
/// `name==version` a line (the build's lock).
pub const PACKAGES_FILE: &str = "mite-perf-packages.txt";
/// The environment variable naming the agent's snapshot, as
/// `--dependency-snapshot` does.
pub const SNAPSHOT_ENV: &str = "MITE_PERF_DEPENDENCY_SNAPSHOT";
/// The agent's dependency snapshot, in the builds folder.
pub const SNAPSHOT_FILE: &str = "dependency-snapshot.json";
/// Lines of an installer's output kept in an error.
const ERROR_LINES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot install mite {build}: {source}")]
    Install { build: String, source: InstallError },
    #[error("{path} is not a mite checkout (no pyproject.toml or setup.py in it)")]
    NotACheckout { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Env(#[from] MiteEnvError),
    #[error(
        "mite {build}'s dependencies can be resolved as of a moment only with uv, and this \
         host has none: run scripts/setup"
    )]
    NeedsUv { build: String },
    #[error("cannot keep this agent's dependency snapshot in {path}: {reason}")]
    Snapshot { path: PathBuf, reason: String },
    #[error("mite {build} installed, but it says it is version {found}")]
    WrongVersion { build: String, found: String },
    #[error(
        "the uploaded wheel {sha256} is not on this agent: the lab's database has no such \
         upload (upload it again with `mite-perf ci check`)"
    )]
    UploadMissing { sha256: String },
    #[error("the uploaded wheel {sha256} is not what was uploaded: {reason}")]
    UploadInvalid { sha256: String, reason: String },
    #[error("cannot write the uploaded wheel to {path}: {source}")]
    UploadWrite {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a venv could not be made or filled.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot wait for {program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
    /// It failed and printed nothing.
    #[error("{program} failed ({status})")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
    },
    /// It failed: the last lines it printed.
    #[error("{said}")]
    Said { program: String, said: String },
    #[error("cannot record what was installed: {0}")]
    Marker(#[from] serde_json::Error),
    #[error("the lock on {path} was abandoned: {source}")]
    Abandoned {
        path: PathBuf,
        source: tokio::task::JoinError,
    },
}

impl InstallError {
    fn file<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| InstallError::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A build ready to run, and where it came from.
#[derive(Debug, Clone)]
pub struct Installed {
    pub env: MiteEnv,
    pub provenance: BuildProvenance,
}

/// The builds this agent has made, and the means to make more.
#[derive(Debug, Clone)]
pub struct BuildCache {
    /// One venv per build inside.
    pub root: PathBuf,
    /// The lab's own mite (scripts/setup's venv, or `--mite-venv`): its
    /// version is the pinned build's, its Python the one every venv is
    /// made with. It is never measured: the pinned build is its version
    /// installed here like any other release.
    pub pinned: MiteEnv,
    /// `uv`, when installed.
    pub uv: Option<PathBuf>,
    /// The Python venvs are made with.
    pub python: PathBuf,
    /// The moment the agent's dependency snapshot is (`--dependency-snapshot`);
    /// `None`: the one kept in the builds folder, or now for the first.
    pub snapshot_as_of: Option<String>,
}

/// What the marker records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Marker {
    asked: String,
    fingerprint: String,
    /// How its dependencies were resolved (venvs made before: none, so
    /// they are made again).
    #[serde(default)]
    resolution: Option<Resolution>,
    /// Whether its Python files were compiled to bytecode as it was
    /// installed (venvs made before: not, so they are made again): a venv
    /// without it compiles every module mite imports at every start of
    /// every process, about 0.6 s of CPU each here.
    #[serde(default)]
    bytecode: bool,
}

/// The agent's dependency snapshot, as [`SNAPSHOT_FILE`] keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    /// The moment (RFC 3339, UTC) every build here resolves as of.
    as_of: String,
    /// When it was written.
    made_at: String,
}

/// A venv to have: where, what it is made from, and how its dependencies
/// are resolved.
struct Wanted<'a> {
    venv: PathBuf,
    /// Changes when what would be installed changes.
    fingerprint: &'a str,
    source: Source<'a>,
    resolution: Resolution,
}

/// Now, as a moment uv takes (to the second, UTC).
fn now_moment() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl BuildCache {
    /// The cache in `root` (by default `builds` in the lab's data folder),
    /// with scripts/setup's uv.
    pub fn new(pinned: MiteEnv, root: Option<PathBuf>) -> Self {
        let data = data_dir();
        let uv = data.join("tools/bin/uv");
        BuildCache {
            // Absolute: mite's processes run in their scenario's folder.
            root: root
                .map(|r| std::path::absolute(&r).unwrap_or(r))
                .unwrap_or_else(|| data.join("builds")),
            pinned,
            uv: uv.is_file().then_some(uv),
            python: PathBuf::from("python3"),
            snapshot_as_of: None,
        }
    }

    /// The versions this host already has (pinned first), for the launch form.
    pub fn available(&self) -> Vec<MiteBuild> {
        let mut builds = vec![MiteBuild::Pinned];
        let mut versions: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = name.strip_prefix("pypi-")?.to_string();
                // A release as of another moment than the snapshot is a
                // backfill's.
                (!version.contains("-asof-") && entry.path().join(MARKER).is_file())
                    .then_some(version)
            })
            .filter(|v| *v != self.pinned.mite_version)
            .collect();
        versions.sort();
        builds.extend(versions.into_iter().map(MiteBuild::Version));
        builds
    }

    /// Makes `build` ready (installing it if it is not yet, or if a
    /// checkout changed), its dependencies resolved from the agent's
    /// snapshot. `say` hears what is going on.
    /// Installers, build back ends and probes of the new venv run in
    /// `sandbox` where there is one (see [`crate::sandbox`]).
    pub async fn install(
        &self,
        build: &MiteBuild,
        sandbox: Option<&Sandbox>,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<Installed, BuildError> {
        self.install_resolved(build, &DependencyChoice::Snapshot, sandbox, say)
            .await
    }

    /// As [`Self::install`], its dependencies resolved as `choice` says:
    /// the agent's snapshot, or the index as of a moment. Every build is
    /// made the same way, the pinned one too (its version from the index,
    /// into a venv of this cache, not scripts/setup's): two builds of one
    /// release are one venv, and builds of other code differ in their
    /// packages only where their requirements do.
    pub async fn install_resolved(
        &self,
        build: &MiteBuild,
        choice: &DependencyChoice,
        sandbox: Option<&Sandbox>,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<Installed, BuildError> {
        let resolution = self.resolution(build, choice).await?;
        // A venv per moment chosen; the snapshot's venvs are made again
        // when the snapshot moves.
        let suffix = match choice {
            DependencyChoice::Snapshot => String::new(),
            DependencyChoice::AsOf(moment) => format!(
                "-asof-{}",
                moment
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            ),
        };
        match build {
            MiteBuild::Pinned => {
                self.install_release(
                    build,
                    &self.pinned.mite_version,
                    &suffix,
                    resolution,
                    sandbox,
                    say,
                )
                .await
            }
            MiteBuild::Version(version) => {
                self.install_release(build, version, &suffix, resolution, sandbox, say)
                    .await
            }
            MiteBuild::Wheel(path) => {
                let path = absolute(path)?;
                let sha = sha256_file(&path).map_err(|source| BuildError::Read {
                    path: path.clone(),
                    source,
                })?;
                let wanted = Wanted {
                    venv: self.root.join(format!("wheel-{}{suffix}", &sha[..16])),
                    fingerprint: &sha,
                    source: Source::Wheel(&path),
                    resolution,
                };
                let (env, packages) = self.ensure(&wanted, build, sandbox, say).await?;
                let mut provenance = self.provenance(build, &env, wanted.resolution, packages);
                provenance.wheel_sha256 = Some(sha);
                Ok(Installed { env, provenance })
            }
            MiteBuild::Uploaded(sha) => {
                let path = self.uploaded_wheel(sha)?;
                // The file is checked again: what the agent installs is
                // exactly what was uploaded.
                let found = sha256_file(&path).map_err(|source| BuildError::Read {
                    path: path.clone(),
                    source,
                })?;
                if found != *sha {
                    return Err(BuildError::UploadInvalid {
                        sha256: sha.clone(),
                        reason: format!("{} has SHA-256 {found}", path.display()),
                    });
                }
                let wanted = Wanted {
                    venv: self.root.join(format!("upload-{}{suffix}", &sha[..16])),
                    fingerprint: sha,
                    source: Source::Wheel(&path),
                    resolution,
                };
                let (env, packages) = self.ensure(&wanted, build, sandbox, say).await?;
                let mut provenance = self.provenance(build, &env, wanted.resolution, packages);
                provenance.wheel_sha256 = Some(sha.clone());
                Ok(Installed { env, provenance })
            }
            MiteBuild::Checkout(path) => {
                let path = absolute(path)?;
                if !path.join("pyproject.toml").is_file() && !path.join("setup.py").is_file() {
                    return Err(BuildError::NotACheckout { path });
                }
                // git and a walk of the checkout: off the run's runtime,
                // which renews the run's lease meanwhile.
                let state = {
                    let path = path.clone();
                    tokio::task::spawn_blocking(move || checkout_state(&path))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                }
                .map_err(|source| BuildError::Read {
                    path: path.clone(),
                    source,
                })?;
                let key = sha256_text(&path.display().to_string());
                let wanted = Wanted {
                    venv: self.root.join(format!("checkout-{}{suffix}", &key[..16])),
                    fingerprint: &state.fingerprint,
                    source: Source::Checkout(&path),
                    resolution,
                };
                let (env, packages) = self.ensure(&wanted, build, sandbox, say).await?;
                let mut provenance = self.provenance(build, &env, wanted.resolution, packages);
                provenance.git_commit = state.git_commit;
                provenance.git_dirty = state.git_dirty;
                provenance.git_commit_time = state.git_commit_time;
                provenance.git_parents = state.git_parents;
                Ok(Installed { env, provenance })
            }
        }
    }

    /// A release from the index (the pinned build is its version's).
    async fn install_release(
        &self,
        build: &MiteBuild,
        version: &str,
        suffix: &str,
        resolution: Resolution,
        sandbox: Option<&Sandbox>,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<Installed, BuildError> {
        let wanted = Wanted {
            venv: self.root.join(format!("pypi-{version}{suffix}")),
            fingerprint: version,
            source: Source::Index(format!("mite=={version}")),
            resolution,
        };
        let (env, packages) = self.ensure(&wanted, build, sandbox, say).await?;
        if env.mite_version != version {
            return Err(BuildError::WrongVersion {
                build: build.to_string(),
                found: env.mite_version,
            });
        }
        Ok(Installed {
            provenance: self.provenance(build, &env, wanted.resolution, packages),
            env,
        })
    }

    /// How `build`'s dependencies are resolved for `choice` here: with uv,
    /// as of the agent's snapshot or the moment chosen; with pip (no uv),
    /// against the index of the day, and no moment can be chosen.
    async fn resolution(
        &self,
        build: &MiteBuild,
        choice: &DependencyChoice,
    ) -> Result<Resolution, BuildError> {
        match (&self.uv, choice) {
            (None, DependencyChoice::Snapshot) => Ok(Resolution::Unpinned),
            (None, DependencyChoice::AsOf(_)) => Err(BuildError::NeedsUv {
                build: build.to_string(),
            }),
            (Some(_), DependencyChoice::Snapshot) => Ok(Resolution::Snapshot {
                as_of: self.snapshot().await?,
            }),
            (Some(_), DependencyChoice::AsOf(moment)) => Ok(Resolution::AsOf {
                as_of: moment.clone(),
            }),
        }
    }

    /// The agent's dependency snapshot: the moment every build here
    /// resolves its dependencies as of (the index as it was then), kept in
    /// [`SNAPSHOT_FILE`]. The first build made fixes it (now), unless
    /// `--dependency-snapshot` names one ([`Self::snapshot_as_of`]), which
    /// replaces what the file says; venvs made as of another moment are
    /// made again.
    pub async fn snapshot(&self) -> Result<String, BuildError> {
        let path = self.root.join(SNAPSHOT_FILE);
        let failed = |reason: String| BuildError::Snapshot {
            path: path.clone(),
            reason,
        };
        std::fs::create_dir_all(&self.root).map_err(|e| failed(e.to_string()))?;
        let _lock = lock(&self.root, &path)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let kept: Option<Snapshot> = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| failed(format!("it is not what the lab wrote: {e}")))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(failed(e.to_string())),
        };
        if let Some(kept) = &kept {
            parse_moment(&kept.as_of).map_err(failed)?;
        }
        let wanted = match (&self.snapshot_as_of, kept) {
            (Some(named), Some(kept)) if kept.as_of == *named => return Ok(kept.as_of),
            (None, Some(kept)) => return Ok(kept.as_of),
            (Some(named), _) => parse_moment(named).map_err(failed)?,
            (None, None) => now_moment(),
        };
        let snapshot = Snapshot {
            as_of: wanted.clone(),
            made_at: now_moment(),
        };
        let text = serde_json::to_string_pretty(&snapshot).map_err(|e| failed(e.to_string()))?;
        let partial = self.root.join(format!(".{SNAPSHOT_FILE}.partial"));
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| failed(e.to_string()))?;
        tracing::info!(
            "this agent's dependency snapshot: the index as of {wanted} ({})",
            path.display()
        );
        Ok(wanted)
    }

    /// The folder uploaded wheel `sha256` is written to on this host.
    fn upload_dir(&self, sha256: &str) -> PathBuf {
        self.root.join("uploads").join(sha256)
    }

    /// Writes the uploaded wheel `sha256` (`content`, named `file_name`, as
    /// the lab's database keeps them) where [`Self::install`] finds it,
    /// after checking both again; kept once written, written again if the
    /// file on disk is no longer those bytes.
    pub fn place_upload(
        &self,
        sha256: &str,
        file_name: &str,
        content: &[u8],
    ) -> Result<PathBuf, BuildError> {
        let invalid = |reason: String| BuildError::UploadInvalid {
            sha256: sha256.to_string(),
            reason,
        };
        if !domain::builds::is_sha256(sha256) {
            return Err(invalid("that is not a SHA-256".into()));
        }
        super::wheel::parse_wheel_name(file_name).map_err(|e| invalid(e.to_string()))?;
        let found = sha256_bytes(content);
        if found != sha256 {
            return Err(invalid(format!("the stored bytes have SHA-256 {found}")));
        }
        let dir = self.upload_dir(sha256);
        let path = dir.join(file_name);
        // Kept from an earlier run only while it is still those bytes.
        if sha256_file(&path).is_ok_and(|found| found == sha256) {
            return Ok(path);
        }
        let write = |path: &Path| {
            let failed = |source| BuildError::UploadWrite {
                path: path.to_path_buf(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(failed)?;
            // Written aside and renamed: an agent stopped half-way leaves
            // no half wheel under the real name.
            let partial = dir.join(format!(".{file_name}.partial"));
            std::fs::write(&partial, content).map_err(failed)?;
            std::fs::rename(&partial, path).map_err(failed)
        };
        write(&path)?;
        Ok(path)
    }

    /// The uploads this host holds (their SHA-256s).
    pub fn held_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("uploads"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|name| domain::builds::is_sha256(name))
            .collect()
    }

    /// Removes this host's copy of upload `sha256`: the wheel and the venv
    /// made of it (the lab's database no longer keeps it).
    pub fn forget_upload(&self, sha256: &str) -> Result<(), BuildError> {
        if !domain::builds::is_sha256(sha256) {
            return Ok(());
        }
        let venv = self.root.join(format!("upload-{}", &sha256[..16]));
        for path in [self.upload_dir(sha256), venv] {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(BuildError::UploadWrite { path, source }),
            }
        }
        Ok(())
    }

    /// The uploaded wheel `sha256` placed on this host.
    fn uploaded_wheel(&self, sha256: &str) -> Result<PathBuf, BuildError> {
        let missing = || BuildError::UploadMissing {
            sha256: sha256.to_string(),
        };
        if !domain::builds::is_sha256(sha256) {
            return Err(missing());
        }
        std::fs::read_dir(self.upload_dir(sha256))
            .map_err(|_| missing())?
            .flatten()
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| super::wheel::parse_wheel_name(n).is_ok())
            })
            .ok_or_else(missing)
    }

    fn provenance(
        &self,
        build: &MiteBuild,
        env: &MiteEnv,
        resolution: Resolution,
        packages: Vec<String>,
    ) -> BuildProvenance {
        BuildProvenance {
            asked: build.to_string(),
            mite_version: env.mite_version.clone(),
            python_version: env.python_version.clone(),
            venv: env.venv.display().to_string(),
            resolution: Some(resolution),
            packages,
            ..BuildProvenance::default()
        }
    }

    /// The venv `wanted` names with its source installed, its dependencies
    /// resolved as it says: reused when its marker records that fingerprint
    /// and resolution, made (again) otherwise; with the packages it holds.
    /// One lab process at a time makes a given venv.
    async fn ensure(
        &self,
        wanted: &Wanted<'_>,
        build: &MiteBuild,
        sandbox: Option<&Sandbox>,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<(MiteEnv, Vec<String>), BuildError> {
        let venv = wanted.venv.as_path();
        let failed = |source: InstallError| BuildError::Install {
            build: build.to_string(),
            source,
        };
        std::fs::create_dir_all(&self.root)
            .map_err(InstallError::file("create", &self.root))
            .map_err(failed)?;
        let _lock = lock(&self.root, venv).await.map_err(failed)?;
        let marker_path = venv.join(MARKER);
        let marker: Option<Marker> = std::fs::read_to_string(&marker_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        // Made as of the same snapshot, and the same way (bytecode
        // compiled): only mite itself may need installing again.
        let resolved_alike = marker
            .as_ref()
            .is_some_and(|m| m.resolution.as_ref() == Some(&wanted.resolution) && m.bytecode);
        if let Some(marker) = &marker {
            if resolved_alike && marker.fingerprint == wanted.fingerprint {
                if let Ok(probed) = MiteEnv::probe_in(venv, sandbox).await {
                    return Ok(probed);
                }
            }
        }
        // Made as of another snapshot (or before the lab recorded one, or
        // without bytecode):
        // made again, whole, so that nothing of the old resolution stays.
        let fresh = !resolved_alike;
        let started = std::time::Instant::now();
        if fresh {
            say(&format!(
                "installing mite {build} into {} with {}, its dependencies from {} \
                 (about 30 s with uv, a minute with pip)…",
                venv.display(),
                if self.uv.is_some() { "uv" } else { "pip" },
                wanted.resolution.describe()
            ));
            if venv.exists() {
                // Half made by an installer that did not finish, or made
                // from another snapshot.
                std::fs::remove_dir_all(venv)
                    .map_err(InstallError::file("remove", venv))
                    .map_err(failed)?;
            }
            self.make_venv(venv, sandbox).await.map_err(failed)?;
        } else {
            say(&format!(
                "mite {build} changed since it was installed: reinstalling…"
            ));
            let _ = std::fs::remove_file(&marker_path);
        }
        self.pip_install(venv, &wanted.source, !fresh, &wanted.resolution, sandbox)
            .await
            .map_err(failed)?;
        let (env, packages) = MiteEnv::probe_in(venv, sandbox).await?;
        // What it holds, kept with it: the build's own lock.
        let listed = venv.join(PACKAGES_FILE);
        std::fs::write(&listed, packages.join("\n") + "\n")
            .map_err(InstallError::file("write", &listed))
            .map_err(failed)?;
        let marker = Marker {
            asked: build.to_string(),
            fingerprint: wanted.fingerprint.to_string(),
            resolution: Some(wanted.resolution.clone()),
            bytecode: true,
        };
        let text = serde_json::to_string(&marker).map_err(|e| failed(e.into()))?;
        std::fs::write(&marker_path, text)
            .map_err(InstallError::file("write", &marker_path))
            .map_err(failed)?;
        say(&format!(
            "mite {} ready in {:.0} s ({} packages)",
            env.mite_version,
            started.elapsed().as_secs_f64(),
            packages.len()
        ));
        Ok((env, packages))
    }

    async fn make_venv(&self, venv: &Path, sandbox: Option<&Sandbox>) -> Result<(), InstallError> {
        // A sandboxed installer sees the venv's folder only if it exists.
        std::fs::create_dir_all(venv).map_err(InstallError::file("create", venv))?;
        let python = match sandbox {
            // The lab's own mite's Python, at its real path: the sandbox has
            // no PATH lookup through a shim.
            Some(_) => self.base_python(),
            None => self.python.clone(),
        };
        let mut command = match &self.uv {
            Some(uv) => {
                let mut c = Command::new(uv);
                c.arg("venv")
                    .arg("--quiet")
                    .arg("--allow-existing")
                    .arg("--python")
                    .arg(&python);
                c
            }
            None => {
                let mut c = Command::new(&python);
                c.args(["-m", "venv"]);
                c
            }
        };
        command.arg(venv);
        run_quietly(self.installing(command, venv, None, sandbox)).await
    }

    async fn pip_install(
        &self,
        venv: &Path,
        source: &Source<'_>,
        again: bool,
        resolution: &Resolution,
        sandbox: Option<&Sandbox>,
    ) -> Result<(), InstallError> {
        let python = venv.join("bin/python");
        let requirement = source.requirement();
        match &self.uv {
            Some(uv) => {
                let mut c = Command::new(uv);
                // Compiled as pip compiles (by default): every build's
                // processes start alike, and none compiles its modules at
                // every start (its venv is read-only once made).
                c.args([
                    "pip",
                    "install",
                    "--quiet",
                    "--compile-bytecode",
                    "--python",
                ])
                .arg(&python);
                if again {
                    c.args(["--reinstall-package", "mite"]);
                }
                if let Some(as_of) = resolution.as_of() {
                    // Every dependency as the index had it then; mite
                    // itself whenever it was released (a release newer
                    // than the snapshot is still that release).
                    c.arg("--exclude-newer")
                        .arg(as_of)
                        .args(["--exclude-newer-package", "mite=false"]);
                }
                if sandbox.is_some() {
                    // Nothing a sandboxed install writes is shared with
                    // another venv.
                    c.args(["--link-mode", "copy"]);
                }
                // What this host built from the index's source
                // distributions (acurl), not built again: uv builds
                // them again whenever its cached copy of the source is
                // stale to it (a proxy that says nothing of caching
                // makes it stale at once: about 30 s of a core each
                // install here). The snapshot's date still rules:
                // uv takes no file from these links that the date would
                // exclude (a 2022 snapshot resolves acurl 0.1).
                self.fill_wheelhouse();
                c.arg("--find-links").arg(self.wheelhouse());
                if let Source::Wheel(_) = source {
                    // A wheel runs no code as it is installed, and neither
                    // may what it asks for: wheels only.
                    c.arg("--no-build");
                }
                c.arg(&requirement);
                run_quietly(self.installing(c, venv, Some(source), sandbox)).await
            }
            None => {
                let pip = |extra: &[&str]| {
                    let mut c = Command::new(&python);
                    c.args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(extra);
                    if sandbox.is_some() {
                        c.arg("--no-cache-dir");
                    }
                    if let Source::Wheel(_) = source {
                        c.args(["--only-binary", ":all:"]);
                    }
                    c.arg(&requirement);
                    c
                };
                if again {
                    run_quietly(self.installing(
                        pip(&["--force-reinstall", "--no-deps"]),
                        venv,
                        Some(source),
                        sandbox,
                    ))
                    .await?;
                }
                run_quietly(self.installing(pip(&[]), venv, Some(source), sandbox)).await
            }
        }
    }

    /// An installer's command, in `sandbox` where there is one: it sees
    /// the venv it makes (writable), the Python and uv it runs, what it
    /// installs from, and uv's cache: this host's shared one for releases
    /// from the index and wheels (only uv writes it then), a private one
    /// for a checkout, whose build back end runs there. The host's network,
    /// to fetch from the index.
    fn installing(
        &self,
        command: Command,
        venv: &Path,
        source: Option<&Source<'_>>,
        sandbox: Option<&Sandbox>,
    ) -> Command {
        let Some(sandbox) = sandbox else {
            return command;
        };
        let mut jail = Jail::new(Path::new("/tmp"), Network::Host)
            .writable(venv)
            .python_of(&self.pinned.venv);
        if let Some(uv) = &self.uv {
            jail = jail.read_only(uv);
        }
        let cache = match source {
            Some(Source::Checkout(_)) => private_cache(venv),
            _ => uv_cache_dir(),
        };
        let _ = std::fs::create_dir_all(&cache);
        jail = jail.writable(&cache).setting("UV_CACHE_DIR", &cache);
        let _ = std::fs::create_dir_all(self.wheelhouse());
        match source {
            // Its back end writes its build folders there.
            Some(Source::Checkout(path)) => {
                jail = jail.writable(path).read_only(&self.wheelhouse());
            }
            Some(Source::Wheel(path)) => {
                jail = jail.read_only(path).read_only(&self.wheelhouse());
            }
            Some(Source::Index(_)) => jail = jail.read_only(&self.wheelhouse()),
            None => {}
        }
        sandbox.enclose(&jail, &command)
    }

    /// The Python the lab's own mite runs on (new venvs are made with it).
    fn base_python(&self) -> PathBuf {
        python_prefix(&self.pinned.venv)
            .map(|prefix| prefix.join("bin/python3"))
            .unwrap_or_else(|| self.python.clone())
    }

    /// Wheels this host built from the index's source distributions (acurl
    /// builds from source), where every install finds them: one that may
    /// not build them (a wheel's), one with a cache of its own (a
    /// checkout's), and one whose cached source uv finds stale.
    fn wheelhouse(&self) -> PathBuf {
        self.root.join("wheelhouse")
    }

    /// Copies into [`Self::wheelhouse`] the wheels uv built from source
    /// distributions into its shared cache (kept there by uv).
    fn fill_wheelhouse(&self) {
        let house = self.wheelhouse();
        let _ = std::fs::create_dir_all(&house);
        let Ok(entries) = std::fs::read_dir(uv_cache_dir()) else {
            return;
        };
        let built: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("sdists-"))
            .flat_map(|e| wheels_under(&e.path(), 6))
            .collect();
        for wheel in built {
            let Some(name) = wheel.file_name() else {
                continue;
            };
            let kept = house.join(name);
            if !kept.exists() {
                let partial = house.join(format!(".{}.partial", name.to_string_lossy()));
                if std::fs::copy(&wheel, &partial).is_ok() {
                    let _ = std::fs::rename(&partial, &kept);
                }
            }
        }
    }
}

/// What a build is installed from, and so what its installer may run.
enum Source<'a> {
    /// A release from the index (`mite==2.10.0`): the index's source
    /// distributions are built, into this host's shared cache.
    Index(String),
    /// A wheel file: nothing is built, not even what it asks for.
    Wheel(&'a Path),
    /// A checkout: its build back end runs, with a cache of its own.
    Checkout(&'a Path),
}

impl Source<'_> {
    fn requirement(&self) -> String {
        match self {
            Source::Index(requirement) => requirement.clone(),
            Source::Wheel(path) | Source::Checkout(path) => path.display().to_string(),
        }
    }
}

/// The cache of a checkout's installs, beside its venv.
fn private_cache(venv: &Path) -> PathBuf {
    let name = venv
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    venv.with_file_name(format!(".cache-{name}"))
}

/// uv's cache folder, as uv finds it.
fn uv_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("UV_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("uv")
}

/// The wheel files under `dir`, `depth` folders down at most.
fn wheels_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() && depth > 0 => found.extend(wheels_under(&path, depth - 1)),
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "whl") => {
                found.push(path)
            }
            _ => {}
        }
    }
    found
}

/// `path` made absolute (against the current folder), checked to exist.
fn absolute(path: &Path) -> Result<PathBuf, BuildError> {
    path.canonicalize().map_err(|source| BuildError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Stops an installer's whole process group (it starts compilers and build
/// backends) when the install is abandoned before it ended.
struct InstallerGroup(Option<nix::unistd::Pid>);

impl Drop for InstallerGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            // The leader is not reaped yet (its wait was abandoned), so the
            // group is still the one the lab started.
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Runs an installer in a process group of its own; its error is the last
/// lines of what it printed. Dropped before it ends, the group is killed.
pub(super) async fn run_quietly(mut command: Command) -> Result<(), InstallError> {
    command
        .installer_env()
        .env("UV_PYTHON_DOWNLOADS", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let child = command.spawn().map_err(|source| InstallError::Start {
        program: program.clone(),
        source,
    })?;
    let mut group = InstallerGroup(
        child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(nix::unistd::Pid::from_raw),
    );
    let output = child
        .wait_with_output()
        .await
        .map_err(|source| InstallError::Wait {
            program: program.clone(),
            source,
        })?;
    // Ended (and reaped): nothing of it is left to stop.
    group.0 = None;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(ERROR_LINES)..].join("\n");
    Err(if tail.is_empty() {
        InstallError::Failed {
            program,
            status: output.status,
        }
    } else {
        InstallError::Said {
            program,
            said: tail,
        }
    })
}

/// An exclusive lock on `venv`'s lock file in `root`, held until dropped.
async fn lock(root: &Path, venv: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, InstallError> {
    let name = venv
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = root.join(format!(".{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(InstallError::file("open", &path))?;
    let locked = path.clone();
    tokio::task::spawn_blocking(move || {
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            InstallError::File {
                action: "lock",
                path: locked,
                source: e.into(),
            }
        })
    })
    .await
    .map_err(|source| InstallError::Abandoned { path, source })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(name: &str) -> BuildCache {
        let root =
            std::env::temp_dir().join(format!("mite-perf-snapshot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut cache = BuildCache::new(
            MiteEnv {
                venv: root.join("no-venv"),
                mite_version: "2.11.0".into(),
                python_version: "3.11.7".into(),
            },
            Some(root),
        );
        cache.uv = Some(PathBuf::from("/nonexistent/uv"));
        cache
    }

    #[tokio::test]
    async fn the_agents_snapshot_is_fixed_once_kept_and_moved_only_when_named() {
        let mut cache = cache("kept");
        let first = cache.snapshot().await.expect("made");
        assert!(parse_moment(&first).is_ok(), "{first}");
        // Kept: the next build resolves as of the same moment.
        assert_eq!(cache.snapshot().await.expect("kept"), first);
        // Named: it moves, and stays where it was moved.
        cache.snapshot_as_of = Some("2025-11-28".into());
        let named = cache.snapshot().await.expect("moved");
        assert_eq!(named, "2025-11-28T00:00:00Z");
        cache.snapshot_as_of = None;
        assert_eq!(cache.snapshot().await.expect("kept"), named);
        // A build's resolution follows it; a moment chosen by a run is its own.
        let build = MiteBuild::Version("2.10.0".into());
        assert_eq!(
            cache
                .resolution(&build, &DependencyChoice::Snapshot)
                .await
                .expect("resolution"),
            Resolution::Snapshot { as_of: named }
        );
        let chosen = DependencyChoice::AsOf("2025-01-02T03:04:05Z".into());
        assert_eq!(
            cache.resolution(&build, &chosen).await.expect("resolution"),
            Resolution::AsOf {
                as_of: "2025-01-02T03:04:05Z".into()
            }
        );
        // Without uv: the index of the day, and no moment can be chosen.
        cache.uv = None;
        assert_eq!(
            cache
                .resolution(&build, &DependencyChoice::Snapshot)
                .await
                .expect("resolution"),
            Resolution::Unpinned
        );
        let err = cache
            .resolution(&build, &chosen)
            .await
            .expect_err("needs uv");
        assert!(err.to_string().contains("only with uv"), "{err}");
        let _ = std::fs::remove_dir_all(&cache.root);
    }

    #[tokio::test]
    async fn a_snapshot_file_that_is_not_the_labs_is_refused_with_its_path() {
        let cache = cache("corrupt");
        std::fs::create_dir_all(&cache.root).expect("mkdir");
        let path = cache.root.join(SNAPSHOT_FILE);
        for bad in ["not json", r#"{"as_of": "last week", "made_at": "x"}"#] {
            std::fs::write(&path, bad).expect("write");
            let err = cache.snapshot().await.expect_err(bad).to_string();
            assert!(
                err.contains(&path.display().to_string()) && err.contains("dependency snapshot"),
                "{err}"
            );
        }
        let _ = std::fs::remove_dir_all(&cache.root);
    }
}
