//! Password hashing with argon2id, OWASP's parameters (m = 19 MiB, t = 2, p = 1), PHC strings;
//! and alist's password digest (`/api/auth/login/hash`), itself kept only as an argon2id hash.

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

/// What alist appends to a password before hashing it with SHA-256 for `/api/auth/login/hash`.
pub const ALIST_DIGEST_SUFFIX: &str = "-https://github.com/alist-org/alist";

/// alist's digest of a password: lowercase hex of `sha256(password + "-https://github.com/alist-org/alist")`.
pub fn alist_digest(password: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest =
        Sha256::new().chain_update(password.as_bytes()).chain_update(ALIST_DIGEST_SUFFIX.as_bytes()).finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `text` has the shape of an alist digest: 64 hexadecimal digits, either case.
pub fn is_alist_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The argon2id PHC string of `password`'s alist digest: what `/api/auth/login/hash` checks a
/// presented digest against. Only this hash is stored, never the digest, which is as good as
/// the password on that route.
pub fn hash_alist_digest(password: &Password) -> Result<String, AuthError> {
    let digest = Password::parse(&alist_digest(password.expose())).map_err(|_| AuthError::Hashing)?;
    hash_password(&digest)
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

    #[test]
    fn alist_digests() {
        // sha256("admin-https://github.com/alist-org/alist"), as alist's web client computes it.
        let digest = alist_digest("admin");
        assert!(is_alist_digest(&digest));
        assert_eq!(digest, "6fcb57cd10b2c11d765dcf16148d99130afd895082af83725ee8bb181b1d2b0f");
        let phc = hash_alist_digest(&Password::parse("admin").unwrap()).unwrap();
        assert!(verify_password(&digest, &phc));
        assert!(!verify_password("admin", &phc));
        assert!(!is_alist_digest("admin"));
    }
}

/// The rules a new password must meet (NIST SP 800-63B §5.1.1.2). Existing passwords are not
/// checked again: they keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// The fewest characters (default 8).
    pub min_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_chars: 8 }
    }
}

/// Below this many guesses in zxcvbn's model a password counts as commonly used: its lists of
/// common passwords (and small variations on them, like a digit appended), words and keyboard
/// patterns.
const COMMON_BELOW_GUESSES: u64 = 10_000;

impl PasswordPolicy {
    /// The longest password accepted, in bytes ([`Password::MAX_BYTES`], well over 64 characters).
    pub const MAX_BYTES: usize = Password::MAX_BYTES;

    /// Checks a new password for `username`: long enough, not the user name, not common.
    /// [`AuthError::WeakPassword`] says which rule it breaks.
    pub fn check(&self, username: &str, password: &Password) -> Result<(), AuthError> {
        let refuse = |reason: String| Err(AuthError::WeakPassword(reason));
        let text = password.expose();
        if text.chars().count() < self.min_chars {
            return refuse(format!("must be at least {} characters", self.min_chars));
        }
        if text.len() > Self::MAX_BYTES {
            return refuse("is too long".into());
        }
        if text.trim().eq_ignore_ascii_case(username.trim()) {
            return refuse("must not be the user name".into());
        }
        // zxcvbn's cost grows with length; past 100 characters nothing is common any more.
        let sample: String = text.chars().take(100).collect();
        if zxcvbn::zxcvbn(&sample, &[username]).guesses() < COMMON_BELOW_GUESSES {
            return refuse("is too common; choose a less guessable one".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    fn check(username: &str, password: &str) -> Result<(), String> {
        PasswordPolicy::default()
            .check(username, &Password::parse(password).unwrap())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn new_passwords_are_long_enough_not_the_name_and_not_common() {
        assert!(check("alice", "short1!").unwrap_err().contains("at least 8"));
        assert!(check("alexander", "Alexander").unwrap_err().contains("user name"));
        for common in ["password", "password1", "12345678", "qwertyuiop", "iloveyou1", "trustno1"] {
            assert!(check("alice", common).unwrap_err().contains("common"), "{common}");
        }
        assert!(check("alice", "alice-pw-1").is_ok());
        assert!(check("alice", "correct horse battery").is_ok());
        assert!(check("alice", &"x7-".repeat(30)).is_ok(), "90 characters are fine");
        assert!(check("alice", &"k9#".repeat(340)).is_ok(), "1,020 bytes are fine");
        assert!(Password::parse(&"é".repeat(600)).is_err(), "over 1,024 bytes is refused");
        let strict = PasswordPolicy { min_chars: 12 };
        assert!(strict.check("alice", &Password::parse("alice-pw-1").unwrap()).is_err());
    }
}
