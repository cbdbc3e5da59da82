//! `wssh serve`: composition of store, auth and transport, seeding, listeners, shutdown.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use wssh_auth::Authenticator;
use wssh_domain::{NewUser, Password, RoleKey, SessionName, SessionSpec, Username};
use wssh_http::AppState;
use wssh_store::{SessionStore, SqliteStore, UserStore};

use crate::ServeArgs;
use crate::config::{ListenerConfig, ServerConfig, default_data_dir};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The name of the database file in the data directory.
const DATABASE_FILE: &str = "wssh.db";
/// Where a generated administrator password is written, readable by the owner only.
const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

pub(crate) async fn run(args: ServeArgs) -> Result<(), BoxError> {
    // First of all: a signal that arrives while the server starts stops it cleanly.
    let mut stop_signals = StopSignals::install()?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting");
    let (state, listeners) = tokio::select! {
        started = start(&args) => started?,
        () = stop_signals.recv() => {
            tracing::info!("stopped while starting");
            return Ok(());
        }
    };
    serve(state, listeners, stop_signals).await
}

/// Everything before serving: the data directory, the store, the first users and sessions,
/// the listeners.
async fn start(args: &ServeArgs) -> Result<(Arc<AppState>, Vec<(TcpListener, Option<TlsAcceptor>)>), BoxError> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    let data_dir = args.data_dir.clone().or_else(|| config.data_dir.clone()).unwrap_or_else(default_data_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&data_dir)
        .map_err(|error| format!("cannot create the data directory {}: {error}", data_dir.display()))?;

    let store = Arc::new(SqliteStore::open(&data_dir.join(DATABASE_FILE))?);
    let throttle = config.limits.login_throttle(config.lockout_max_failures, config.lockout_window_seconds);
    let mut auth = Authenticator::new(store.clone(), throttle)?;
    if let Some(target) = args.audit_log.as_ref().or(config.audit_log.as_ref()) {
        auth = auth.with_audit_stream(crate::audit_log::open(target)?);
    }
    let seeding = {
        let store = store.clone();
        let data_dir = data_dir.clone();
        let credentials = std::mem::take(&mut config.initial_credentials);
        tokio::task::spawn_blocking(move || seed_users(&store, &credentials, &data_dir))
    };
    seeding.await??;
    seed_sessions(&store, &config)?;

    let state = Arc::new(
        AppState::new(
            auth,
            config.initial_sessions.iter().map(|session| session.name.clone()).collect::<HashSet<_>>(),
            config.allow_registration,
        )
        .with_listener_limits(config.limits.listener_limits(crate::hardening::raise_open_files_limit())),
    );

    let listeners = bind_listeners(args, &config).await?;
    Ok((state, listeners))
}

/// Serves on every listener until SIGTERM or SIGINT, then shuts down gracefully.
async fn serve(
    state: Arc<AppState>,
    listeners: Vec<(TcpListener, Option<TlsAcceptor>)>,
    mut stop_signals: StopSignals,
) -> Result<(), BoxError> {
    let (stop, stopped) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for (listener, tls) in listeners {
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%address, scheme, "listening");
        announce(&format!("listening on {scheme}://{address}"));
        let mut stopped = stopped.clone();
        let state = state.clone();
        servers.spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            wssh_http::serve(listener, tls, state, shutdown).await
        });
    }
    if servers.is_empty() {
        return Err("no listener configured".into());
    }

    stop_signals.recv().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    while let Some(result) = servers.join_next().await {
        result??;
    }
    Ok(())
}

/// Prints a line for operators and scripts on standard output.
#[allow(clippy::print_stdout)]
fn announce(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// SIGTERM and SIGINT, listened for from the start: one that arrives while the server is still
/// starting is kept, and ends it cleanly once it serves, instead of killing it mid-way.
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Waits for either signal.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

async fn bind_listeners(
    args: &ServeArgs,
    config: &ServerConfig,
) -> Result<Vec<(TcpListener, Option<TlsAcceptor>)>, BoxError> {
    if let Some(address) = args.listen {
        let tls = match config.servers.iter().find(|server| server.is_tls()) {
            Some(server) => Some(tls_acceptor(server)?),
            None => None,
        };
        return Ok(vec![(bind(address).await?, tls)]);
    }
    if config.servers.is_empty() {
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 28080);
        return Ok(vec![(bind(address).await?, None)]);
    }
    let mut listeners = Vec::new();
    for (index, server) in config.servers.iter().enumerate() {
        let port = server.port(index)?;
        let host: IpAddr = match &server.host {
            Some(host) => host.parse().map_err(|_| format!("server {index}: invalid host {host:?}"))?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let tls = if server.is_tls() { Some(tls_acceptor(server)?) } else { None };
        listeners.push((bind(SocketAddr::new(host, port)).await?, tls));
    }
    Ok(listeners)
}

async fn bind(address: SocketAddr) -> Result<TcpListener, BoxError> {
    TcpListener::bind(address).await.map_err(|error| format!("cannot listen on {address}: {error}").into())
}

fn tls_acceptor(server: &ListenerConfig) -> Result<TlsAcceptor, BoxError> {
    if server.cert.is_empty() || server.key.is_empty() {
        return Err("an https listener needs `cert` and `key`".into());
    }
    let certificates = CertificateDer::pem_file_iter(&server.cert)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("cannot read certificate {}: {error}", server.cert))?;
    let key = PrivateKeyDer::from_pem_file(&server.key)
        .map_err(|error| format!("cannot read private key {}: {error}", server.key))?;
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| format!("invalid certificate or key: {error}"))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls)))
}

/// Creates the configured initial users that are missing, as administrators; with none
/// configured and an empty database, creates `admin` with a generated password. A restart
/// never touches an existing user, so a changed password stays changed.
fn seed_users(
    store: &SqliteStore,
    credentials: &[crate::config::InitialCredential],
    data_dir: &Path,
) -> Result<(), BoxError> {
    let mut wanted: Vec<(String, Option<String>)> = credentials
        .iter()
        .map(|credential| {
            let username =
                if credential.username.is_empty() { "admin".to_owned() } else { credential.username.clone() };
            let password = (!credential.password.is_empty()).then(|| credential.password.clone());
            (username, password)
        })
        .collect();
    if wanted.is_empty() && store.count_users()? == 0 {
        wanted.push(("admin".to_owned(), None));
    }
    for (username, password) in wanted {
        if store.find_user(&username)?.is_some() {
            continue;
        }
        let username = Username::parse(&username).map_err(|error| format!("initial_credentials: {error}"))?;
        let (password, generated) = match password {
            Some(password) => (password, false),
            None => (wssh_auth::secret::generate_password(), true),
        };
        let password = Password::parse(&password).map_err(|error| format!("initial_credentials: {error}"))?;
        let password_hash = wssh_auth::password::hash_password(&password)?;
        let created = store.create_user(&NewUser::new(username.clone(), password_hash, RoleKey::Admin))?;
        // alist's /api/auth/login/hash checks the password's digest against its own hash.
        let alist_hash = wssh_auth::password::hash_alist_digest(&password)?;
        store.set_alist_password_hash(created.id, &created.password_hash, &alist_hash)?;
        if generated {
            let file = data_dir.join(INITIAL_PASSWORD_FILE);
            let mut out = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&file)?;
            writeln!(out, "username: {username}\npassword: {}", password.expose())?;
            announce(&format!(
                "created administrator {username} with password {} (also written to {}, mode 0600); change it after signing in",
                password.expose(),
                file.display()
            ));
        }
        tracing::info!(%username, "created initial administrator");
    }
    Ok(())
}

/// Creates the configured initial sessions that are missing.
fn seed_sessions(store: &SqliteStore, config: &ServerConfig) -> Result<(), BoxError> {
    for session in &config.initial_sessions {
        let name = SessionName::parse(&session.name).map_err(|error| format!("initial_sessions: {error}"))?;
        if store.find_session(name.as_str())?.is_some() {
            continue;
        }
        let spec =
            SessionSpec::new(name, session.cmd.clone(), session.args.clone().unwrap_or_default(), session.dir.clone())
                .map_err(|error| format!("initial_sessions: {error}"))?;
        store.create_session(&spec)?;
        tracing::info!(name = %spec.name, "created initial session");
    }
    Ok(())
}
