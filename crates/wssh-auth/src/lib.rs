//! The auth core of wssh.
//!
//! * [`password`]: argon2id hashing and verification (OWASP parameters, PHC strings).
//! * [`secret`]: random token secrets, their hashes, token identifiers, generated passwords.
//! * [`credentials`]: what a client presents ([`Credentials`]) and how the forms it can take
//!   (go_ws_sh's `authorization` object, `Basic`, `Bearer` with base64 JSON or an opaque token)
//!   are read.
//! * [`throttle`]: the login throttle.
//! * [`hash_queue`]: the bounded, fair queue in front of password hashing.
//! * [`throttle`]: the failed-login lockout.
//! * [`audit`]: the audit log's writer (store and JSON-lines stream).
//! * [`totp`]: TOTP two-factor codes and the QR code a user scans to enrol.
//! * [`ssh_key`]: SSH public keys, validated, with `ssh-keygen -l` fingerprints.
//! * [`jwt`]: short-lived access JWTs for the login API, signed with a key kept in the store.
//! * [`Authenticator`]: resolution of credentials into one [`Principal`] with its permissions,
//!   or a precise refusal ([`AuthError`]); logins; TOTP enrolment; bounded password hashing.
//!   Account and token administration (who may create, change, mint what) is `wssh-core`'s.
//!
//! Nothing here knows HTTP: the transport hands in strings and maps [`AuthError`] to statuses.

pub mod audit;
pub mod credentials;
mod error;
pub mod hash_queue;
pub mod jwt;
pub mod node;
pub mod password;
mod principal;
mod resolver;
pub mod secret;
pub mod ssh_key;
pub mod throttle;
pub mod totp;

pub use credentials::Credentials;
pub use error::AuthError;
pub use principal::{AuthMethod, Principal};
pub use resolver::{AuthStats, Authenticator, LoginTokens, Origin};
