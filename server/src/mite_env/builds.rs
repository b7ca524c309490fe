//! One venv per mite build, made once and kept: a PyPI version, a local
//! checkout (made again when its files change) or a wheel. Made with `uv`
//! where scripts/setup installed it (seconds), plain `venv` + `pip`
//! otherwise. Whatever cannot be had is said before any process starts.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use domain::builds::MiteBuild;
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
    /// The pinned build (scripts/setup's venv, or `--mite-venv`).
    pub pinned: MiteEnv,
    /// `uv`, when installed.
    pub uv: Option<PathBuf>,
    /// The Python venvs are made with.
    pub python: PathBuf,
}

/// What the marker records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Marker {
    asked: String,
    fingerprint: String,
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
                entry.path().join(MARKER).is_file().then_some(version)
            })
            .filter(|v| *v != self.pinned.mite_version)
            .collect();
        versions.sort();
        builds.extend(versions.into_iter().map(MiteBuild::Version));
        builds
    }

    /// Makes `build` ready (installing it if it is not yet, or if a
    /// checkout changed). `say` hears what is going on.
    /// Installers, build back ends and probes of the new venv run in
    /// `sandbox` where there is one (see [`crate::sandbox`]).
    pub async fn install(
        &self,
        build: &MiteBuild,
        sandbox: Option<&Sandbox>,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<Installed, BuildError> {
        match build {
            MiteBuild::Pinned => Ok(self.pinned_build("pinned")),
            MiteBuild::Version(version) if *version == self.pinned.mite_version => {
                Ok(self.pinned_build(version))
            }
            MiteBuild::Version(version) => {
                let venv = self.root.join(format!("pypi-{version}"));
                let env = self
                    .ensure(
                        &venv,
                        build,
                        version,
                        &Source::Index(format!("mite=={version}")),
                        sandbox,
                        say,
                    )
                    .await?;
                if env.mite_version != *version {
                    return Err(BuildError::WrongVersion {
                        build: build.to_string(),
                        found: env.mite_version,
                    });
                }
                Ok(Installed {
                    provenance: self.provenance(build, &env),
                    env,
                })
            }
            MiteBuild::Wheel(path) => {
                let path = absolute(path)?;
                let sha = sha256_file(&path).map_err(|source| BuildError::Read {
                    path: path.clone(),
                    source,
                })?;
                let venv = self.root.join(format!("wheel-{}", &sha[..16]));
                let env = self
                    .ensure(&venv, build, &sha, &Source::Wheel(&path), sandbox, say)
                    .await?;
                let mut provenance = self.provenance(build, &env);
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
                let venv = self.root.join(format!("upload-{}", &sha[..16]));
                let env = self
                    .ensure(&venv, build, sha, &Source::Wheel(&path), sandbox, say)
                    .await?;
                let mut provenance = self.provenance(build, &env);
                provenance.wheel_sha256 = Some(sha.clone());
                Ok(Installed { env, provenance })
            }
            MiteBuild::Checkout(path) => {
                let path = absolute(path)?;
                if !path.join("pyproject.toml").is_file() && !path.join("setup.py").is_file() {
                    return Err(BuildError::NotACheckout { path });
                }
                let state = checkout_state(&path).map_err(|source| BuildError::Read {
                    path: path.clone(),
                    source,
                })?;
                let key = sha256_text(&path.display().to_string());
                let venv = self.root.join(format!("checkout-{}", &key[..16]));
                let env = self
                    .ensure(
                        &venv,
                        build,
                        &state.fingerprint,
                        &Source::Checkout(&path),
                        sandbox,
                        say,
                    )
                    .await?;
                let mut provenance = self.provenance(build, &env);
                provenance.git_commit = state.git_commit;
                provenance.git_dirty = state.git_dirty;
                provenance.git_commit_time = state.git_commit_time;
                provenance.git_parents = state.git_parents;
                Ok(Installed { env, provenance })
            }
        }
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

    fn pinned_build(&self, asked: &str) -> Installed {
        Installed {
            env: self.pinned.clone(),
            provenance: BuildProvenance {
                asked: asked.to_string(),
                mite_version: self.pinned.mite_version.clone(),
                python_version: self.pinned.python_version.clone(),
                venv: self.pinned.venv.display().to_string(),
                ..BuildProvenance::default()
            },
        }
    }

    fn provenance(&self, build: &MiteBuild, env: &MiteEnv) -> BuildProvenance {
        BuildProvenance {
            asked: build.to_string(),
            mite_version: env.mite_version.clone(),
            python_version: env.python_version.clone(),
            venv: env.venv.display().to_string(),
            ..BuildProvenance::default()
        }
    }

    /// The venv at `venv` with `source` installed, as recorded by
    /// `fingerprint`: reused when its marker says so, made (again) otherwise.
    /// One lab process at a time makes a given venv.
    async fn ensure(
        &self,
        venv: &Path,
        build: &MiteBuild,
        fingerprint: &str,
        source: &Source<'_>,
        sandbox: Option<&Sandbox>,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<MiteEnv, BuildError> {
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
        if let Some(marker) = &marker {
            if marker.fingerprint == fingerprint {
                if let Ok(env) = MiteEnv::locate_in(venv, sandbox) {
                    return Ok(env);
                }
            }
        }
        let fresh = marker.is_none();
        let started = std::time::Instant::now();
        if fresh {
            say(&format!(
                "installing mite {build} into {} with {} (about 30 s with uv, a minute with pip)…",
                venv.display(),
                if self.uv.is_some() { "uv" } else { "pip" }
            ));
            if venv.exists() {
                // Half made by an installer that did not finish.
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
        self.pip_install(venv, source, !fresh, sandbox)
            .await
            .map_err(failed)?;
        let env = MiteEnv::locate_in(venv, sandbox)?;
        let marker = Marker {
            asked: build.to_string(),
            fingerprint: fingerprint.to_string(),
        };
        let text = serde_json::to_string(&marker).map_err(|e| failed(e.into()))?;
        std::fs::write(&marker_path, text)
            .map_err(InstallError::file("write", &marker_path))
            .map_err(failed)?;
        say(&format!(
            "mite {} ready in {:.0} s",
            env.mite_version,
            started.elapsed().as_secs_f64()
        ));
        Ok(env)
    }

    async fn make_venv(&self, venv: &Path, sandbox: Option<&Sandbox>) -> Result<(), InstallError> {
        // A sandboxed installer sees the venv's folder only if it exists.
        std::fs::create_dir_all(venv).map_err(InstallError::file("create", venv))?;
        let python = match sandbox {
            // The pinned build's Python, at its real path: the sandbox has
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
        sandbox: Option<&Sandbox>,
    ) -> Result<(), InstallError> {
        let python = venv.join("bin/python");
        let requirement = source.requirement();
        match &self.uv {
            Some(uv) => {
                let mut c = Command::new(uv);
                c.args(["pip", "install", "--quiet", "--python"])
                    .arg(&python);
                if again {
                    c.args(["--reinstall-package", "mite"]);
                }
                if sandbox.is_some() {
                    // Nothing a sandboxed install writes is shared with
                    // another venv.
                    c.args(["--link-mode", "copy"]);
                    if !matches!(source, Source::Index(_)) {
                        // What this host built from the index (acurl),
                        // without building it again.
                        self.fill_wheelhouse();
                        c.arg("--find-links").arg(self.wheelhouse());
                    }
                }
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
            Some(Source::Index(_)) | None => {}
        }
        sandbox.enclose(&jail, &command)
    }

    /// The Python the pinned build runs on (new venvs are made with it).
    fn base_python(&self) -> PathBuf {
        python_prefix(&self.pinned.venv)
            .map(|prefix| prefix.join("bin/python3"))
            .unwrap_or_else(|| self.python.clone())
    }

    /// Wheels this host built from the index's source distributions (acurl
    /// builds from source), where a sandboxed install that may not build
    /// them, or builds with a cache of its own, finds them.
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
