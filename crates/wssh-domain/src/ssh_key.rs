//! SSH public keys a user has registered (alist's `/api/me/sshkey/*`).

use crate::{Timestamp, UserId};

/// A stored SSH public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    /// Database id.
    pub id: i64,
    /// The owner.
    pub user_id: UserId,
    /// A title chosen by the owner.
    pub title: String,
    /// The key in OpenSSH one-line form (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
    /// Its SHA-256 fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fingerprint: String,
    /// When it was added.
    pub added_at: Timestamp,
    /// When it was last used to authenticate, if ever.
    pub last_used_at: Option<Timestamp>,
}

/// What it takes to store a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSshKey {
    /// The owner.
    pub user_id: UserId,
    /// A title chosen by the owner.
    pub title: String,
    /// The key in OpenSSH one-line form.
    pub public_key: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
}
