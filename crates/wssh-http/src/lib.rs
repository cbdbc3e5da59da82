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
mod cluster;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gows;
mod input;
mod limits;
mod login_api;
mod metrics;
mod proxy;
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
pub use metrics::{PoolProbe, serve_metrics};
pub use proxy::Deployment;
pub use server::serve;
pub use shell::recording::RecordingSettings;
pub use shell::registry::ShellSettings;
pub use web::prepare_assets;
pub use wssh_record::Policy as RecordingPolicy;
pub use wssh_record::retention::Retention as RecordingRetention;

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
    /// Shell recordings, when on.
    pub(crate) recording: Option<Arc<RecordingSettings>>,
    /// Set once the server is stopping: open shells close with 1001.
    stopping: tokio::sync::watch::Sender<bool>,
    /// How many shell connections (WebSockets) are open.
    shell_connections: tokio::sync::watch::Sender<usize>,
    /// Trusted proxies and the base path.
    pub deployment: Deployment,
    /// The Prometheus metrics.
    pub(crate) metrics: metrics::Metrics,
    /// This node in the cluster's shell registry.
    pub(crate) node: cluster::Node,
}

impl AppState {
    /// The state of a server: `auth` over its store, the names of the configured
    /// `initial_sessions`, and whether anyone may register.
    pub fn new(auth: Authenticator, initial_sessions: HashSet<String>, allow_registration: bool) -> Self {
        let auth = Arc::new(auth);
        let config = ServiceConfig { allow_registration, initial_sessions, recordings_dir: None };
        let services = Services::new(auth.clone(), config);
        AppState {
            auth,
            services,
            session_list: gows::SessionListCache::default(),
            listener_limits: ListenerLimits::default(),
            connections: Arc::default(),
            shells: Arc::default(),
            recording: None,
            stopping: tokio::sync::watch::Sender::new(false),
            shell_connections: tokio::sync::watch::Sender::new(0),
            deployment: Deployment::default(),
            metrics: metrics::Metrics::default(),
            node: cluster::Node::default(),
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

    /// Turns shell recording on with `settings` (its folder is created, mode 0700).
    pub fn with_recording(mut self, settings: RecordingSettings) -> std::io::Result<Self> {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&settings.dir)?;
        let mut config = self.services.config().clone();
        config.recordings_dir = Some(settings.dir.clone());
        self.services = Services::new(self.auth.clone(), config);
        self.recording = Some(Arc::new(settings));
        Ok(self)
    }

    /// Sets how the metrics read the database pool.
    #[must_use]
    pub fn with_pool_probe(self, probe: PoolProbe) -> Self {
        self.metrics.set_pool_probe(probe);
        self
    }

    /// The same state behind `deployment`'s proxies and under its base path.
    #[must_use]
    pub fn with_deployment(mut self, deployment: Deployment) -> Self {
        self.deployment = deployment;
        self
    }

    /// Sets the URL other nodes reach this one at (the `node_url` setting).
    #[must_use]
    pub fn with_node_url(self, url: Option<String>) -> Self {
        if let Some(url) = url {
            self.node.set_url(url.trim_end_matches('/').to_owned());
        }
        self
    }

    /// Starts the cluster heartbeat, which mirrors this node's live shells into the shared
    /// registry; `fallback_url` is where other nodes reach it when no `node_url` was set.
    pub fn start_heartbeat(self: &Arc<Self>, fallback_url: String) {
        self.node.set_url_if_unset(fallback_url);
        tracing::info!(node = %self.node.id, url = ?self.node.url(), "cluster node");
        tokio::spawn(cluster::heartbeat(self.clone()));
    }

    /// Takes this node and its shells out of the shared registry (on a clean stop).
    pub async fn leave_cluster(self: &Arc<Self>) {
        cluster::leave(self.clone()).await;
    }

    /// Tells every open shell that the server is stopping: each ends its program and closes
    /// its WebSocket with 1001 (going away) and a reason.
    pub fn stop_shells(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once no shell connection is open.
    pub async fn shells_closed(&self) {
        let _ = self.shell_connections.subscribe().wait_for(|open| *open == 0).await;
    }

    /// How many shell connections are open.
    pub fn open_shells(&self) -> usize {
        *self.shell_connections.borrow()
    }

    /// A receiver that turns `true` when the server stops.
    pub(crate) fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Counts a shell connection as open until the guard drops.
    pub(crate) fn shell_opened(self: &Arc<Self>) -> ShellGuard {
        self.shell_connections.send_modify(|open| *open += 1);
        ShellGuard(self.clone())
    }
}

/// An open shell connection, counted in [`AppState::open_shells`] while it lives.
pub(crate) struct ShellGuard(Arc<AppState>);

impl Drop for ShellGuard {
    fn drop(&mut self) {
        self.0.shell_connections.send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// Shared application state.
pub type SharedState = Arc<AppState>;
