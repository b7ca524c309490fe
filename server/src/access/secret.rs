//! A secret the lab shares with one other program (the single-sign-on
//! proxy, a metrics scraper), read from a file. Only its SHA-256 is kept,
//! compared in constant time; it is never printed.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest secret the lab takes (`openssl rand -hex 32` gives 64).
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Clone)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a secret is refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the secret is {0} characters long: use at least {MIN_SECRET_LEN} \
         (`openssl rand -hex 32`)"
    )]
    TooShort(usize),
    #[error(
        "the secret must be printable ASCII without spaces, quotes or backslashes, so \
         that it fits in a header (`openssl rand -hex 32`)"
    )]
    Unprintable,
    #[error("cannot read the secret in {}: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    InFile {
        path: std::path::PathBuf,
        source: Box<SecretError>,
    },
}

impl Secret {
    /// A secret as text (surrounding white space is not part of it).
    pub fn new(secret: &str) -> Result<Self, SecretError> {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort(secret.len()));
        }
        if secret
            .bytes()
            .any(|b| !(b.is_ascii_graphic() && b != b'"' && b != b'\\'))
        {
            return Err(SecretError::Unprintable);
        }
        Ok(Secret(Sha256::digest(secret.as_bytes()).into()))
    }

    /// The secret in a file (one line).
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(&text).map_err(|why| SecretError::InFile {
            path: path.to_path_buf(),
            source: Box::new(why),
        })
    }

    /// Whether `presented` is the secret (constant time in its content).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        bool::from(self.0.ct_eq(&presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn secrets_are_long_header_safe_and_never_printed() {
        assert!(Secret::new("short").is_err());
        assert!(Secret::new(&format!("{SECRET} x")).is_err());
        let secret = Secret::new(&format!("  {SECRET}\n")).expect("trimmed");
        assert!(secret.matches(SECRET.as_bytes()));
        assert!(!secret.matches(format!("{SECRET} ").as_bytes()));
        assert!(!secret.matches(b""));
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }
}
