//! API tokens: 32 random bytes, shown once as `mpl_` and 64 hex digits;
//! the database keeps only their SHA-256 (a token is random, not a
//! password: a fast hash of it cannot be guessed back).

use sha2::{Digest, Sha256};

const PREFIX: &str = "mpl_";
/// What a share link's secret starts with.
pub const SHARE_PREFIX: &str = "mps_";

#[derive(Debug, thiserror::Error)]
#[error("the system's random numbers are unavailable: {0}")]
pub struct NoRandomness(getrandom::Error);

/// A new token.
pub fn new_token() -> Result<String, NoRandomness> {
    new_secret(PREFIX)
}

/// 32 random bytes in hex after `prefix`.
pub fn new_secret(prefix: &str) -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NoRandomness)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// What the database keeps of a token (or a share link's secret).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Whether `text` looks like one of the lab's tokens (for messages only).
pub fn looks_like_token(text: &str) -> bool {
    let text = text.trim();
    text.len() == PREFIX.len() + 64
        && text.starts_with(PREFIX)
        && text[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert!(!looks_like_token("mpl_short"));
        let hash = token_hash(&a);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&a[PREFIX.len()..]));
        assert_eq!(hash, token_hash(&format!(" {a}\n")));
        assert_ne!(hash, token_hash(&b));
    }
}
