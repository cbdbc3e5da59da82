//! `wssh serve`: configuration checked in full, then listeners bound, then the data directory,
//! store, first users and sessions, then serving until SIGTERM/SIGINT.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use wssh_auth::Authenticator;
use wssh_domain::{NewUser, Password, RoleKey, SessionName, SessionSpec, Username};
use wssh_http::AppState;
use wssh_store::Store;

use crate::ServeArgs;
use crate::config::{ServerConfig, default_data_dir};
use crate::database::Database;
use crate::listen::ListenAddress;
use crate::tls::ReloadableCertificate;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a generated administrator password is written, readable by the owner only.
const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
/// The port of the listener used when nothing says otherwise (on 127.0.0.1).
const DEFAULT_PORT: u16 = 28080;
/// How long open shells get to close their WebSockets when the server stops.
const SHELLS_CLOSING_LIMIT: Duration = Duration::from_secs(5);

/// Everything `wssh serve` will do, checked before anything is written.
#[derive(Debug)]
struct Plan {
    data_dir: PathBuf,
    /// The SQLite file in the data directory, or a PostgreSQL database.
    database: Database,
    listeners: Vec<PlannedListener>,
    /// Administrators created when missing: a password, or `None` for a generated one.
    users: Vec<(Username, Option<Password>)>,
    /// Sessions created when missing (from the configuration).
    sessions: Vec<SessionSpec>,
    /// Those of them whose configuration says `record` (true or false), which a start applies
    /// to the stored template.
    record_stated: HashSet<String>,
    /// The one-liner's session, created or brought up to date on every start.
    command_session: Option<SessionSpec>,
    /// Whether a first start creates a session for the login shell.
    login_shell_on_first_start: bool,
    lockout_max_failures: usize,
    lockout_window: Duration,
    /// Listener limits, the login throttle's further limits, the hashing queue.
    limits: crate::hardening::LimitsConfig,
    /// Live shells: history size, detach timeout, limits.
    shell_settings: wssh_http::ShellSettings,
    allow_registration: bool,
    initial_session_names: HashSet<String>,
    deployment: wssh_http::Deployment,
    /// Where `/metrics` is served, if anywhere.
    metrics: Option<Vec<SocketAddr>>,
    /// Where the audit log is also streamed (`--audit-log`, `audit_log`), if anywhere.
    audit_log: Option<PathBuf>,
    /// Where other nodes reach this one (`node_url`), if set.
    node_url: Option<String>,
    /// Shell recording: every shell or only marked templates', input or not, and how.
    recording: RecordingPlan,
}

/// Shell recording from the configuration (templates marked `record` are recorded whatever it
/// says).
#[derive(Debug, Clone, Copy)]
struct RecordingPlan {
    /// `record_all_shells`.
    all_shells: bool,
    /// `record_input`.
    input: bool,
    /// `recording_gzip`.
    gzip: bool,
    /// `recording_policy`.
    policy: wssh_http::RecordingPolicy,
    /// `recording_max_age_seconds`, `recording_max_total_bytes`.
    retention: wssh_http::RecordingRetention,
}

#[derive(Debug)]
struct PlannedListener {
    addresses: Vec<SocketAddr>,
    tls: Option<Arc<ReloadableCertificate>>,
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), BoxError> {
    // First of all: a signal that arrives while the server starts stops it cleanly.
    let mut signals = Signals::install()?;
    let config = ServerConfig::load(args.config.as_deref(), std::env::vars())?;
    let plan = plan(&args, config).await?;
    if args.check {
        announce(&describe(&plan));
        return Ok(());
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting");
    let (state, listeners, metrics_listeners) = tokio::select! {
        started = start(&plan) => started?,
        () = signals.stop() => {
            tracing::info!("stopped while starting");
            return Ok(());
        }
    };
    let certificates: Vec<_> = plan.listeners.iter().filter_map(|listener| listener.tls.clone()).collect();
    let shared_database = !matches!(plan.database, Database::Sqlite(_));
    serve(state, listeners, metrics_listeners, certificates, signals, shared_database).await
}

/// What `--check` prints.
fn describe(plan: &Plan) -> String {
    let listeners: Vec<String> = plan
        .listeners
        .iter()
        .flat_map(|listener| {
            let scheme = if listener.tls.is_some() { "https" } else { "http" };
            listener.addresses.iter().map(move |address| format!("{scheme}://{address}"))
        })
        .collect();
    format!(
        "configuration OK: data directory {}, database {}, listeners {}",
        plan.data_dir.display(),
        plan.database,
        listeners.join(" ")
    )
}

/// Reads and checks every value: listeners (addresses resolved, certificates read), users,
/// sessions, numbers. Writes nothing.
async fn plan(args: &ServeArgs, config: ServerConfig) -> Result<Plan, BoxError> {
    let data_dir = args.data_dir.clone().or_else(|| config.data_dir.clone()).unwrap_or_else(default_data_dir);
    let database = Database::choose(args.database.as_deref().or(config.database.as_deref()), &data_dir)?;
    if let Some(url) = &config.node_url
        && !(url.starts_with("http://") && url.len() > "http://".len() && !url["http://".len()..].contains(['?', '#']))
    {
        return Err("node_url: must be an http:// URL other nodes reach this one at (http://HOST:PORT)".into());
    }

    let mut users = Vec::new();
    for credential in &config.initial_credentials {
        let username = if credential.username.is_empty() { "admin" } else { credential.username.as_str() };
        let username = Username::parse(username).map_err(|error| format!("initial_credentials: {error}"))?;
        let password = (!credential.password.is_empty())
            .then(|| Password::parse(&credential.password))
            .transpose()
            .map_err(|error| format!("initial_credentials: {error}"))?;
        users.push((username, password));
    }
    if let Some(credential) = &args.credential {
        let (username, password) =
            credential.split_once(':').ok_or("--credential: expected USER:PASSWORD (a colon between them)")?;
        let username = Username::parse(username).map_err(|error| format!("--credential: {error}"))?;
        let password = Password::parse(password).map_err(|error| format!("--credential: {error}"))?;
        users.retain(|(existing, _)| existing != &username);
        users.push((username, Some(password)));
    }

    let mut sessions = Vec::new();
    for session in &config.initial_sessions {
        let name = SessionName::parse(&session.name).map_err(|error| format!("initial_sessions: {error}"))?;
        let spec =
            SessionSpec::new(name, session.cmd.clone(), session.args.clone().unwrap_or_default(), session.dir.clone())
                .and_then(|spec| spec.with_run_as(session.run_as.clone()))
                .and_then(|spec| spec.with_detach_timeout(session.detach_timeout_seconds))
                .map(|spec| spec.with_record(session.record.unwrap_or(false)))
                .map_err(|error| format!("initial_sessions: {error}"))?;
        if let Some(run_as) = &spec.run_as {
            check_run_as(spec.name.as_str(), run_as)?;
        }
        sessions.push(spec);
    }
    let command_session = match args.command.split_first() {
        Some((program, arguments)) => Some(command_session(program, arguments)?),
        None => None,
    };

    let lockout_max_failures = config.lockout_max_failures.unwrap_or(10);
    if lockout_max_failures == 0 {
        return Err("lockout_max_failures must be at least 1".into());
    }
    let lockout_window_seconds = config.lockout_window_seconds.unwrap_or(15 * 60);
    if lockout_window_seconds == 0 {
        return Err("lockout_window_seconds must be at least 1".into());
    }

    let mut trusted_proxies = Vec::new();
    for proxy in config.trusted_proxies.iter().flat_map(crate::config::List::items).chain(args.trusted_proxies.clone())
    {
        let net = match proxy.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => ipnet::IpNet::from(
                proxy
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| format!("trusted_proxies: {proxy:?} is not an address or CIDR range"))?,
            ),
        };
        trusted_proxies.push(net);
    }
    let base_path = crate::config::base_path(args.base_path.as_deref().or(config.base_path.as_deref()).unwrap_or(""))
        .map_err(|error| format!("base_path: {error}"))?;

    let metrics = match args.metrics_listen.as_deref().or(config.metrics_listen.as_deref()) {
        Some(text) => {
            let address = ListenAddress::parse(text).map_err(|error| format!("metrics_listen: {error}"))?;
            Some(address.resolve().await.map_err(|error| format!("metrics_listen: {error}"))?)
        }
        None => None,
    };
    let listeners = plan_listeners(args, &config).await?;
    Ok(Plan {
        metrics,
        deployment: wssh_http::Deployment { trusted_proxies, base_path },
        data_dir,
        database,
        listeners,
        users,
        login_shell_on_first_start: args.config.is_none() && sessions.is_empty() && command_session.is_none(),
        initial_session_names: sessions.iter().map(|spec| spec.name.as_str().to_owned()).collect(),
        record_stated: config
            .initial_sessions
            .iter()
            .filter(|session| session.record.is_some())
            .map(|session| session.name.clone())
            .collect(),
        sessions,
        command_session,
        lockout_max_failures,
        lockout_window: Duration::from_secs(lockout_window_seconds),
        allow_registration: config.allow_registration,
        audit_log: args.audit_log.clone().or(config.audit_log.clone()),
        node_url: config.node_url.clone(),
        recording: recording_plan(&config)?,
        shell_settings: config.shell_settings(),
        limits: config.limits,
    })
}

/// The one-liner's session: named after the program, run in the current directory.
/// Refuses an `initial_sessions` entry whose `run_as` account does not exist, or that could
/// not be switched to because the server does not run as root.
fn check_run_as(session: &str, run_as: &str) -> Result<(), BoxError> {
    let account = wssh_pty::OsAccount::lookup(run_as)
        .map_err(|error| format!("initial_sessions: session {session:?}: run_as: {error}"))?;
    let euid = nix::unistd::geteuid();
    if !euid.is_root() && euid.as_raw() != account.uid {
        return Err(format!(
            "initial_sessions: session {session:?}: run_as {run_as:?} needs the server to run as root"
        )
        .into());
    }
    Ok(())
}

fn command_session(program: &str, arguments: &[String]) -> Result<SessionSpec, BoxError> {
    let base = Path::new(program).file_name().and_then(|name| name.to_str()).unwrap_or(program);
    let name = SessionName::parse(base).map_err(|error| format!("cannot name a session after {program:?}: {error}"))?;
    let dir = std::env::current_dir().map(|dir| dir.display().to_string()).unwrap_or_default();
    SessionSpec::new(name, program.to_owned(), arguments.to_vec(), dir)
        .map_err(|error| format!("{program}: {error}").into())
}

/// The server user's login shell as a session named after it (`bash` for `/bin/bash`): from
/// the password database, else `$SHELL`, else `/bin/sh`; a shell that refuses logins
/// (`nologin`, `false`) gives `/bin/sh`.
fn login_shell_session() -> Option<SessionSpec> {
    let from_passwd = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.shell)
        .filter(|shell| !shell.as_os_str().is_empty());
    let shell = from_passwd
        .or_else(|| std::env::var_os("SHELL").filter(|shell| !shell.is_empty()).map(PathBuf::from))
        .filter(|shell| {
            let name = shell.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            !matches!(name, "nologin" | "false" | "")
        })
        .unwrap_or_else(|| PathBuf::from("/bin/sh"));
    let program = shell.to_str()?.to_owned();
    let name = SessionName::parse(shell.file_name()?.to_str()?).ok()?;
    SessionSpec::new(name, program, Vec::new(), String::new()).ok()
}

async fn plan_listeners(args: &ServeArgs, config: &ServerConfig) -> Result<Vec<PlannedListener>, BoxError> {
    let cert_of = |server: &crate::config::ListenerConfig| -> Result<Arc<ReloadableCertificate>, BoxError> {
        if server.cert.is_empty() || server.key.is_empty() {
            return Err("an https listener needs `cert` and `key`".into());
        }
        Ok(Arc::new(ReloadableCertificate::load(PathBuf::from(&server.cert), PathBuf::from(&server.key))?))
    };
    let flag = match (&args.listen, args.port) {
        (Some(_), Some(_)) => return Err("give either --listen or --port, not both".into()),
        (Some(listen), None) => Some(ListenAddress::parse(listen)?),
        (None, Some(port)) => Some(ListenAddress::parse(&port.to_string())?),
        (None, None) => None,
    };
    // Every configured listener is checked, even when the command line replaces them.
    let mut configured = Vec::new();
    for (index, server) in config.servers.iter().enumerate() {
        let port = server.port(index)?;
        let address = match &server.host {
            Some(host) => ListenAddress::from_host(host, port).map_err(|error| format!("server {index}: {error}"))?,
            None => ListenAddress::parse(&format!(":{port}"))?,
        };
        let tls = if server.is_tls() {
            Some(cert_of(server).map_err(|error| format!("server {index}: {error}"))?)
        } else {
            None
        };
        configured.push((index, address, tls));
    }
    let mut listeners = Vec::new();
    if let Some(address) = flag {
        // The configured TLS certificate, if any, serves the listener given on the command line.
        let tls = configured.into_iter().find_map(|(_, _, tls)| tls);
        listeners.push(PlannedListener { addresses: address.resolve().await?, tls });
        return Ok(listeners);
    }
    if configured.is_empty() {
        let address = ListenAddress::parse(&DEFAULT_PORT.to_string())?;
        listeners.push(PlannedListener { addresses: address.resolve().await?, tls: None });
        return Ok(listeners);
    }
    for (index, address, tls) in configured {
        let addresses = address.resolve().await.map_err(|error| format!("server {index}: {error}"))?;
        listeners.push(PlannedListener { addresses, tls });
    }
    Ok(listeners)
}

type Bound = Vec<(TcpListener, Option<TlsAcceptor>)>;

/// Binds the listeners, then writes: the data directory, the store, the first users and
/// sessions.
async fn start(plan: &Plan) -> Result<(Arc<AppState>, Bound, Vec<TcpListener>), BoxError> {
    // The page's assets are compressed once, in the background (under a second).
    drop(tokio::task::spawn_blocking(wssh_http::prepare_assets));
    let mut metrics_listeners = Vec::new();
    for address in plan.metrics.iter().flatten() {
        match TcpListener::bind(address).await {
            Ok(bound) => metrics_listeners.push(bound),
            Err(error) => return Err(format!("cannot listen on {address} for metrics: {error}").into()),
        }
    }
    let mut listeners = Vec::new();
    for listener in &plan.listeners {
        let acceptor = listener.tls.as_ref().map(ReloadableCertificate::acceptor);
        let mut bound_any = false;
        let mut last_error = None;
        for address in &listener.addresses {
            match TcpListener::bind(address).await {
                Ok(bound) => {
                    listeners.push((bound, acceptor.clone()));
                    bound_any = true;
                }
                Err(error) => last_error = Some(format!("cannot listen on {address}: {error}")),
            }
        }
        // A host name may resolve to an address family this machine lacks: one is enough.
        if !bound_any {
            return Err(last_error.unwrap_or_else(|| "no address to listen on".into()).into());
        }
    }

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&plan.data_dir)
        .map_err(|error| format!("cannot create the data directory {}: {error}", plan.data_dir.display()))?;

    crate::hardening::lock_data_dir(&plan.data_dir)?;
    if let Database::Sqlite(path) = &plan.database {
        crate::hardening::protect_database(path)?;
    }
    let throttle = plan.limits.login_throttle(Some(plan.lockout_max_failures), Some(plan.lockout_window.as_secs()));
    // Everything that reaches the store runs on a blocking thread: the store blocks, and the
    // PostgreSQL client must never run on an async worker.
    let (store, pool_probe, auth) = {
        let database = plan.database.clone();
        tokio::task::spawn_blocking(move || -> Result<_, BoxError> {
            let (store, pool_probe) = database.open()?;
            tracing::info!(%database, "database open");
            let auth = Authenticator::new(store.clone(), throttle)?;
            Ok((store, pool_probe, auth))
        })
        .await??
    };
    let mut auth = plan.limits.configure_auth(auth);
    if let Some(target) = &plan.audit_log {
        auth = auth.with_audit_stream(crate::audit_log::open(target)?);
    }
    {
        let store = store.clone();
        let data_dir = plan.data_dir.clone();
        let users = plan.users.clone();
        let policy = auth.password_policy();
        let configured = plan.sessions.clone();
        let record_stated = plan.record_stated.clone();
        let command = plan.command_session.clone();
        let login_shell_on_first_start = plan.login_shell_on_first_start;
        tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
            let first_start = seed_users(&*store, users, &data_dir, policy)?;
            let login_shell = first_start && login_shell_on_first_start;
            seed_sessions(&*store, &SessionSeeds { configured, record_stated, command, login_shell })
        })
        .await??;
    }

    let mut state = AppState::new(auth, plan.initial_session_names.clone(), plan.allow_registration)
        .with_listener_limits(plan.limits.listener_limits(crate::hardening::raise_open_files_limit()))
        .with_shell_settings(plan.shell_settings)
        .with_deployment(plan.deployment.clone())
        .with_pool_probe(pool_probe)
        .with_node_url(plan.node_url.clone());
    let RecordingPlan { all_shells, input, gzip, policy, retention } = plan.recording;
    let dir = plan.data_dir.join("recordings");
    let settings = wssh_http::RecordingSettings::new(dir, all_shells, input, policy, retention).with_gzip(gzip);
    state = state.with_recording(settings)?;
    let state = Arc::new(state);
    Ok((state, listeners, metrics_listeners))
}

/// Serves on every listener until SIGTERM or SIGINT, then shuts down gracefully; SIGHUP
/// re-reads the TLS certificates and reopens the audit log file.
async fn serve(
    state: Arc<AppState>,
    listeners: Bound,
    metrics_listeners: Vec<TcpListener>,
    certificates: Vec<Arc<ReloadableCertificate>>,
    mut signals: Signals,
    shared_database: bool,
) -> Result<(), BoxError> {
    if listeners.is_empty() {
        return Err("no listener configured".into());
    }
    let (stop, stopped) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for listener in metrics_listeners {
        let address = listener.local_addr()?;
        tracing::info!(%address, "serving metrics");
        announce(&format!("metrics on http://{address}/metrics"));
        let mut stopped = stopped.clone();
        let state = state.clone();
        servers.spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            wssh_http::serve_metrics(listener, state, shutdown).await
        });
    }
    let mut first_url = None;
    for (listener, tls) in listeners {
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        first_url.get_or_insert_with(|| format!("{scheme}://{address}"));
        tracing::info!(%address, scheme, "listening");
        if tls.is_none() && !address.ip().is_loopback() {
            tracing::warn!(
                %address,
                "SHELLS SERVED OVER PLAIN HTTP on a non-loopback address: passwords, tokens and every keystroke \
                 cross the network unencrypted. Use an https listener, a TLS-terminating proxy, or listen on 127.0.0.1"
            );
        }
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

    // The shell registry is for nodes sharing one PostgreSQL; an embedded SQLite database
    // has one server (its data directory is locked), whose shells are all in memory.
    if let Some(url) = first_url
        && shared_database
    {
        state.start_heartbeat(url);
    }
    // Under systemd (Type=notify): ready now. Elsewhere this does nothing.
    if let Err(error) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::debug!(%error, "cannot notify the service manager");
    }
    while signals.next().await == Received::Hangup {
        reload(&certificates);
    }
    tracing::info!("shutting down");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    // Shells first: each closes its WebSocket with 1001 while the listeners stop accepting.
    state.stop_shells();
    let _ = stop.send(true);
    while let Some(result) = servers.join_next().await {
        result??;
    }
    if tokio::time::timeout(SHELLS_CLOSING_LIMIT, state.shells_closed()).await.is_err() {
        tracing::warn!(open = state.open_shells(), "shells still open at exit");
    }
    state.leave_cluster().await;
    Ok(())
}

/// SIGHUP: every listener's certificate and key read again, and the audit log file reopened.
/// Open connections keep the pair they started with; new handshakes get the new one. A pair
/// (or a file) that fails to load is reported and the old one stays.
fn reload(certificates: &[Arc<ReloadableCertificate>]) {
    match crate::audit_log::reopen() {
        Ok(Some(path)) => tracing::info!(path = %path.display(), "SIGHUP: audit log reopened"),
        Ok(None) => {}
        Err(error) => tracing::error!(error, "SIGHUP: audit log not reopened, the previous file stays in use"),
    }
    if certificates.is_empty() {
        tracing::info!("SIGHUP: no TLS certificate to reload");
    }
    for certificate in certificates {
        match certificate.reload() {
            Ok(()) => tracing::info!(cert = %certificate.cert_path().display(), "SIGHUP: certificate reloaded"),
            Err(error) => tracing::error!(error, "SIGHUP: certificate not reloaded, the previous one stays in use"),
        }
    }
}

/// Prints a line for operators and scripts on standard output.
#[allow(clippy::print_stdout)]
pub(crate) fn announce(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// SIGTERM, SIGINT and SIGHUP, listened for from the start: a stop signal that arrives while
/// the server is still starting is kept, and ends it cleanly once it serves, instead of killing
/// it mid-way; a SIGHUP then no longer ends the process.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

/// A signal that [`Signals::next`] saw.
#[derive(Debug, PartialEq, Eq)]
enum Received {
    Stop,
    Hangup,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM, SIGINT or SIGHUP.
    async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.terminate.recv() => Received::Stop,
            _ = self.interrupt.recv() => Received::Stop,
            _ = self.hangup.recv() => Received::Hangup,
        }
    }

    /// Waits for SIGTERM or SIGINT.
    async fn stop(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// Creates the planned administrators that are missing; with none planned and an empty
/// database, creates `admin` with a generated password. A restart never touches an existing
/// user, so a changed password stays changed. Returns whether this was the first start (no
/// user before).
fn seed_users(
    store: &dyn Store,
    mut wanted: Vec<(Username, Option<Password>)>,
    data_dir: &Path,
    policy: wssh_auth::password::PasswordPolicy,
) -> Result<bool, BoxError> {
    let first_start = store.count_users()? == 0;
    if wanted.is_empty() && first_start {
        wanted.push((Username::parse("admin")?, None));
    }
    for (username, password) in wanted {
        if let Some(existing) = store.find_user(username.as_str())? {
            if let Some(password) = &password
                && !wssh_auth::password::verify_password(password.expose(), &existing.password_hash)
            {
                tracing::warn!(%username, "the user exists with another password; its password is left as it is");
            }
            continue;
        }
        let (password, generated) = match password {
            Some(password) => (password, false),
            None => (Password::parse(&wssh_auth::secret::generate_password())?, true),
        };
        if let Err(weak) = policy.check(username.as_str(), &password) {
            // Configured by the operator (go_ws_sh's sample configs use short ones): kept, flagged.
            tracing::warn!(%username, "initial_credentials: {weak}; change it after signing in");
        }
        let password_hash = wssh_auth::password::hash_password(&password)?;
        let created = store.create_user(&NewUser::new(username.clone(), password_hash, RoleKey::Admin))?;
        // alist's /api/auth/login/hash checks the password's digest against its own hash.
        let alist_hash = wssh_auth::password::hash_alist_digest(&password)?;
        store.set_alist_password_hash(created.id, &created.password_hash, &alist_hash)?;
        if generated {
            let file = data_dir.join(INITIAL_PASSWORD_FILE);
            let mut out = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&file)?;
            crate::hardening::narrow_to_owner(&file)?;
            writeln!(out, "username: {username}\npassword: {}", password.expose())?;
            announce(&format!(
                "created administrator {username} with password {} (also written to {}, mode 0600); change it after signing in",
                password.expose(),
                file.display()
            ));
        }
        tracing::info!(%username, "created initial administrator");
    }
    Ok(first_start)
}

/// The sessions a start creates or brings up to date.
struct SessionSeeds {
    /// From the configuration, created when missing.
    configured: Vec<SessionSpec>,
    /// The configured sessions whose `record` is stated, applied to existing templates.
    record_stated: HashSet<String>,
    /// The one-liner's session.
    command: Option<SessionSpec>,
    /// Whether to create the login shell's session (a first start without configuration).
    login_shell: bool,
}

/// Creates the configured sessions that are missing, brings the one-liner's session up to
/// date, and on a first start without configuration creates the login shell's session.
fn seed_sessions(store: &dyn Store, seeds: &SessionSeeds) -> Result<(), BoxError> {
    let login_shell = seeds.login_shell.then(login_shell_session).flatten();
    for spec in seeds.configured.iter().chain(&login_shell) {
        if let Some(existing) = store.find_session(spec.name.as_str())? {
            // A configured `run_as` always applies, so that demoting a shell in the
            // configuration takes effect on the next start; so do a stated `record`, both
            // ways, and a configured detach timeout.
            let mut wanted = existing.spec.clone();
            if spec.run_as.is_some() {
                wanted.run_as = spec.run_as.clone();
            }
            if seeds.record_stated.contains(spec.name.as_str()) {
                wanted.record = spec.record;
            }
            if spec.detach_timeout_seconds.is_some() {
                wanted.detach_timeout_seconds = spec.detach_timeout_seconds;
            }
            if wanted != existing.spec {
                store.update_session(&wanted)?;
                tracing::info!(name = %spec.name, run_as = wanted.run_as, record = wanted.record, "initial session brought up to its configuration");
            }
            continue;
        }
        store.create_session(spec)?;
        tracing::info!(name = %spec.name, cmd = spec.cmd, "created initial session");
    }
    if let Some(spec) = &seeds.command {
        match store.find_session(spec.name.as_str())? {
            None => {
                store.create_session(spec)?;
            }
            // The stored `record` stays (the one-liner has no say in it).
            Some(existing) if existing.spec != SessionSpec { record: existing.spec.record, ..spec.clone() } => {
                store.update_session(&SessionSpec { record: existing.spec.record, ..spec.clone() })?;
            }
            Some(_) => {}
        }
        tracing::info!(name = %spec.name, cmd = spec.cmd, "serving the command as a session");
    }
    Ok(())
}

/// Shell recording from the configuration.
fn recording_plan(config: &ServerConfig) -> Result<RecordingPlan, BoxError> {
    let policy = match config.recording_policy.as_deref() {
        None | Some("drop") => wssh_http::RecordingPolicy::Drop,
        Some("block") => wssh_http::RecordingPolicy::Block,
        Some(other) => return Err(format!("recording_policy: expected \"drop\" or \"block\", got {other:?}").into()),
    };
    let retention = wssh_http::RecordingRetention {
        max_age: config.recording_max_age_seconds.map(Duration::from_secs),
        max_total_bytes: config.recording_max_total_bytes,
    };
    Ok(RecordingPlan {
        all_shells: config.record_all_shells,
        input: config.record_input,
        gzip: config.recording_gzip,
        policy,
        retention,
    })
}
