//! The HTTP transport of wssh, on hyper 1 and hyper-util.
//!
//! It owns everything that knows HTTP: the accept loop ([`serve`]), routing, go_ws_sh's
//! `x-HTTP-method-override` rule, JSON bodies in and out, CORS, the body limit, and the one
//! place where errors become status codes ([`error`]). Business rules stay below: permissions
//! in `wssh-auth`, validation in `wssh-domain`, transactions in `wssh-store`.

mod access_token;
mod alist;
pub mod error;
mod gows;
mod input;
mod login_api;
mod proxy;
mod rbac;
mod respond;
mod router;
mod server;
mod shell;
mod web;

use std::collections::HashSet;
use std::sync::Arc;

use wssh_auth::Authenticator;

pub use proxy::Deployment;
pub use server::serve;

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub struct AppState {
    /// Credential resolution, over the store.
    pub auth: Authenticator,
    /// Names of the sessions from the config's `initial_sessions`, which MOVE refuses.
    pub initial_sessions: HashSet<String>,
    /// Whether `POST /user` is open to anyone (self-registration); otherwise it needs
    /// `users:write`.
    pub allow_registration: bool,
    /// The serialized session list, for answers that need no blocking thread.
    session_list: gows::SessionListCache,
    /// Set once the server is stopping: open shells close with 1001.
    stopping: tokio::sync::watch::Sender<bool>,
    /// How many shell connections are open.
    shells: tokio::sync::watch::Sender<usize>,
    /// Trusted proxies and the base path.
    pub deployment: Deployment,
}

impl AppState {
    /// The state of a server: `auth` over its store, the names of the configured
    /// `initial_sessions`, and whether anyone may register.
    pub fn new(auth: Authenticator, initial_sessions: HashSet<String>, allow_registration: bool) -> Self {
        AppState {
            auth,
            initial_sessions,
            allow_registration,
            session_list: gows::SessionListCache::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            shells: tokio::sync::watch::Sender::new(0),
            deployment: Deployment::default(),
        }
    }

    /// The same state behind `deployment`'s proxies and under its base path.
    #[must_use]
    pub fn with_deployment(mut self, deployment: Deployment) -> Self {
        self.deployment = deployment;
        self
    }

    /// Tells every open shell that the server is stopping: each ends its program and closes
    /// its WebSocket with 1001 (going away) and a reason.
    pub fn stop_shells(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once no shell connection is open.
    pub async fn shells_closed(&self) {
        let _ = self.shells.subscribe().wait_for(|open| *open == 0).await;
    }

    /// How many shell connections are open.
    pub fn open_shells(&self) -> usize {
        *self.shells.borrow()
    }

    /// A receiver that turns `true` when the server stops.
    pub(crate) fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Counts a shell connection as open until the guard drops.
    pub(crate) fn shell_opened(self: &Arc<Self>) -> ShellGuard {
        self.shells.send_modify(|open| *open += 1);
        ShellGuard(self.clone())
    }
}

/// An open shell connection, counted in [`AppState::open_shells`] while it lives.
pub(crate) struct ShellGuard(Arc<AppState>);

impl Drop for ShellGuard {
    fn drop(&mut self) {
        self.0.shells.send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// Shared application state.
pub type SharedState = Arc<AppState>;
