//! Password hashing with argon2id, OWASP's parameters (m = 19 MiB, t = 2, p = 1), PHC strings.

use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use wssh_domain::Password;

use crate::AuthError;

/// Memory cost in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Iterations.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    // The parameters are constants that argon2 accepts; a failure here is a programming error
    // caught by the tests below.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string with a fresh random salt.
pub fn hash_password(password: &Password) -> Result<String, AuthError> {
    hasher().hash_password(password.expose().as_bytes()).map(|hash| hash.to_string()).map_err(|_| AuthError::Hashing)
}

/// Whether `password` matches the PHC string `phc`. A malformed `phc` never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    hasher().verify_password(password.as_bytes(), phc).is_ok()
}

/// A hash of a password nobody knows, verified against when the user does not exist so that
/// an unknown user costs the same time as a wrong password.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    let decoy = Password::parse(&crate::secret::generate_password()).unwrap_or_else(|_| unreachable_decoy());
    hash_password(&decoy).unwrap_or_default()
});

fn unreachable_decoy() -> Password {
    // generate_password always yields a valid password; this keeps the closure total.
    Password::parse("decoy").unwrap_or_else(|_| std::process::abort())
}

/// Spends the time of one verification and returns false.
pub fn verify_decoy(password: &str) -> bool {
    let _ = verify_password(password, &DECOY_HASH);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_verifies() {
        let password = Password::parse("correct horse").unwrap();
        let phc = hash_password(&password).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(phc, hash_password(&password).unwrap(), "salts must differ");
        assert!(!verify_decoy("anything"));
    }
}
