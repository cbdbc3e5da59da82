//! The HTTP transport of wssh, on hyper 1 and hyper-util.
//!
//! It owns everything that knows HTTP: the accept loop ([`serve`]), routing, go_ws_sh's
//! `x-HTTP-method-override` rule, JSON bodies in and out, CORS, the body limit, and the one
//! place where errors become status codes ([`error`]). Each surface decodes its seed's wire
//! shape into a call on `wssh-core`'s [`Services`], where every permission check and grant
//! rule is made, and encodes the result or refusal in its own envelope.

mod access_token;
mod alist;
mod api;
pub mod error;
mod gows;
mod input;
mod limits;
mod login_api;
mod rbac;
mod respond;
mod router;
mod server;
mod shell;
mod surface;
mod web;

use std::collections::HashSet;
use std::sync::Arc;

use wssh_auth::Authenticator;
use wssh_core::{ServiceConfig, Services};

pub use limits::ListenerLimits;
pub use server::serve;
pub use shell::registry::ShellSettings;

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub struct AppState {
    /// Credential resolution, over the store.
    pub auth: Arc<Authenticator>,
    /// The use cases every surface calls.
    pub services: Services,
    /// The serialized session list, for answers that need no blocking thread.
    session_list: gows::SessionListCache,
    /// Timeouts and connection caps of every listener.
    pub listener_limits: ListenerLimits,
    /// Open connections, in total and per address, across every listener.
    connections: Arc<limits::ConnectionGate>,
    /// Live shells: programs that outlive their connections.
    pub(crate) shells: Arc<shell::registry::Registry>,
}

impl AppState {
    /// The state of a server: `auth` over its store, the names of the configured
    /// `initial_sessions`, and whether anyone may register.
    pub fn new(auth: Authenticator, initial_sessions: HashSet<String>, allow_registration: bool) -> Self {
        let auth = Arc::new(auth);
        let services = Services::new(auth.clone(), ServiceConfig { allow_registration, initial_sessions });
        AppState {
            auth,
            services,
            session_list: gows::SessionListCache::default(),
            listener_limits: ListenerLimits::default(),
            connections: Arc::default(),
            shells: Arc::default(),
        }
    }
}

impl AppState {
    /// Sets the listener limits.
    #[must_use]
    pub fn with_listener_limits(mut self, limits: ListenerLimits) -> Self {
        self.listener_limits = limits;
        self
    }

    /// Sets the live-shell settings (history size, detach timeout, limits).
    #[must_use]
    pub fn with_shell_settings(mut self, settings: ShellSettings) -> Self {
        self.shells = Arc::new(shell::registry::Registry::new(settings));
        self
    }
}

/// Shared application state.
pub type SharedState = Arc<AppState>;
