//! Where a local mite build came from: a checkout's commit, whether it had
//! uncommitted changes, and a fingerprint of its files (so the lab
//! reinstalls it when they changed); a wheel's SHA-256.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::child_env::CleanEnv;

/// A checkout as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutState {
    /// Its commit and whether it has uncommitted changes (a git checkout only).
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    /// The commit's committer time (Unix seconds) and parents.
    pub git_commit_time: Option<i64>,
    pub git_parents: Vec<String>,
    /// Changes whenever a file that would be installed changes.
    pub fingerprint: String,
}

/// Folders that never hold what gets installed.
const SKIPPED_DIRS: [&str; 9] = [
    ".git",
    "__pycache__",
    "build",
    "dist",
    ".venv",
    "venv",
    ".tox",
    "node_modules",
    ".mypy_cache",
];

/// Reads `dir`'s state: with git when it is a git checkout (commit, dirty
/// flag), and in any case a fingerprint of every file's path, size and
/// modification time.
/// git's format for a commit's committer time and parents (`%ct %P`):
/// read by [`commit_time_and_parents`].
pub const COMMIT_TIME_AND_PARENTS: &str = "--format=%ct %P";

/// A line of [`COMMIT_TIME_AND_PARENTS`]: the time, then the parents (none
/// for a root commit).
pub fn commit_time_and_parents(line: &str) -> (Option<i64>, Vec<String>) {
    let mut words = line.split_whitespace();
    let time = words.next().and_then(|t| t.parse().ok());
    (time, words.map(str::to_string).collect())
}

pub fn checkout_state(dir: &Path) -> std::io::Result<CheckoutState> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .installer_env()
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let git_commit = git(&["rev-parse", "HEAD"]).map(|s| s.trim().to_string());
    let git_dirty = git_commit.as_ref().and_then(|_| {
        git(&["status", "--porcelain", "--untracked-files=normal"]).map(|s| !s.trim().is_empty())
    });
    let (git_commit_time, git_parents) = git_commit
        .as_ref()
        .and_then(|_| git(&["show", "-s", COMMIT_TIME_AND_PARENTS, "HEAD"]))
        .map(|line| commit_time_and_parents(&line))
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    if let Some(commit) = &git_commit {
        hasher.update(commit.as_bytes());
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries)?;
    entries.sort();
    for entry in entries {
        hasher.update(entry.as_bytes());
        hasher.update(b"\n");
    }
    Ok(CheckoutState {
        git_commit,
        git_dirty,
        git_commit_time,
        git_parents,
        fingerprint: hex::encode(hasher.finalize()),
    })
}

fn walk(root: &Path, dir: &Path, entries: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if SKIPPED_DIRS.contains(&name.as_ref()) || name.ends_with(".egg-info") {
                continue;
            }
            walk(root, &entry.path(), entries)?;
        } else if kind.is_file() && !name.ends_with(".pyc") {
            let meta = entry.metadata()?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap_or(&path);
            entries.push(format!("{} {} {modified}", relative.display(), meta.len()));
        }
    }
    Ok(())
}

/// The SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The SHA-256 of some text, in hex.
pub fn sha256_text(text: &str) -> String {
    sha256_bytes(text.as_bytes())
}

/// The SHA-256 of some bytes, in hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mite-perf-src-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_changed_file_changes_the_fingerprint_and_caches_do_not() {
        let dir = temp_dir("fingerprint");
        std::fs::create_dir_all(dir.join("mite")).expect("mkdir");
        std::fs::write(dir.join("mite/__init__.py"), "x = 1\n").expect("write");
        let first = checkout_state(&dir).expect("state");
        assert_eq!((first.git_commit.as_deref(), first.git_dirty), (None, None));
        // Byte-code and build folders do not count.
        std::fs::create_dir_all(dir.join("mite/__pycache__")).expect("mkdir");
        std::fs::write(dir.join("mite/__pycache__/x.pyc"), "junk").expect("write");
        std::fs::create_dir_all(dir.join("build/lib")).expect("mkdir");
        std::fs::write(dir.join("build/lib/y.py"), "junk").expect("write");
        assert_eq!(checkout_state(&dir).expect("state"), first);
        std::fs::write(dir.join("mite/__init__.py"), "x = 22\n").expect("write");
        assert_ne!(
            checkout_state(&dir).expect("state").fingerprint,
            first.fingerprint
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_git_checkout_names_its_commit_its_time_parents_and_whether_it_is_dirty() {
        let dir = temp_dir("git");
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .arg("-C")
                .arg(&dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .status()
                .expect("git runs");
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(dir.join("setup.py"), "").expect("write");
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "one"]);
        let clean = checkout_state(&dir).expect("state");
        assert_eq!(clean.git_commit.as_ref().map(String::len), Some(40));
        assert_eq!(clean.git_dirty, Some(false));
        std::fs::write(dir.join("setup.py"), "# changed\n").expect("write");
        let dirty = checkout_state(&dir).expect("state");
        assert_eq!(dirty.git_dirty, Some(true));
        assert_eq!(dirty.git_commit, clean.git_commit);
        // The root commit: its time, no parents; the next names it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        assert!(clean.git_commit_time.is_some_and(|t| (now - t).abs() < 600));
        assert!(clean.git_parents.is_empty());
        git(&["commit", "-q", "-am", "two"]);
        let second = checkout_state(&dir).expect("state");
        assert_eq!(
            second.git_parents,
            vec![clean.git_commit.clone().expect("a commit")]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            sha256_text("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = temp_dir("sha");
        std::fs::write(dir.join("f"), "abc").expect("write");
        assert_eq!(
            sha256_file(&dir.join("f")).expect("read"),
            sha256_text("abc")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
