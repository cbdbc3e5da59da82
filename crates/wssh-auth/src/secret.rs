//! Randomness: token secrets and their hashes, token identifiers, generated passwords.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wssh_domain::TokenIdentifier;

/// Every token secret starts with this, so a leaked one is easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "wssh_";

/// Bytes of randomness in a token secret (256 bits).
pub const TOKEN_RANDOM_BYTES: usize = 32;

/// Fills `buffer` from the operating system's random source.
///
/// A failing OS random source leaves nothing safe to do, so it ends the process rather than
/// risk predictable secrets.
pub fn fill_random(buffer: &mut [u8]) {
    if getrandom::fill(buffer).is_err() {
        tracing::error!("the operating system's random source failed");
        std::process::abort();
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// A fresh token secret: the prefix and 256 random bits in hex.
pub fn generate_token_secret() -> String {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    fill_random(&mut bytes);
    format!("{TOKEN_PREFIX}{}", to_hex(&bytes))
}

/// The stored form of a token secret: hex SHA-256. Token secrets carry 256 random bits, so a
/// fast hash is enough; a slow one would only slow every request down.
pub fn hash_token_secret(secret: &str) -> String {
    to_hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares two hashes in constant time.
pub fn hashes_equal(left: &str, right: &str) -> bool {
    left.as_bytes().ct_eq(right.as_bytes()).into()
}

/// A fresh token identifier: a snowflake-style decimal (milliseconds since 2010-11-04, the
/// epoch go_ws_sh's identifiers use, in 41 bits, then 12 random bits), unique in practice and
/// checked by the store's primary key. It stays below 2^53, so JavaScript clients that read
/// seed 002's numeric `id` get it exactly.
pub fn generate_token_identifier() -> TokenIdentifier {
    const EPOCH_MILLIS: u128 = 1_288_834_974_657;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(EPOCH_MILLIS)
        .saturating_sub(EPOCH_MILLIS) as u64;
    let mut random = [0u8; 2];
    fill_random(&mut random);
    let random = u64::from(u16::from_le_bytes(random)) & 0xfff;
    TokenIdentifier((((millis & 0x1ff_ffff_ffff) << 12) | random).to_string())
}

/// A fresh password for a generated account: 144 random bits, URL-safe base64.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 18];
    fill_random(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        let secret = generate_token_secret();
        assert!(secret.starts_with(TOKEN_PREFIX));
        assert_eq!(secret.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(secret, generate_token_secret());
        let hash = hash_token_secret(&secret);
        assert_eq!(hash.len(), 64);
        assert!(hashes_equal(&hash, &hash_token_secret(&secret)));
        assert!(!hashes_equal(&hash, &hash_token_secret("other")));
        assert_eq!(hash_token_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn identifiers_are_decimal_safe_for_javascript_and_distinct() {
        let identifiers: Vec<_> = (0..64).map(|_| generate_token_identifier()).collect();
        for identifier in &identifiers {
            let value: u64 = identifier.as_str().parse().unwrap();
            assert!(value < 1 << 53, "{value} is not exact as a JavaScript number");
            assert!(value > 1 << 40, "{value} lacks its time part");
        }
        // 12 random bits per millisecond: a clash is rare (and the store retries it).
        let distinct: std::collections::HashSet<_> = identifiers.iter().collect();
        assert!(distinct.len() >= 60, "only {} distinct of 64", distinct.len());
        assert_eq!(generate_password().len(), 24);
    }
}
