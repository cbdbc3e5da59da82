//! Storage for wssh: one trait per aggregate, and their SQLite implementation.
//!
//! The traits ([`UserStore`], [`RoleStore`], [`TokenStore`], [`SessionStore`], [`LoginStore`],
//! [`SshKeyStore`], together [`Store`]) speak only
//! domain types, and their error ([`StoreError`]) names no driver type, so a PostgreSQL backend
//! can sit beside [`SqliteStore`] without the layers above noticing. The methods are blocking:
//! callers on an async runtime run them on a blocking thread (the transport does this at one
//! seam). Changes that span rows run in one transaction. The store counts its committed
//! changes, so hot reads can be kept in a [`StoreCache`] that never serves a value older than
//! the last change.

mod audit;
mod cache;
mod error;
mod migrations;
mod recording;
mod sqlite;
mod throttle;
mod traits;

pub use audit::{AuditPage, AuditStore};
pub use cache::{ChangeCounter, StoreCache};
pub use error::{Conflict, StoreError};
pub use migrations::{MIGRATIONS, Migration, MigrationStatus};
pub use recording::{RecordingEnd, RecordingStore};
pub use sqlite::SqliteStore;
pub use throttle::{FailureTimes, ThrottleStore};
pub use traits::{
    LoginStore, PasswordChange, RoleStore, Rotation, SessionStore, SshKeyStore, Store, TokenStore, UserChange,
    UserStore,
};
