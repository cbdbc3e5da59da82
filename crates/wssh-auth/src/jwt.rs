//! Short-lived access tokens as HS256 JWTs, for the login API (seed 004).
//!
//! The JWT format comes from `jsonwebtoken`; its HMAC comes from the workspace's own `hmac` and
//! `sha2` (one RustCrypto generation, no C library), plugged in as a `jsonwebtoken`
//! `CryptoProvider` that offers HS256 only. The signing key is 256 random bits generated on the
//! first start and kept in the database, so every server sharing it verifies every token.

use std::sync::Once;

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use wssh_domain::{LoginId, Timestamp, UserId};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id, in decimal (JWT subjects are strings).
    pub sub: String,
    /// The user's name, for clients' convenience.
    pub name: String,
    /// The login the token belongs to; checked on every use, so logout ends the token.
    pub sid: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

impl AccessClaims {
    /// The user the token speaks for.
    pub fn user_id(&self) -> Option<UserId> {
        self.sub.parse().ok().map(UserId)
    }

    /// The login the token belongs to.
    pub fn login_id(&self) -> LoginId {
        LoginId(self.sid.clone())
    }
}

struct HmacSigner(Vec<u8>);
struct HmacVerifier(Vec<u8>);

fn mac(key: &[u8], message: &[u8]) -> Result<Hmac<Sha256>, signature::Error> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| signature::Error::new())?;
    mac.update(message);
    Ok(mac)
}

impl signature::Signer<Vec<u8>> for HmacSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(mac(&self.0, message)?.finalize().into_bytes().to_vec())
    }
}

impl JwtSigner for HmacSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl signature::Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        // `verify_slice` compares in constant time.
        mac(&self.0, message)?.verify_slice(signature).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn signer_factory(algorithm: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(HmacSigner(key.as_bytes().to_vec()))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn verifier_factory(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(HmacVerifier(key.try_get_as_bytes()?.to_vec()))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

static HS256_ONLY: CryptoProvider =
    CryptoProvider { signer_factory, verifier_factory, key_utils: KeyUtils::new_unimplemented() };

fn install_provider() {
    static INSTALL: Once = Once::new();
    // If the embedding program installed a provider of its own, that one serves HS256 too.
    INSTALL.call_once(|| {
        let _ = HS256_ONLY.install_default();
    });
}

/// Issues and verifies access tokens with one key.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Self {
        install_provider();
        JwtKeys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    /// A signed token for `claims`.
    pub fn issue(&self, claims: &AccessClaims) -> Option<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).ok()
    }

    /// The claims of a token whose signature and expiry are good (no leeway), HS256 only.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation).ok().map(|data| data.claims)
    }
}

/// Claims for `user` in `login`, valid for `lifetime_seconds` from now.
pub fn claims_for(user_id: UserId, name: &str, login: &LoginId, lifetime_seconds: i64) -> AccessClaims {
    let now = Timestamp::now();
    AccessClaims {
        sub: user_id.0.to_string(),
        name: name.to_owned(),
        sid: login.0.clone(),
        iat: now.0,
        exp: now.plus_seconds(lifetime_seconds).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_verifies() {
        let keys = JwtKeys::new(&[7; 32]);
        let claims = claims_for(UserId(3), "alice", &LoginId("l".into()), 60);
        let token = keys.issue(&claims).unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(keys.verify(&token), Some(claims.clone()));
        // Another key, a tampered token, an expired token, an unsigned token: refused.
        assert_eq!(JwtKeys::new(&[8; 32]).verify(&token), None);
        let mut tampered = token.clone();
        tampered.insert(token.len() - 3, 'A');
        assert_eq!(keys.verify(&tampered), None);
        let expired = keys.issue(&AccessClaims { exp: 1, ..claims }).unwrap();
        assert_eq!(keys.verify(&expired), None);
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let body = token.split('.').nth(1).unwrap();
        assert_eq!(keys.verify(&format!("{header}.{body}.")), None);
    }

    #[test]
    fn signs_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2: HMAC-SHA-256 with key "Jefe".
        let signer = HmacSigner(b"Jefe".to_vec());
        let signature = signature::Signer::try_sign(&signer, b"what do ya want for nothing?").unwrap();
        let hex: String = signature.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
