//! Storage for wssh: one trait per aggregate, free of any database driver. The SQLite
//! implementation is the `wssh-store-sqlite` crate; a PostgreSQL one would be its sibling.
//!
//! The traits ([`UserStore`], [`RoleStore`], [`TokenStore`], [`SessionStore`], [`LoginStore`],
//! [`SshKeyStore`], [`ThrottleStore`], together [`Store`]) speak only domain types, and their
//! error ([`StoreError`], conflicts as the typed [`Conflict`]) names no driver type, so the
//! layers above never notice which backend runs. The methods are blocking:
//! callers on an async runtime run them on a blocking thread (the transport does this at one
//! seam). Changes that span rows run in one transaction. The store counts its committed
//! changes, so hot reads can be kept in a [`StoreCache`] that never serves a value older than
//! the last change.

mod audit;
mod cache;
pub mod dump;
mod error;
mod recording;
pub mod rules;
mod shells;
pub mod story;
mod throttle;
mod traits;

pub use audit::{AuditPage, AuditStore};
pub use cache::{ChangeCounter, StoreCache};
pub use error::{Conflict, StoreError};
pub use recording::{RecordingEnd, RecordingStore};
pub use shells::{Heartbeat, ShellClientRecord, ShellRecord, ShellRegistryStore};
pub use throttle::{FailureTimes, ThrottleStore};
pub use traits::{
    LoginStore, PasswordChange, RoleStore, Rotation, SessionStore, SshKeyStore, Store, TokenStore, Transactional,
    UnitOfWork, UserChange, UserStore,
};
