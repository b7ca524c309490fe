//! What makes an uploaded file a mite wheel: its name (`mite-VERSION-TAGS.whl`,
//! nothing that could be a path) and its content (a zip archive whose
//! `mite-VERSION.dist-info/METADATA` says `Name: mite` and that version).
//! The lab checks both when a wheel is uploaded, and the name again when an
//! agent writes the file out (the database is not trusted).

use std::io::{Cursor, Read};

/// The largest wheel the lab takes (mite's are about 200 KiB).
pub const MAX_WHEEL_BYTES: usize = 16 * 1024 * 1024;
/// The most the METADATA file may take once inflated.
const MAX_METADATA_BYTES: u64 = 1024 * 1024;

/// Why a file is not a mite wheel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WheelError {
    #[error(
        "`{0}` is not a mite wheel's name: it must read mite-VERSION-PYTAG-ABITAG-PLATFORM.whl \
         (as `uv build` names it) in letters, digits, `.`, `_` and `+`"
    )]
    Name(String),
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes: the lab takes wheels of at most {MAX_WHEEL_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("the file is not a wheel (a zip archive): {0}")]
    NotAZip(String),
    #[error("the wheel has no {0}: it is not a built mite wheel")]
    NoMetadata(String),
    #[error("the wheel's METADATA names `{found}`, not mite")]
    NotMite { found: String },
    #[error("the wheel's METADATA says version {found}, its name says {named}")]
    VersionMismatch { named: String, found: String },
}

/// What the name of a wheel says: its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    pub version: String,
}

/// Checks `name` is a mite wheel's file name, and reads its version.
pub fn parse_wheel_name(name: &str) -> Result<WheelName, WheelError> {
    let bad = || WheelError::Name(name.chars().take(120).collect());
    let stem = name.strip_suffix(".whl").ok_or_else(bad)?;
    let parts: Vec<&str> = stem.split('-').collect();
    // name-version[-build]-python-abi-platform
    if !(parts.len() == 5 || parts.len() == 6) || parts[0] != "mite" {
        return Err(bad());
    }
    let fine = |part: &&str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+'))
            && !part.starts_with('.')
    };
    if !parts.iter().all(fine) || name.len() > 200 {
        return Err(bad());
    }
    Ok(WheelName {
        version: parts[1].to_string(),
    })
}

/// Checks `content` is the mite wheel `name` says it is.
pub fn inspect(name: &str, content: &[u8]) -> Result<WheelName, WheelError> {
    let named = parse_wheel_name(name)?;
    if content.is_empty() {
        return Err(WheelError::Empty);
    }
    if content.len() > MAX_WHEEL_BYTES {
        return Err(WheelError::TooLarge {
            size: content.len(),
        });
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(content))
        .map_err(|e| WheelError::NotAZip(e.to_string()))?;
    // The dist-info folder is named after the normalised version; a
    // version in the file name (`2.12.0+local`) is the same text.
    let metadata_path = format!("mite-{}.dist-info/METADATA", named.version);
    let file = archive
        .by_name(&metadata_path)
        .map_err(|_| WheelError::NoMetadata(metadata_path.clone()))?;
    let mut text = String::new();
    file.take(MAX_METADATA_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| WheelError::NotAZip(e.to_string()))?;
    let field = |key: &str| {
        text.lines()
            .take_while(|line| !line.is_empty())
            .find_map(|line| line.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let found_name = field("Name:");
    if !found_name.eq_ignore_ascii_case("mite") {
        return Err(WheelError::NotMite { found: found_name });
    }
    let found_version = field("Version:");
    if found_version != named.version {
        return Err(WheelError::VersionMismatch {
            named: named.version,
            found: found_version,
        });
    }
    Ok(named)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A zip archive holding `files` (name, text), deflated as wheels are.
    pub(crate) fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in files {
            writer.start_file(*name, options).expect("start");
            writer.write_all(text.as_bytes()).expect("write");
        }
        writer.finish().expect("finish").into_inner()
    }

    proptest::proptest! {
        /// Any name: a mite wheel's, safe to write as a file in one folder
        /// (no separator, no leading dot, bounded), or refused naming it.
        #[test]
        fn any_name_is_a_safe_wheel_name_or_refused(
            name in "mite-[0-9a-z._+/\\\\-]{0,12}-py3-none-any\\.whl|.{0,40}"
        ) {
            match parse_wheel_name(&name) {
                Ok(named) => {
                    proptest::prop_assert!(name.starts_with("mite-") && name.ends_with(".whl"));
                    proptest::prop_assert!(!name.contains(['/', '\\', '\0']) && name.len() <= 200);
                    proptest::prop_assert!(!named.version.is_empty() && !named.version.starts_with('.'));
                }
                Err(e) => {
                    let shown: String = name.chars().take(120).collect();
                    proptest::prop_assert!(e.to_string().contains(&shown), "{}", e);
                }
            }
        }

        /// Any bytes under a good name: refused (not a zip, empty, no
        /// METADATA), never a panic.
        #[test]
        fn any_bytes_are_refused_with_a_reason(content in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let refused = inspect("mite-2.12.0-py3-none-any.whl", &content);
            proptest::prop_assert!(refused.is_err());
        }
    }

    /// A METADATA that inflates far past what the lab reads (a bomb), one
    /// that is not UTF-8, and entries named as paths: each answered at once,
    /// nothing written anywhere.
    #[test]
    fn bombs_odd_text_and_path_names_are_answered_without_harm() {
        let head = metadata("mite", "2.12.0");
        let bomb = format!("{head}{}", "x".repeat(8 * 1024 * 1024));
        let wheel = zip_of(&[("mite-2.12.0.dist-info/METADATA", &bomb)]);
        assert!(wheel.len() < 64 * 1024, "deflated: {} bytes", wheel.len());
        let started = std::time::Instant::now();
        assert!(inspect("mite-2.12.0-py3-none-any.whl", &wheel).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file(
                "mite-2.12.0.dist-info/METADATA",
                zip::write::SimpleFileOptions::default(),
            )
            .expect("start");
        writer
            .write_all(b"Name: mite\nVersion: \xff\xfe\n")
            .expect("write");
        let not_utf8 = writer.finish().expect("finish").into_inner();
        assert!(inspect("mite-2.12.0-py3-none-any.whl", &not_utf8).is_err());

        let paths = zip_of(&[
            ("../../etc/passwd", "root"),
            ("/tmp/mite-perf-evil", "x"),
            ("mite-2.12.0.dist-info/METADATA", &head),
        ]);
        assert!(inspect("mite-2.12.0-py3-none-any.whl", &paths).is_ok());
        assert!(!std::path::Path::new("/tmp/mite-perf-evil").exists());
    }

    fn metadata(name: &str, version: &str) -> String {
        format!("Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n\nName: not-this\n")
    }

    #[test]
    fn a_mite_wheel_passes_and_says_its_version() {
        let wheel = zip_of(&[
            ("mite/__init__.py", ""),
            (
                "mite-2.12.0.dist-info/METADATA",
                &metadata("mite", "2.12.0"),
            ),
        ]);
        assert_eq!(
            inspect("mite-2.12.0-py3-none-any.whl", &wheel),
            Ok(WheelName {
                version: "2.12.0".into()
            })
        );
    }

    #[test]
    fn names_that_are_not_a_mite_wheels_are_refused() {
        for bad in [
            "mite-2.12.0.tar.gz",
            "other-2.12.0-py3-none-any.whl",
            "mite-2.12.0-py3-none.whl",
            "../mite-2.12.0-py3-none-any.whl",
            "mite-2.12.0-py3-none-any/../x.whl",
            "mite-..-py3-none-any.whl",
            "mite-2.12.0-py3-none-any .whl",
            "mite-2.12.0-py3-none-any.whl\n",
        ] {
            assert!(
                matches!(parse_wheel_name(bad), Err(WheelError::Name(_))),
                "{bad:?}"
            );
        }
        assert!(parse_wheel_name("mite-2.12.0+g1a2b-1-py3-none-any.whl").is_ok());
    }

    #[test]
    fn content_that_is_not_mite_is_refused_with_the_reason() {
        let name = "mite-2.12.0-py3-none-any.whl";
        assert_eq!(inspect(name, b""), Err(WheelError::Empty));
        assert!(matches!(
            inspect(name, b"#!/bin/sh\nrm -rf /\n"),
            Err(WheelError::NotAZip(_))
        ));
        let no_metadata = zip_of(&[("mite/__init__.py", "")]);
        assert!(matches!(
            inspect(name, &no_metadata),
            Err(WheelError::NoMetadata(_))
        ));
        let other = zip_of(&[(
            "mite-2.12.0.dist-info/METADATA",
            &metadata("evil", "2.12.0"),
        )]);
        assert_eq!(
            inspect(name, &other),
            Err(WheelError::NotMite {
                found: "evil".into()
            })
        );
        let older = zip_of(&[(
            "mite-2.12.0.dist-info/METADATA",
            &metadata("mite", "2.11.0"),
        )]);
        assert!(matches!(
            inspect(name, &older),
            Err(WheelError::VersionMismatch { .. })
        ));
        let huge = vec![0u8; MAX_WHEEL_BYTES + 1];
        assert!(matches!(
            inspect(name, &huge),
            Err(WheelError::TooLarge { .. })
        ));
    }
}
