//! What a child of the lab finds in its environment: never the lab's own
//! settings (the database URL with its password, `MITE_PERF_*`, whatever
//! an operator's service file holds), only what a program needs to run
//! as the lab's user, plus what each child is given on purpose (mite's
//! `MITE_CONF_*`, `PYTHONPATH`, the target's port).
//!
//! Every child starts from an empty environment ([`CleanEnv`]): the
//! target, mite's processes, py-spy, the scenario finder and Python
//! probes get [`basic`]; installers (uv, pip, git, which fetch and build
//! mite) also get the network and build settings of [`installer`].

use std::ffi::OsString;

/// Variables every child may inherit, by name.
const BASIC: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];
/// Prefixes of variables every child may inherit (the locale).
const BASIC_PREFIXES: &[&str] = &["LC_"];

/// Variables an installer may inherit besides [`BASIC`]: proxies,
/// certificates, caches and the C toolchain (acurl builds from source).
const INSTALLER: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "PKG_CONFIG_PATH",
];
/// Prefixes of an installer's own settings (uv's and pip's indexes,
/// caches, timeouts).
const INSTALLER_PREFIXES: &[&str] = &["UV_", "PIP_"];

fn kept(names: &[&str], prefixes: &[&str]) -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            name.to_str().is_some_and(|name| {
                names.contains(&name) || prefixes.iter().any(|p| name.starts_with(p))
            })
        })
        .collect()
}

/// What any child inherits: where programs are, who and where the user
/// is, the locale and the time zone.
pub fn basic() -> Vec<(OsString, OsString)> {
    kept(BASIC, BASIC_PREFIXES)
}

/// What an installer (uv, pip, git) inherits: [`basic`], and the settings
/// it needs to reach an index and build a wheel.
pub fn installer() -> Vec<(OsString, OsString)> {
    let mut names: Vec<&str> = BASIC.to_vec();
    names.extend_from_slice(INSTALLER);
    let mut prefixes: Vec<&str> = BASIC_PREFIXES.to_vec();
    prefixes.extend_from_slice(INSTALLER_PREFIXES);
    kept(&names, &prefixes)
}

/// A command that starts from an empty environment.
pub trait CleanEnv {
    /// Only [`basic`], then whatever the caller adds.
    fn basic_env(&mut self) -> &mut Self;
    /// Only [`installer`], then whatever the caller adds.
    fn installer_env(&mut self) -> &mut Self;
}

impl CleanEnv for std::process::Command {
    fn basic_env(&mut self) -> &mut Self {
        self.env_clear().envs(basic())
    }

    fn installer_env(&mut self) -> &mut Self {
        self.env_clear().envs(installer())
    }
}

impl CleanEnv for tokio::process::Command {
    fn basic_env(&mut self) -> &mut Self {
        self.env_clear().envs(basic())
    }

    fn installer_env(&mut self) -> &mut Self {
        self.env_clear().envs(installer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labs_settings_never_reach_a_child() {
        // This process's environment is the test runner's: look at what
        // would be kept of names a lab may hold.
        let keeps = |name: &str, installer_too: bool| {
            let (names, prefixes): (Vec<&str>, Vec<&str>) = if installer_too {
                (
                    BASIC.iter().chain(INSTALLER).copied().collect(),
                    BASIC_PREFIXES
                        .iter()
                        .chain(INSTALLER_PREFIXES)
                        .copied()
                        .collect(),
                )
            } else {
                (BASIC.to_vec(), BASIC_PREFIXES.to_vec())
            };
            names.contains(&name) || prefixes.iter().any(|p| name.starts_with(p))
        };
        for secret in [
            "MITE_PERF_DATABASE_URL",
            "DATABASE_URL",
            "MITE_PERF_VENV",
            "PGPASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "RUST_LOG",
            "LD_PRELOAD",
            "PYTHONPATH",
        ] {
            assert!(!keeps(secret, true), "{secret}");
        }
        for needed in ["PATH", "HOME", "LANG", "LC_ALL"] {
            assert!(keeps(needed, false), "{needed}");
        }
        for installer in ["UV_INDEX_URL", "PIP_FIND_LINKS", "HTTPS_PROXY", "CC"] {
            assert!(
                keeps(installer, true) && !keeps(installer, false),
                "{installer}"
            );
        }
    }

    #[test]
    fn a_child_sees_only_what_it_is_given() {
        let out = std::process::Command::new("/usr/bin/env")
            .basic_env()
            .env("GIVEN", "yes")
            .output()
            .expect("env");
        let seen = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = seen
            .lines()
            .filter_map(|l| l.split_once('=').map(|(n, _)| n))
            .collect();
        assert!(names.contains(&"GIVEN"), "{seen}");
        for name in names {
            assert!(
                name == "GIVEN"
                    || BASIC.contains(&name)
                    || BASIC_PREFIXES.iter().any(|p| name.starts_with(p)),
                "{name} reached the child"
            );
        }
    }
}
