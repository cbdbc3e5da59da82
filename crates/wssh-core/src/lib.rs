//! The services of wssh: the layer between the transport (`wssh-http`) and the auth core and
//! stores below it.
//!
//! One method of [`Services`] per use case — users, roles and their bindings, tokens, session
//! templates, logins, two-factor and SSH-key enrolment — each taking the authenticated
//! [`Principal`] and a typed command, and returning a typed result or a [`CoreError`] that says
//! why not (a missing permission, a grant beyond the granter's own, a missing thing, a conflict
//! of a named kind, an invalid field). Every permission check and grant rule is made here, once
//! ([`policy`]); the surfaces above only translate wire shapes. Nothing here knows HTTP.
//!
//! The methods block (argon2, storage): call them from a blocking thread.

mod account;
pub mod audit;
pub mod cluster;
mod error;
pub mod limits;
pub mod policy;
pub mod recordings;
mod roles;
mod sessions;
pub mod shells;
mod tokens;
mod users;

use std::collections::HashSet;
use std::sync::Arc;

use wssh_auth::Authenticator;
pub use wssh_auth::Principal;
use wssh_store::Store;
pub use wssh_store::{Conflict, StoreCache};

pub use error::{CoreError, Entity};
pub use roles::RoleChanges;
pub use sessions::SessionChanges;
pub use tokens::{AppTokenPage, MintedToken, TokenChanges, TokenFilter};
pub use users::{NewAccount, ProfileChanges, UserChanges, UserRef, rank};

/// Settings of the services that are policy, not transport.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// Whether anyone may register an account (it gets the `guest` role).
    pub allow_registration: bool,
    /// The sessions from the configuration's `initial_sessions`, which cannot be moved.
    pub initial_sessions: HashSet<String>,
    /// The folder of shell recordings, when recording is on.
    pub recordings_dir: Option<std::path::PathBuf>,
}

/// The use cases, over one authenticator and its store.
#[derive(Debug)]
pub struct Services {
    auth: Arc<Authenticator>,
    config: ServiceConfig,
}

impl Services {
    /// The services over `auth` (and the store behind it).
    pub fn new(auth: Arc<Authenticator>, config: ServiceConfig) -> Self {
        Services { auth, config }
    }

    /// The authenticator: credential resolution, for the transport to turn what a request
    /// carries into a [`Principal`].
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// The policy settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The store's change counter: a cache filled at one generation is good while it stays.
    pub fn generation(&self) -> u64 {
        self.store().generation()
    }

    fn store(&self) -> &dyn Store {
        self.auth.store()
    }
}
