//! Paths the lab reads back from the database or the browser, checked
//! before it opens them.

use std::path::{Component, Path, PathBuf};

/// Whether `path` lies inside `root` (both made absolute, `..` resolved,
/// links followed): for paths read back from the database before the lab
/// opens them.
pub fn is_inside(root: &Path, path: &Path) -> bool {
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(path)) => path.starts_with(root),
        _ => false,
    }
}

/// `path` (absolute) with `.` and `..` resolved as written, without
/// looking at the file system.
pub fn lexically_absolute(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_written_and_as_they_are() {
        assert_eq!(
            lexically_absolute(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(lexically_absolute(Path::new("/../x")), PathBuf::from("/x"));
        let tmp = std::env::temp_dir();
        assert!(is_inside(&tmp, &tmp));
        assert!(!is_inside(&tmp, Path::new("/")));
        assert!(!is_inside(&tmp, &tmp.join("no-such-file-here")));
    }
}
