//! SSH public keys as users paste them (`ssh-ed25519 AAAA… comment`), parsed and validated
//! with the RustCrypto `ssh-key` crate, and fingerprinted exactly as `ssh-keygen -l` prints
//! them (`SHA256:` and unpadded base64 of the SHA-256 of the key blob).

use ssh_key::{HashAlg, PublicKey};

/// A validated public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSshKey {
    /// The key in OpenSSH one-line form, comment included, normalised.
    pub openssh: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    /// The algorithm name (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …).
    pub algorithm: String,
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SSH public key: {0}")]
pub struct MalformedSshKey(String);

/// The longest key line accepted (an RSA 16384-bit key is about 2.8 KB).
const MAX_KEY_BYTES: usize = 16 * 1024;

/// Parses one OpenSSH public key line. Options before the key type (as in
/// `authorized_keys`) are not accepted.
pub fn parse_public_key(text: &str) -> Result<ParsedSshKey, MalformedSshKey> {
    let text = text.trim();
    if text.is_empty() {
        return Err(MalformedSshKey("empty".into()));
    }
    if text.len() > MAX_KEY_BYTES || text.lines().count() != 1 {
        return Err(MalformedSshKey("expected a single line".into()));
    }
    let key = PublicKey::from_openssh(text).map_err(|error| MalformedSshKey(error.to_string()))?;
    if let ssh_key::public::KeyData::Other(_) = key.key_data() {
        return Err(MalformedSshKey("unsupported key type".into()));
    }
    let openssh = key.to_openssh().map_err(|error| MalformedSshKey(error.to_string()))?;
    Ok(ParsedSshKey {
        openssh,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        algorithm: key.algorithm().as_str().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `ssh-keygen -t ed25519 -C test`; `ssh-keygen -l -f` prints
    // 256 SHA256:… test (ED25519). The test suite checks against ssh-keygen itself.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMh5Vq0f1CsnHQ1vPL1Aqjgri5UJpvlb1Yi7n7nVGhn5 test";

    #[test]
    fn parses_and_fingerprints() {
        let key = parse_public_key(ED25519).unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert!(key.fingerprint.starts_with("SHA256:"));
        assert_eq!(key.fingerprint.len(), "SHA256:".len() + 43);
        assert_eq!(key.openssh, ED25519);
    }

    #[test]
    fn refuses_malformed_keys() {
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key("ssh-ed25519").is_err());
        assert!(parse_public_key("ssh-ed25519 AAAA!!!!").is_err());
        // A valid blob under the wrong type name.
        let mismatched = ED25519.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(parse_public_key(&mismatched).is_err());
        // Truncated base64.
        assert!(parse_public_key(&ED25519[..60]).is_err());
        assert!(parse_public_key(&format!("{ED25519}\n{ED25519}")).is_err());
    }
}
