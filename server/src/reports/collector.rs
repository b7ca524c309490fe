//! mite's collector data: each scenario's `collector/` folder, kept within
//! what its run asked for ([`CollectorKeep`]), listed and opened for the
//! run's page.

use std::path::{Path, PathBuf};

use crate::model::{CollectorFile, CollectorKeep};

/// The folder, beside a scenario's logs, the collector writes into.
pub const FOLDER: &str = "collector";

/// The collector folder of the scenario whose collector logged to `log`.
pub fn folder_of_log(log: &Path) -> Option<PathBuf> {
    Some(log.parent()?.join(FOLDER))
}

/// Keeps a collector folder within what `keep` allows by deleting its
/// oldest rolled files. The file the collector is writing (`current`) is
/// only removed once the collector has stopped (`finished`), and only when
/// nothing is to be kept.
pub fn trim(dir: &Path, keep: CollectorKeep, finished: bool) {
    let Some(limit) = keep.limit_bytes() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let size = e.metadata().ok().filter(|m| m.is_file())?.len();
            Some((e.file_name().to_string_lossy().into_owned(), size))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, size)| size).sum();
    // Rolled files are named `<start>_<end>_<n>`: by name is oldest first.
    files.sort();
    for (name, size) in &files {
        if total <= limit {
            break;
        }
        let in_use = name.starts_with("current");
        if in_use && !(finished && limit == 0) {
            continue;
        }
        if std::fs::remove_file(dir.join(name)).is_ok() {
            total = total.saturating_sub(*size);
        }
    }
}

/// The files in a collector folder, oldest first, as the page lists them.
/// A folder that is not there (trimmed to nothing, or on another host)
/// lists nothing.
pub fn files(dir: &Path) -> Vec<CollectorFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<CollectorFile> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let name = e.file_name().into_string().ok()?;
            is_collector_name(&name).then_some(CollectorFile {
                name,
                bytes: meta.len(),
            })
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// Names mite's collector gives its files (`current`, `current_start_time`,
/// `<start>_<end>_<n>`): letters, digits, `_`, `-` and `.`, not starting
/// with a dot. Anything else is not offered, nor opened.
pub fn is_collector_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The path of the file `name` in `dir`, if the folder lists it.
pub fn file_path(dir: &Path, name: &str) -> Option<PathBuf> {
    if !is_collector_name(name) {
        return None;
    }
    files(dir)
        .into_iter()
        .find(|f| f.name == name)
        .map(|f| dir.join(f.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_the_collector_gives_are_offered() {
        for good in ["current", "current_start_time", "1700000000_1700000060_1"] {
            assert!(is_collector_name(good), "{good}");
        }
        for bad in ["", "..", ".hidden", "../samples.csv", "a/b", "x y", "é"] {
            assert!(!is_collector_name(bad), "{bad}");
        }
    }

    #[test]
    fn collector_dir_is_trimmed_oldest_first_and_keeps_current() {
        let dir = std::env::temp_dir().join(format!("mite-perf-trim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mib = vec![0u8; 1024 * 1024];
        for name in ["100_200_1", "200_300_2", "300_400_3", "current"] {
            std::fs::write(dir.join(name), &mib).expect("write");
        }
        trim(&dir, CollectorKeep::All, true);
        assert_eq!(std::fs::read_dir(&dir).expect("read").count(), 4);
        trim(&dir, CollectorKeep::LastMib(2), false);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["300_400_3", "current"]);
        let listed: Vec<String> = files(&dir).into_iter().map(|f| f.name).collect();
        assert_eq!(listed, left);
        assert_eq!(file_path(&dir, "current"), Some(dir.join("current")));
        assert_eq!(file_path(&dir, "100_200_1"), None, "trimmed");
        assert_eq!(file_path(&dir, "../current"), None);
        trim(&dir, CollectorKeep::Nothing, false);
        assert_eq!(
            std::fs::read_dir(&dir).expect("read").count(),
            1,
            "current is written"
        );
        trim(&dir, CollectorKeep::Nothing, true);
        assert_eq!(std::fs::read_dir(&dir).expect("read").count(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
