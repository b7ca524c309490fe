//! What one sandboxed program sees, as bubblewrap's command line (pure: no
//! process is started here).
//!
//! The system's programs and libraries read-only (`/usr` and its links,
//! the few files of `/etc` a program needs to start and to resolve a
//! name), a `/proc`, `/dev` and `/tmp` of its own, and the paths it is
//! given, each at the same path as outside: logs, profiles, py-spy and
//! the collector's folder mean the same files on both sides. Nothing else
//! of the host is there: no home folder, no output of other runs, no
//! database, no other build's venv, no `/sys`. It runs in PID, IPC, UTS,
//! cgroup and user namespaces of its own, with no capability, and may make
//! no user namespace of its own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The files of `/etc` a sandboxed program may read, where the host has
/// them: the dynamic linker's cache, names of users and hosts, the
/// resolver (installs fetch from an index), certificates, the time zone.
/// Never the whole folder: a lab's service file or secret may live there.
const ETC: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki",
    "/etc/mime.types",
    "/etc/os-release",
];

/// The top-level names that are links into `/usr` on a merged system (or
/// folders of their own on an older one).
const ROOT_LINKS: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// Which network a sandboxed program has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's: an installer fetching from an index.
    Host,
    /// None but a loopback of its own (a probe of a build, the scenario
    /// finder).
    Loopback,
    /// The scenario's own ([`super::ScenarioNet`]): the child joins it
    /// before bubblewrap starts, so bubblewrap leaves it as it is.
    Scenario,
}

/// What a sandboxed program may see and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jail {
    read_only: Vec<PathBuf>,
    writable: Vec<PathBuf>,
    cwd: PathBuf,
    network: Network,
    /// Set inside, whatever the program's environment says.
    settings: Vec<(String, OsString)>,
}

impl Jail {
    /// A jail that starts its program in `cwd` (which must be one of the
    /// paths it sees, or `/tmp`).
    pub fn new(cwd: &Path, network: Network) -> Self {
        Jail {
            read_only: Vec::new(),
            writable: Vec::new(),
            cwd: cwd.to_path_buf(),
            network,
            settings: vec![
                ("HOME".into(), "/tmp".into()),
                ("TMPDIR".into(), "/tmp".into()),
            ],
        }
    }

    /// `name` is `value` inside, whatever the program's environment says.
    pub fn setting(mut self, name: &str, value: &Path) -> Self {
        self.settings.retain(|(n, _)| n != name);
        self.settings
            .push((name.to_string(), value.as_os_str().to_os_string()));
        self
    }

    /// `path` (a file or a folder) is there, read-only.
    pub fn read_only(mut self, path: &Path) -> Self {
        self.read_only.push(path.to_path_buf());
        self
    }

    /// `path` (a folder) is there and may be written.
    pub fn writable(mut self, path: &Path) -> Self {
        self.writable.push(path.to_path_buf());
        self
    }

    /// The same jail, starting its program in `cwd`.
    pub fn starting_in(mut self, cwd: &Path) -> Self {
        self.cwd = cwd.to_path_buf();
        self
    }

    /// The Python a venv runs on, read-only, where it lies outside `/usr`
    /// (a pyenv or uv-managed Python): the venv's `bin/python` links there.
    pub fn python_of(self, venv: &Path) -> Self {
        match python_prefix(venv) {
            Some(prefix) if !prefix.starts_with("/usr") => self.read_only(&prefix),
            _ => self,
        }
    }

    pub fn network(&self) -> Network {
        self.network
    }

    /// bubblewrap's arguments that run `program` with `args` in this jail.
    pub fn arguments(&self, program: &Path, args: &[OsString]) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| out.extend(items.iter().map(OsString::from));
        push(&[
            "--unshare-user",
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
        ]);
        if self.network == Network::Loopback {
            push(&["--unshare-net"]);
        }
        push(&["--ro-bind", "/usr", "/usr"]);
        for name in ROOT_LINKS {
            let path = Path::new(name);
            match std::fs::read_link(path) {
                Ok(target) => {
                    out.extend(["--symlink".into(), target.into_os_string(), name.into()])
                }
                Err(_) if path.is_dir() => {
                    out.extend(["--ro-bind".into(), name.into(), name.into()])
                }
                Err(_) => {}
            }
        }
        for file in ETC {
            out.extend(["--ro-bind-try".into(), file.into(), file.into()]);
        }
        out.extend(
            ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
                .iter()
                .map(OsString::from),
        );
        // Shallow paths first: a deeper one is bound over what holds it.
        let mut binds: Vec<(&Path, &str)> = self
            .read_only
            .iter()
            .map(|p| (p.as_path(), "--ro-bind"))
            .chain(self.writable.iter().map(|p| (p.as_path(), "--bind")))
            .collect();
        binds.sort_by_key(|(path, _)| path.components().count());
        binds.dedup();
        for (path, how) in binds {
            out.extend([how.into(), path.into(), path.into()]);
        }
        // Nothing but /tmp and the writable paths may be written: not even
        // the sandbox's own root.
        out.extend(["--remount-ro".into(), "/".into()]);
        out.extend(["--chdir".into(), self.cwd.clone().into_os_string()]);
        for (name, value) in &self.settings {
            out.extend(["--setenv".into(), name.into(), value.clone()]);
        }
        out.extend(["--".into(), program.into()]);
        out.extend(args.iter().cloned());
        out
    }
}

/// The prefix of the Python a venv was made with (`home` in its
/// `pyvenv.cfg` is that Python's `bin`).
pub fn python_prefix(venv: &Path) -> Option<PathBuf> {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    let home = cfg.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "home").then(|| PathBuf::from(value.trim()))
    })?;
    // The real folder: a venv's `home` may be a link.
    let home = home.canonicalize().unwrap_or(home);
    Some(match home.file_name() {
        Some(name) if name == "bin" => home.parent()?.to_path_buf(),
        _ => home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_jail_binds_what_it_is_given_at_the_same_path_and_little_else() {
        let jail = Jail::new(Path::new("/scenarios"), Network::Scenario)
            .writable(Path::new("/out/s10/collector"))
            .read_only(Path::new("/venvs/b1"))
            .read_only(Path::new("/scenarios"));
        let args = strings(&jail.arguments(
            Path::new("/venvs/b1/bin/mite"),
            &["duplicator".into(), "--x=1".into()],
        ));
        let line = args.join(" ");
        assert!(line.contains("--ro-bind /usr /usr"), "{line}");
        assert!(line.contains("--ro-bind /venvs/b1 /venvs/b1"), "{line}");
        assert!(
            line.contains("--bind /out/s10/collector /out/s10/collector"),
            "{line}"
        );
        assert!(line.contains("--chdir /scenarios"), "{line}");
        assert!(
            line.ends_with("-- /venvs/b1/bin/mite duplicator --x=1"),
            "{line}"
        );
        // Its own namespaces, no capability, no network changed: it joins
        // the scenario's before bubblewrap starts.
        for flag in ["--unshare-pid", "--unshare-user", "--disable-userns"] {
            assert!(args.contains(&flag.to_string()), "{flag}: {line}");
        }
        assert!(line.contains("--cap-drop ALL"), "{line}");
        assert!(!args.contains(&"--unshare-net".to_string()), "{line}");
        // Never the whole of /etc, the host's root or its home folders.
        for never in ["/etc /etc", "--bind / /", "--ro-bind / /", "/root", "/home"] {
            assert!(!line.contains(never), "{never}: {line}");
        }
        // Deeper paths are bound after the folders that hold them.
        let shallow = line.find("--ro-bind /scenarios").expect("bound");
        let deep = line.find("--bind /out/s10/collector").expect("bound");
        assert!(shallow < deep, "{line}");
    }

    #[test]
    fn a_jail_without_the_hosts_network_has_a_loopback_of_its_own() {
        let args = strings(
            &Jail::new(Path::new("/tmp"), Network::Loopback).arguments(Path::new("/bin/true"), &[]),
        );
        assert!(args.contains(&"--unshare-net".to_string()));
        let host = strings(
            &Jail::new(Path::new("/tmp"), Network::Host).arguments(Path::new("/bin/true"), &[]),
        );
        assert!(!host.contains(&"--unshare-net".to_string()));
    }

    #[test]
    fn a_venvs_python_is_found_from_its_config() {
        let dir = std::env::temp_dir().join(format!("mite-perf-jail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp folder");
        std::fs::write(
            dir.join("pyvenv.cfg"),
            "home = /opt/python/3.11.7/bin\nversion_info = 3.11.7\n",
        )
        .expect("write");
        assert_eq!(
            python_prefix(&dir),
            Some(PathBuf::from("/opt/python/3.11.7"))
        );
        let jail = Jail::new(Path::new("/tmp"), Network::Loopback).python_of(&dir);
        assert_eq!(jail.read_only, vec![PathBuf::from("/opt/python/3.11.7")]);
        std::fs::write(dir.join("pyvenv.cfg"), "home = /usr/bin\n").expect("write");
        let jail = Jail::new(Path::new("/tmp"), Network::Loopback).python_of(&dir);
        assert!(jail.read_only.is_empty(), "/usr is bound anyway");
        let _ = std::fs::remove_dir_all(dir);
    }
}
