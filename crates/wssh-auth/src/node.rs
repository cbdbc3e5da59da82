//! Node-to-node authentication: a node that carries a client to the node that owns its shell
//! signs the request with the cluster's node key (shared through the store, never sent). The
//! signature covers the time, the client's address and the request's path and query, and is
//! good for [`NODE_SIGNATURE_LIFETIME`] seconds. It vouches only for where the client is; the
//! client's own credential travels with it and is checked by the owning node as always.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long a node signature is good for, in seconds (either way, for clock skew).
pub const NODE_SIGNATURE_LIFETIME: i64 = 30;

/// The cluster's node key.
#[derive(Clone)]
pub struct NodeKey(Vec<u8>);

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(…)")
    }
}

fn message(at: i64, client: &str, target: &str) -> Vec<u8> {
    format!("wssh-node-v1\n{at}\n{client}\n{target}").into_bytes()
}

impl NodeKey {
    /// The key from its stored bytes.
    pub fn new(key: Vec<u8>) -> Self {
        NodeKey(key)
    }

    fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(message);
        mac
    }

    /// The signature (`TIME.MAC`) for carrying the client at `client` to `target` (a path
    /// and query) at `at` (seconds since the Unix epoch).
    pub fn sign(&self, at: i64, client: &str, target: &str) -> String {
        let mac = self.mac(&message(at, client, target)).finalize().into_bytes();
        format!("{at}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Whether `signature` was made with this key for `client` and `target`, within
    /// [`NODE_SIGNATURE_LIFETIME`] of `now`. The comparison takes constant time.
    pub fn verify(&self, signature: &str, now: i64, client: &str, target: &str) -> bool {
        let Some((at, mac)) = signature.split_once('.') else { return false };
        let Ok(at) = at.parse::<i64>() else { return false };
        if (now - at).abs() > NODE_SIGNATURE_LIFETIME {
            return false;
        }
        let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else { return false };
        self.mac(&message(at, client, target)).verify_slice(&mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_its_key_client_target_and_time() {
        let key = NodeKey::new(vec![7; 32]);
        let signature = key.sign(1000, "10.0.0.1", "/bash?shell=x");
        assert!(key.verify(&signature, 1010, "10.0.0.1", "/bash?shell=x"));
        assert!(!key.verify(&signature, 1031, "10.0.0.1", "/bash?shell=x"));
        assert!(!key.verify(&signature, 1010, "10.0.0.2", "/bash?shell=x"));
        assert!(!key.verify(&signature, 1010, "10.0.0.1", "/bash?shell=y"));
        assert!(!NodeKey::new(vec![8; 32]).verify(&signature, 1010, "10.0.0.1", "/bash?shell=x"));
        assert!(!key.verify("garbage", 1010, "10.0.0.1", "/bash?shell=x"));
    }
}
