//! `wssh connect`: a terminal client for the shell endpoint. It dials `ws://` or `wss://`,
//! authenticates with an `Authorization` header, speaks the native framing (`wssh.v1`), puts
//! the local terminal in raw mode for the session, and exits with the remote program's status.
//!
//! Exit status: the remote program's exit code when the server reports one; 1 when connecting
//! or authenticating fails (one line on stderr says why); 128 + N when signal N ended the
//! session; 255 when the connection ended without an exit code.

mod credentials;
mod target;
mod terminal;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use self::credentials::PromptError;
use self::target::{Login, Plan};
use self::terminal::{Signals, TermiosGuard, WindowChanges};

/// The subprotocol of the native framing.
const NATIVE_SUBPROTOCOL: &str = "wssh.v1";
/// Native frame types (the first byte of every binary frame).
const FRAME_DATA: u8 = 0;
const FRAME_RESIZE: u8 = 1;
const FRAME_EXIT: u8 = 2;
const FRAME_ERROR: u8 = 3;
const FRAME_SHELL: u8 = 4;
const FRAME_GAP: u8 = 5;
const FRAME_RESTORE: u8 = 6;
/// How long to keep trying to get back to a live shell after the connection dropped.
const RECONNECT_FOR: Duration = Duration::from_secs(10 * 60);
/// The longest pause between two tries.
const RECONNECT_PAUSE_MAX: Duration = Duration::from_secs(5);
/// How long dialing, TLS and the WebSocket handshake may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the close handshake may take once the session is over.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Input bytes gathered into one frame at most (when they arrive faster than they are sent).
const INPUT_BATCH: usize = 64 * 1024;
/// Ctrl-D, sent when standard input is not a terminal and reaches its end.
const END_OF_TRANSMISSION: u8 = 0x04;
/// How often Ctrl-D is sent again after standard input ended.
const EOF_REPEAT: Duration = Duration::from_millis(500);
/// Ctrl-C: ends watching (observers), and stops reconnecting while the connection is down.
const INTERRUPT_KEY: u8 = 0x03;
/// How often the client pings the server; a connection silent for [`SILENCE_LIMIT`] (a link
/// that died without a reset: a laptop lid, a NAT timeout) is taken for dropped.
const PING_EVERY: Duration = Duration::from_secs(10);
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// With `--attach` and piped input: once the input has ended, output is shown until it has
/// been quiet this long, then the client detaches (the shell goes on).
const QUIET_BEFORE_DETACH: Duration = Duration::from_secs(1);
/// …or this long after the input ended at most (a shell others use may never go quiet).
const DETACH_WAIT_MAX: Duration = Duration::from_secs(10);

/// How `wssh connect` and `wssh shells` log in and trust the server.
#[derive(clap::Args)]
pub(crate) struct LoginArgs {
    /// Log in as this user; the password comes from the --password-env variable, else the
    /// config file, else a prompt on the terminal.
    #[arg(long, short = 'u', value_name = "NAME")]
    pub(crate) user: Option<String>,
    /// The environment variable holding the password.
    #[arg(long, value_name = "VAR", default_value = "WSSH_PASSWORD")]
    pub(crate) password_env: String,
    /// Log in with this access token instead of a password.
    #[arg(long, value_name = "SECRET")]
    pub(crate) token: Option<String>,
    /// The token's identifier (for go_ws_sh tokens, which need one).
    #[arg(long, value_name = "ID")]
    pub(crate) identifier: Option<String>,
    /// go_ws_sh's client-config.json: server, session and credentials; flags override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Trust the certificates in this PEM file (https) instead of the system's roots: for a
    /// server with a self-signed certificate or a private CA.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Accept any server certificate (https). Only for testing.
    #[arg(long)]
    pub(crate) insecure: bool,
}

impl std::fmt::Debug for LoginArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginArgs")
            .field("user", &self.user)
            .field("password_env", &self.password_env)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("identifier", &self.identifier)
            .field("config", &self.config)
            .field("ca", &self.ca)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Options of `wssh connect`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConnectArgs {
    /// The shell to open: http://HOST:PORT/SESSION (https:// for TLS). May be left out when
    /// --config names the server and the session. With --attach, http://HOST:PORT is enough.
    pub(crate) url: Option<String>,
    #[command(flatten)]
    pub(crate) login: LoginArgs,
    /// Attach to this live shell (its id, from `wssh shells`) instead of starting a new one.
    /// (An id may begin with `-`: it is taken as the value all the same.)
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub(crate) attach: Option<String>,
    /// With --attach: watch only. Nothing typed is sent; Ctrl-C ends watching.
    #[arg(long, requires = "attach")]
    pub(crate) observe: bool,
}

/// Options of `wssh shells`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShellsArgs {
    /// The server: http://HOST:PORT (https:// for TLS). May be left out when --config names
    /// the server.
    pub(crate) url: Option<String>,
    #[command(flatten)]
    pub(crate) login: LoginArgs,
}

impl From<ShellsArgs> for ConnectArgs {
    fn from(ShellsArgs { url, login }: ShellsArgs) -> ConnectArgs {
        ConnectArgs { url, login, attach: None, observe: false }
    }
}

/// Why the session could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// Bad arguments or configuration, missing credentials.
    #[error("{0}")]
    Usage(String),
    /// Setting up or performing TLS failed.
    #[error("{0}")]
    Tls(String),
    /// The TCP connection failed.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// `host:port` as dialed.
        address: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The server answered the upgrade with an HTTP error.
    #[error("server refused: {status}{}", message.as_ref().map(|message| format!(" ({message})")).unwrap_or_default())]
    Refused {
        /// `401 Unauthorized` and the like.
        status: String,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The WebSocket handshake failed otherwise.
    #[error("WebSocket handshake with {uri} failed: {reason}")]
    Handshake {
        /// The URI.
        uri: String,
        /// What went wrong.
        reason: String,
    },
    /// Everything took too long.
    #[error("timed out connecting to {0}")]
    Timeout(String),
    /// A local failure (terminal, standard output).
    #[error("{0}")]
    Local(String),
}

impl ConnectError {
    /// A 404 from the server.
    fn is_not_found(&self) -> bool {
        matches!(self, ConnectError::Refused { status, .. } if status.starts_with("404"))
    }
}

/// What ended the session other than the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// SIGINT, SIGTERM or SIGHUP.
    Signal(i32),
    /// Ctrl-C or Ctrl-D at the password prompt.
    PromptCancelled,
}

/// How `wssh connect` ends.
#[derive(Debug)]
enum Outcome {
    /// The remote program exited with this code.
    Exited(i32),
    /// A signal or the user ended it.
    Interrupted(Interrupted),
    /// The server reported an error and closed without an exit code.
    ServerError(String),
    /// The connection ended without an exit code; the close reason, if any.
    Dropped(Option<String>),
    /// The client left a live shell that goes on: a signal (Ctrl-C, SIGTERM…) or, with
    /// `--attach`, the end of piped input (`signal` is then `None`).
    Detached { shell: String, signal: Option<i32>, observe: bool },
    /// It never started.
    Failed(ConnectError),
}

/// Runs `wssh connect`; returns the process exit status. The terminal is back in its original
/// modes before this returns and before anything is printed to stderr.
pub(crate) async fn run(args: ConnectArgs) -> ExitCode {
    let outcome = connect_and_run(&args).await;
    match outcome {
        Outcome::Exited(code) => ExitCode::from(u8::try_from(code.rem_euclid(256)).unwrap_or(u8::MAX)),
        Outcome::Interrupted(Interrupted::Signal(signal)) => {
            eprintln!("wssh: session ended by signal {signal}");
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX))
        }
        Outcome::Detached { shell, signal, observe } => {
            let left = if observe { "stopped watching" } else { "detached from" };
            let why = signal.map(|signal| format!(" (signal {signal})")).unwrap_or_default();
            eprintln!("wssh: {left} shell {shell}{why}; it goes on until it ends or its detach timeout passes");
            if !observe {
                eprintln!("wssh: to come back: wssh connect {} --attach {shell}", come_back_to(&args));
            }
            signal.map_or(ExitCode::SUCCESS, |signal| ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX)))
        }
        Outcome::Interrupted(Interrupted::PromptCancelled) => {
            eprintln!("wssh: cancelled");
            ExitCode::from(130)
        }
        Outcome::ServerError(text) => {
            eprintln!("wssh: server error: {}", one_line(&text));
            ExitCode::from(1)
        }
        Outcome::Dropped(reason) => {
            match reason.filter(|reason| !reason.is_empty()) {
                Some(reason) => eprintln!("wssh: connection closed without an exit status ({})", one_line(&reason)),
                None => eprintln!("wssh: connection closed without an exit status"),
            }
            ExitCode::from(255)
        }
        Outcome::Failed(error) => {
            eprintln!("wssh: {}", one_line(&error.to_string()));
            ExitCode::from(1)
        }
    }
}

/// `text` on one line, control characters replaced.
fn one_line(text: &str) -> String {
    text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

async fn connect_and_run(args: &ConnectArgs) -> Outcome {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(error) => return Outcome::Failed(ConnectError::Local(format!("cannot install signal handlers: {error}"))),
    };
    // Attaching needs only the server: the shell's own session is looked up below.
    let planned = match &args.attach {
        Some(_) => target::plan_server(args, |name| std::env::var(name).ok()),
        None => target::plan(args, |name| std::env::var(name).ok()),
    };
    let mut plan = match planned {
        Ok(plan) => plan,
        Err(error) => return Outcome::Failed(error),
    };
    if plan.target.tls {
        // Refuse a missing CA before asking for a password.
        if let Err(error) = tls::client_config(&plan.trust) {
            return Outcome::Failed(error);
        }
    }
    let authorization = match authorization(&plan, &mut signals).await {
        Ok(authorization) => authorization,
        Err(outcome) => return outcome,
    };
    // Attaching with only the server's address: the shell's session is looked up.
    if let Some(id) = &args.attach
        && !target::has_session(&plan.target.path)
    {
        let session = tokio::select! {
            session = shell_session(&plan, &authorization, id) => session,
            signal = signals.next() => return Outcome::Interrupted(Interrupted::Signal(signal)),
        };
        match session {
            Ok(Some(session)) => plan.target.path = target::with_session(&plan.target.path, &session),
            Ok(None) => {
                return Outcome::Failed(ConnectError::Usage(format!(
                    "no live shell {id} that you may attach to (`wssh shells` lists them)"
                )));
            }
            Err(Outcome::Failed(error)) => {
                return Outcome::Failed(ConnectError::Usage(format!(
                    "cannot look up the shell's session ({error}): give it in the URL, http://HOST:PORT/SESSION"
                )));
            }
            Err(outcome) => return outcome,
        }
    }
    let mut resume = Resume { shell: args.attach.clone(), offset: 0, observe: args.observe };
    let mut looked_up = false;
    let socket = loop {
        let query = resume.query();
        let connected = tokio::select! {
            connected = tokio::time::timeout(CONNECT_TIMEOUT, dial(&plan, &authorization, &query)) => connected,
            signal = signals.next() => return Outcome::Interrupted(Interrupted::Signal(signal)),
        };
        match connected {
            Ok(Ok(socket)) => break socket,
            // The URL named another session than the shell's: look it up, and try that once.
            Ok(Err(error @ ConnectError::Refused { .. })) if error.is_not_found() && !looked_up => {
                looked_up = true;
                let Some(id) = &args.attach else { return Outcome::Failed(error) };
                match shell_session(&plan, &authorization, id).await {
                    Ok(Some(session)) if target::with_session(&plan.target.path, &session) != plan.target.path => {
                        plan.target.path = target::with_session(&plan.target.path, &session);
                    }
                    _ => return Outcome::Failed(error),
                }
            }
            Ok(Err(error)) => return Outcome::Failed(error),
            Err(_) => return Outcome::Failed(ConnectError::Timeout(plan.target.uri())),
        }
    };

    // Raw for observers too: the output is drawn as the program wrote it, and nothing typed
    // is echoed into it (an observer's Ctrl-C ends watching: see `shell`).
    let raw = match TermiosGuard::raw_stdin() {
        Ok(raw) => raw,
        Err(error) => {
            return Outcome::Failed(ConnectError::Local(format!("cannot put the terminal in raw mode: {error}")));
        }
    };
    let interactive = raw.is_some();
    // Input outlives connections: what is typed while reconnecting goes out once back.
    let (outgoing, mut queued) = mpsc::channel::<Message>(16);
    let attaching = args.attach.is_some();
    // Observers too: their keys are read for Ctrl-C, and nothing they type is sent (`shell`).
    let input = tokio::spawn(forward_input(outgoing, interactive, attaching));
    let rules = Rules { detach_when_input_ends: attaching && !interactive && !resume.observe, interactive };
    let mut held = Held { interactive, ..Held::default() };
    let mut socket = socket;
    let outcome = loop {
        match shell(socket, &mut signals, &mut queued, &mut held, &mut resume, rules).await {
            Session::Over(outcome) => break outcome,
            Session::Dropped(reason) => {
                let Some(id) = resume.shell.clone() else { break Outcome::Dropped(reason) };
                let stop = if resume.observe { "Ctrl-C stops watching" } else { "Ctrl-C stops trying" };
                eprint!("\r\nwssh: connection lost; reconnecting… ({stop}; the shell goes on)\r\n");
                match reconnect(&plan, &authorization, &resume, &mut signals, &mut queued, &mut held).await {
                    Ok(again) => {
                        eprint!("wssh: reconnected\r\n");
                        socket = again;
                    }
                    Err(Outcome::Interrupted(Interrupted::Signal(signal))) => {
                        break Outcome::Detached { shell: id, signal: Some(signal), observe: resume.observe };
                    }
                    Err(outcome) => break outcome,
                }
            }
        }
    };
    input.abort();
    // Back to the saved modes before the caller prints anything.
    drop(raw);
    outcome
}

/// The `Authorization` header's value for the plan's login (asking for the password on the
/// terminal when it is not given).
async fn authorization(plan: &Plan, signals: &mut Signals) -> Result<String, Outcome> {
    Ok(match &plan.login {
        Login::Token { token, identifier } => credentials::bearer(token, identifier.as_deref()),
        Login::Password { username, password: Some(password) } => credentials::basic(username, password),
        Login::Password { username, password: None } => match credentials::prompt_password(username, signals).await {
            Ok(password) => credentials::basic(username, &password),
            Err(PromptError::Interrupted(interrupted)) => return Err(Outcome::Interrupted(interrupted)),
            Err(PromptError::Failed(error)) => return Err(Outcome::Failed(error)),
        },
    })
}

/// `wssh shells`: the live shells the caller may see, one line each. Exit status 0, or 1
/// when listing fails (one line on stderr says why).
pub(crate) async fn list_shells(args: ShellsArgs) -> ExitCode {
    match shells_table(&ConnectArgs::from(args)).await {
        Ok(table) => {
            let mut stdout = tokio::io::stdout();
            let _ = stdout.write_all(table.as_bytes()).await;
            let _ = stdout.flush().await;
            ExitCode::SUCCESS
        }
        Err(Outcome::Interrupted(_)) => ExitCode::from(130),
        Err(Outcome::Failed(error)) => {
            eprintln!("wssh: {}", one_line(&error.to_string()));
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// Fetches `GET /api/shells` and lays it out.
async fn shells_table(args: &ConnectArgs) -> Result<String, Outcome> {
    let mut signals = Signals::install()
        .map_err(|error| Outcome::Failed(ConnectError::Local(format!("signal handlers: {error}"))))?;
    let plan = target::plan_server(args, |name| std::env::var(name).ok()).map_err(Outcome::Failed)?;
    let authorization = authorization(&plan, &mut signals).await?;
    let listing = tokio::select! {
        listing = fetch_shells(&plan, &authorization) => listing?,
        signal = signals.next() => return Err(Outcome::Interrupted(Interrupted::Signal(signal))),
    };
    Ok(format_shells(&listing))
}

/// The session of the live shell `id`, if the caller may see it.
async fn shell_session(plan: &Plan, authorization: &str, id: &str) -> Result<Option<String>, Outcome> {
    let listing = fetch_shells(plan, authorization).await?;
    Ok(listing["shells"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|shell| shell["id"] == id)
        .and_then(|shell| shell["session"].as_str())
        .map(str::to_owned))
}

/// `GET /api/shells`: the live shells the caller may see, as the server lists them. The URL's
/// path may be the server's base path, a session under it, or a session: each prefix is tried,
/// longest first, while the answer is 404.
async fn fetch_shells(plan: &Plan, authorization: &str) -> Result<serde_json::Value, Outcome> {
    let mut bases = Vec::new();
    let mut base = plan.target.path.split('?').next().unwrap_or_default().trim_end_matches('/');
    loop {
        bases.push(base.to_owned());
        match base.rsplit_once('/') {
            Some((prefix, _)) => base = prefix,
            None => break,
        }
    }
    bases.dedup();
    let mut last = None;
    for base in &bases {
        match fetch_shells_at(plan, authorization, base).await {
            Err(Outcome::Failed(error)) if error.is_not_found() => last = Some(error),
            other => return other,
        }
    }
    Err(Outcome::Failed(last.unwrap_or_else(|| ConnectError::Usage("no shell listing found".into()))))
}

/// `GET {base}/api/shells`.
async fn fetch_shells_at(plan: &Plan, authorization: &str, base: &str) -> Result<serde_json::Value, Outcome> {
    use http_body_util::BodyExt;
    let failed = |reason: String| Outcome::Failed(ConnectError::Handshake { uri: plan.target.uri(), reason });
    let fetch = async {
        let stream = open_stream(plan).await.map_err(Outcome::Failed)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| failed(error.to_string()))?;
        tokio::spawn(connection);
        let host = target::authority(&plan.target.host, plan.target.port);
        let request = http::Request::get(format!("{base}/api/shells"))
            .header(http::header::HOST, host)
            .header(http::header::AUTHORIZATION, authorization)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|error| failed(error.to_string()))?;
        let response = sender.send_request(request).await.map_err(|error| failed(error.to_string()))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), 16 * 1024 * 1024)
            .collect()
            .await
            .map_err(|error| failed(error.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let status = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or_default());
            return Err(Outcome::Failed(ConnectError::Refused { status, message: server_message(&body) }));
        }
        serde_json::from_slice::<serde_json::Value>(&body).map_err(|error| failed(error.to_string()))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fetch)
        .await
        .map_err(|_| Outcome::Failed(ConnectError::Timeout(plan.target.uri())))?
}

/// One line per shell: id, session, owner, size, output, clients, and whether it is detached.
fn format_shells(listing: &serde_json::Value) -> String {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").to_owned();
    let mut rows = vec![["ID", "SESSION", "OWNER", "SIZE", "OUTPUT", "CLIENTS", "DETACHED SINCE"].map(str::to_owned)];
    for shell in listing["shells"].as_array().into_iter().flatten() {
        let clients: Vec<String> = shell["clients"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|client| format!("{}/{}", text(&client["user"]), text(&client["mode"])))
            .collect();
        rows.push([
            text(&shell["id"]),
            text(&shell["session"]),
            text(&shell["owner"]),
            format!("{}x{}", shell["cols"], shell["rows"]),
            shell["output_bytes"].to_string(),
            if clients.is_empty() { "-".to_owned() } else { clients.join(",") },
            text(&shell["detached_since"]),
        ]);
    }
    let widths: Vec<usize> = (0..7).map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// How to name the server again in the command that attaches to a detached shell: the URL as
/// given, without its query or fragment (the session is in its path, and nothing secret is
/// printed: credentials are never in it), and the config file given with it, if any.
fn come_back_to(args: &ConnectArgs) -> String {
    let url = args.url.as_deref().map(|url| url.split(['?', '#']).next().unwrap_or_default().to_owned());
    let config = args.login.config.as_ref().map(|config| format!("--config {}", config.display()));
    match (url, config) {
        (Some(url), Some(config)) => format!("{url} {config}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => "URL".to_owned(),
    }
}

/// Whether an input frame holds a Ctrl-C (typed, when standard input is a terminal).
fn typed_interrupt(frame: &[u8]) -> bool {
    frame.first() == Some(&FRAME_DATA) && frame[1..].contains(&INTERRUPT_KEY)
}

/// Where a live shell's connection stands, to come back to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resume {
    /// The shell's id, once known (from `--attach`, or the server's first message).
    shell: Option<String>,
    /// The offset of the next output byte needed.
    offset: u64,
    /// Watching only.
    observe: bool,
}

impl Resume {
    /// The query that attaches (and resumes), or nothing for a new shell.
    fn query(&self) -> String {
        match &self.shell {
            None => String::new(),
            Some(shell) => {
                let shell: String =
                    percent_encoding::utf8_percent_encode(shell, percent_encoding::NON_ALPHANUMERIC).collect();
                let mode = if self.observe { "&mode=observe" } else { "" };
                format!("shell={shell}&offset={}{mode}", self.offset)
            }
        }
    }
}

/// Dials again until the shell answers, a refusal says it never will (the shell is gone, the
/// credentials no longer work), [`RECONNECT_FOR`] passes, or a signal comes. Input typed
/// meanwhile is `held` for the next connection, except Ctrl-C, which stops trying (as a
/// SIGINT would). Each new reason for failing is shown once.
async fn reconnect(
    plan: &Plan,
    authorization: &str,
    resume: &Resume,
    signals: &mut Signals,
    queued: &mut mpsc::Receiver<Message>,
    held: &mut Held,
) -> Result<WebSocketStream<Box<dyn Io>>, Outcome> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    let mut input_open = true;
    let mut last_reason = String::new();
    loop {
        let query = resume.query();
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, dial(plan, authorization, &query));
        tokio::pin!(attempt);
        let attempt = loop {
            tokio::select! {
                attempt = &mut attempt => break attempt,
                signal = signals.next() => return Err(Outcome::Interrupted(Interrupted::Signal(signal))),
                message = queued.recv(), if input_open => match message {
                    Some(message) => held.take(message)?,
                    None => input_open = false,
                },
            }
        };
        let error = match attempt {
            Ok(Ok(socket)) => return Ok(socket),
            Ok(Err(error @ ConnectError::Refused { .. })) => return Err(Outcome::Failed(error)),
            Ok(Err(error)) if started.elapsed() < RECONNECT_FOR => error,
            Ok(Err(error)) => return Err(Outcome::Failed(error)),
            Err(_) if started.elapsed() < RECONNECT_FOR => ConnectError::Timeout(plan.target.uri()),
            Err(_) => return Err(Outcome::Failed(ConnectError::Timeout(plan.target.uri()))),
        };
        let reason = match &error {
            // Without the address and the shell's id, which every try repeats.
            ConnectError::Handshake { reason, .. } => one_line(reason),
            other => one_line(&other.to_string()),
        };
        if reason != last_reason {
            eprint!("wssh: {reason}; still trying\r\n");
            last_reason = reason;
        }
        let sleep = tokio::time::sleep(pause);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                signal = signals.next() => return Err(Outcome::Interrupted(Interrupted::Signal(signal))),
                message = queued.recv(), if input_open => match message {
                    Some(message) => held.take(message)?,
                    None => input_open = false,
                },
            }
        }
        pause = (pause * 2).min(RECONNECT_PAUSE_MAX);
    }
}

/// Input held while reconnecting, at most; what comes beyond it is dropped, once said.
const HELD_LIMIT: usize = 64 * 1024;

/// Input and window changes that came while the connection was down, for the next one.
#[derive(Debug, Default)]
struct Held {
    messages: std::collections::VecDeque<Message>,
    bytes: usize,
    /// Typing goes to a terminal: Ctrl-C among it stops reconnecting.
    interactive: bool,
    dropped: bool,
}

impl Held {
    /// Keeps `message` for the next connection; typed Ctrl-C stops reconnecting instead.
    fn take(&mut self, message: Message) -> Result<(), Outcome> {
        let Message::Binary(frame) = &message else { return Ok(()) };
        if self.interactive && typed_interrupt(frame) {
            return Err(Outcome::Interrupted(Interrupted::Signal(libc::SIGINT)));
        }
        // Past the limit everything after is dropped, not only what does not fit: the program
        // gets a clean beginning of the input, never input with a hole in it.
        if self.dropped || self.bytes + frame.len() > HELD_LIMIT {
            if !std::mem::replace(&mut self.dropped, true) {
                eprint!("wssh: too much typed while disconnected; the rest is dropped\r\n");
            }
            return Ok(());
        }
        self.bytes += frame.len();
        self.messages.push_back(message);
        Ok(())
    }
}

/// A byte stream: TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Dials and does TLS when asked: the byte stream to the server.
async fn open_stream(plan: &Plan) -> Result<Box<dyn Io>, ConnectError> {
    let target = &plan.target;
    let address = if target.dial.contains(':') {
        format!("[{}]:{}", target.dial, target.port)
    } else {
        format!("{}:{}", target.dial, target.port)
    };
    let tcp = TcpStream::connect((target.dial.as_str(), target.port))
        .await
        .map_err(|source| ConnectError::Connect { address: address.clone(), source })?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if target.tls {
        let connector = tokio_rustls::TlsConnector::from(tls::client_config(&plan.trust)?);
        let tls = connector.connect(tls::server_name(&target.host)?, tcp).await.map_err(|error| {
            let advice = tls::handshake_advice(&error);
            ConnectError::Tls(format!("TLS handshake with {address} failed: {error}{advice}"))
        })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    Ok(stream)
}

/// Dials, does TLS when asked, and upgrades to a WebSocket speaking `wssh.v1`; `query`
/// attaches to a live shell.
async fn dial(plan: &Plan, authorization: &str, query: &str) -> Result<WebSocketStream<Box<dyn Io>>, ConnectError> {
    let stream = open_stream(plan).await?;
    let mut uri = plan.target.uri();
    if !query.is_empty() {
        uri.push(if uri.contains('?') { '&' } else { '?' });
        uri.push_str(query);
    }
    let handshake_error = |reason: String| ConnectError::Handshake { uri: uri.clone(), reason };
    let mut request = uri.as_str().into_client_request().map_err(|error| handshake_error(error.to_string()))?;
    let mut value = HeaderValue::from_str(authorization)
        .map_err(|_| ConnectError::Usage("the credentials hold characters not allowed in an HTTP header".into()))?;
    value.set_sensitive(true);
    request.headers_mut().insert(header::AUTHORIZATION, value);
    request.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(NATIVE_SUBPROTOCOL));
    let config = WebSocketConfig::default().write_buffer_size(0);
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((socket, _response)) => Ok(socket),
        Err(WsError::Http(response)) => {
            let status = response.status();
            let status = match status.canonical_reason() {
                Some(reason) => format!("{} {reason}", status.as_u16()),
                None => status.as_u16().to_string(),
            };
            let message = response.body().as_deref().and_then(server_message);
            Err(ConnectError::Refused { status, message })
        }
        Err(other) => Err(handshake_error(other.to_string())),
    }
}

/// The message of an error body: go_ws_sh's `{"message": "Error: …"}`, or short plain text.
fn server_message(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => value.get("message")?.as_str()?.to_owned(),
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let text = text.strip_prefix("Error: ").unwrap_or(&text).trim();
    (!text.is_empty() && text.len() <= 200).then(|| one_line(text))
}

/// A resize frame.
fn resize_frame((cols, rows): (u16, u16)) -> Message {
    let mut frame = Vec::with_capacity(5);
    frame.push(FRAME_RESIZE);
    frame.extend_from_slice(&cols.to_be_bytes());
    frame.extend_from_slice(&rows.to_be_bytes());
    Message::Binary(frame.into())
}

/// A data frame.
fn data_frame(bytes: &[u8]) -> Message {
    let mut frame = Vec::with_capacity(bytes.len() + 1);
    frame.push(FRAME_DATA);
    frame.extend_from_slice(bytes);
    Message::Binary(frame.into())
}

/// Why the reading loop stopped.
enum Ending {
    /// The server sent a close frame.
    ServerClosed(Option<String>),
    /// The connection broke or ended without a close frame.
    Broken(Option<String>),
    /// A signal.
    Signal(i32),
    /// The input ended and the output went quiet ([`Rules::detach_when_input_ends`]).
    InputDone,
    /// Standard output failed.
    Local(String),
}

/// How a connection is served, beyond what it is told.
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// Leave the shell (close, exit 0) once the input has ended and output has been quiet
    /// for [`QUIET_BEFORE_DETACH`]: `--attach` with piped input, which must not end a shell
    /// others may be using.
    detach_when_input_ends: bool,
    /// Standard input is a terminal (in raw mode): a Ctrl-C typed while only watching ends
    /// the session.
    interactive: bool,
}

/// How one connection ended.
enum Session {
    /// For good.
    Over(Outcome),
    /// The connection dropped without the server ending anything; the reason, if any.
    Dropped(Option<String>),
}

/// One connection: output flows to standard output (and is counted in `resume`), while what
/// is `held` from before and then `queued` (input, window changes) goes out, until the server
/// closes, the connection drops or goes silent, or a signal arrives. A live shell's messages
/// keep `resume` up to date; a gap is announced on standard error and its restore drawn.
async fn shell<S>(
    socket: WebSocketStream<S>,
    signals: &mut Signals,
    queued: &mut mpsc::Receiver<Message>,
    held: &mut Held,
    resume: &mut Resume,
    rules: Rules,
) -> Session
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    // Back to a shell we had: it gets our size again (controllers only; a new shell gets it
    // from the input task's first message), then what was typed meanwhile.
    if resume.shell.is_some() && !resume.observe && sink.send(resize_frame(terminal::window_size())).await.is_err() {
        return Session::Dropped(None);
    }
    // Watching only: what was typed meanwhile is not sent.
    if resume.observe {
        held.messages.clear();
    }
    while let Some(message) = held.messages.front() {
        // Taken off only once sent: a connection that drops now keeps it for the next one.
        if sink.send(message.clone()).await.is_err() {
            return Session::Dropped(None);
        }
        held.messages.pop_front();
    }
    *held = Held { interactive: held.interactive, ..Held::default() };
    let mut stdout = tokio::io::stdout();
    let mut exit_code = None;
    let mut error_text: Option<String> = None;
    let mut input_open = true;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    let quiet = tokio::time::sleep(Duration::MAX);
    tokio::pin!(quiet);
    let mut detach_by = None;
    let ending = loop {
        tokio::select! {
            message = stream.next() => { match message {
                Some(Ok(Message::Binary(frame))) => match frame.split_first() {
                    Some((&FRAME_DATA, output)) => {
                        let written = async {
                            stdout.write_all(output).await?;
                            stdout.flush().await
                        };
                        if let Err(error) = written.await {
                            break Ending::Local(format!("cannot write to standard output: {error}"));
                        }
                        resume.offset += output.len() as u64;
                        if let Some(by) = detach_by {
                            quiet.as_mut().reset((tokio::time::Instant::now() + QUIET_BEFORE_DETACH).min(by));
                        }
                    }
                    Some((&FRAME_SHELL, body)) => {
                        if let Ok(hello) = serde_json::from_slice::<serde_json::Value>(body) {
                            if let Some(id) = hello["shell"].as_str() {
                                resume.shell = Some(id.to_owned());
                            }
                            if let Some(offset) = hello["offset"].as_u64() {
                                resume.offset = offset;
                            }
                            // A link that only lets its holder watch: say so, and act as an observer.
                            if hello["mode"] == "observe" && !resume.observe {
                                resume.observe = true;
                                eprint!("\r\nwssh: watching only (read-only); Ctrl-C stops watching\r\n");
                            }
                        }
                    }
                    Some((&FRAME_GAP, body)) => {
                        let gap: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                        let (requested, from) = (gap["requested"].as_u64().unwrap_or(0), gap["from"].as_u64().unwrap_or(0));
                        eprint!("\r\nwssh: {} bytes of output were lost meanwhile; the screen is redrawn\r\n", from.saturating_sub(requested));
                        resume.offset = from;
                    }
                    Some((&FRAME_RESTORE, screen)) => {
                        let written = async {
                            stdout.write_all(screen).await?;
                            stdout.flush().await
                        };
                        if let Err(error) = written.await {
                            break Ending::Local(format!("cannot write to standard output: {error}"));
                        }
                    }
                    Some((&FRAME_EXIT, code)) => {
                        exit_code = <[u8; 4]>::try_from(code).ok().map(i32::from_be_bytes);
                    }
                    Some((&FRAME_ERROR, text)) => {
                        error_text = Some(String::from_utf8_lossy(text).into_owned());
                    }
                    // Unknown frame types are for newer clients; skip them.
                    _ => {}
                },
                Some(Ok(Message::Close(frame))) => {
                    break Ending::ServerClosed(frame.map(|frame| frame.reason.to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => break Ending::Broken(Some(error.to_string())),
                None => break Ending::Broken(None),
            }
            // After the message is handled: writing it out may have waited on standard output.
            last_heard = tokio::time::Instant::now();
            },
            message = queued.recv(), if input_open => match message {
                // Watching only: nothing is sent, and a typed Ctrl-C ends the session.
                Some(Message::Binary(frame)) if resume.observe => {
                    if rules.interactive && typed_interrupt(&frame) {
                        break Ending::Signal(libc::SIGINT);
                    }
                }
                Some(message) => {
                    // A link that died without a reset takes nothing once its buffers are full.
                    match tokio::time::timeout(SILENCE_LIMIT, sink.send(message)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => break Ending::Broken(Some(error.to_string())),
                        Err(_) => break Ending::Broken(Some("the server took no input for 30 s".into())),
                    }
                }
                // The input task is gone (observers have none): only output flows.
                None => {
                    input_open = false;
                    if rules.detach_when_input_ends {
                        let now = tokio::time::Instant::now();
                        detach_by = Some(now + DETACH_WAIT_MAX);
                        quiet.as_mut().reset(now + QUIET_BEFORE_DETACH);
                    }
                }
            },
            () = &mut quiet, if detach_by.is_some() => break Ending::InputDone,
            _ = ping.tick() => {
                if last_heard.elapsed() >= SILENCE_LIMIT {
                    break Ending::Broken(Some(format!("no word from the server for {} s", SILENCE_LIMIT.as_secs())));
                }
                match tokio::time::timeout(SILENCE_LIMIT, sink.send(Message::Ping(Vec::new().into()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => break Ending::Broken(Some(error.to_string())),
                    Err(_) => break Ending::Broken(Some("the server took nothing for 30 s".into())),
                }
            }
            signal = signals.next() => break Ending::Signal(signal),
        }
    };
    match &ending {
        Ending::ServerClosed(_) => {
            // Reading on lets tungstenite send its reply to the close.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async { while stream.next().await.is_some() {} }).await;
        }
        Ending::Signal(_) | Ending::Local(_) | Ending::InputDone => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(None))).await;
        }
        Ending::Broken(_) => {}
    }

    Session::Over(match (exit_code, ending) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Ending::Signal(signal)) => match &resume.shell {
            Some(shell) => Outcome::Detached { shell: shell.clone(), signal: Some(signal), observe: resume.observe },
            None => Outcome::Interrupted(Interrupted::Signal(signal)),
        },
        (None, Ending::InputDone) => {
            Outcome::Detached { shell: resume.shell.clone().unwrap_or_default(), signal: None, observe: resume.observe }
        }
        (None, Ending::Local(reason)) => Outcome::Failed(ConnectError::Local(reason)),
        (None, Ending::Broken(reason)) if error_text.is_none() => return Session::Dropped(reason),
        (None, Ending::ServerClosed(reason) | Ending::Broken(reason)) => match error_text {
            Some(text) => Outcome::ServerError(text),
            None => Outcome::Dropped(reason),
        },
    })
}

/// Sends the initial size, then standard input and window changes, until the writer goes
/// away. When standard input is not a terminal, its end is passed on as Ctrl-D, which ends
/// a shell reading from the remote terminal (`echo ls | wssh connect …`), and again every
/// [`EOF_REPEAT`] while the session lasts: a Ctrl-D that reaches the terminal while the
/// program is not reading it as end of file (bash's line editor starting, or a command
/// running) is lost, and an input that has ended stays ended. When `attaching`, the end of
/// input is not passed on (the shell is not ours alone): the task ends instead, and the
/// connection detaches once output goes quiet.
async fn forward_input(outgoing: mpsc::Sender<Message>, interactive: bool, attaching: bool) {
    let mut window_changes = WindowChanges::install();
    if outgoing.send(resize_frame(terminal::window_size())).await.is_err() {
        return;
    }
    // Without the reader thread there is no input, but output and resizes still flow.
    let mut stdin = terminal::read_stdin().ok();
    let mut ended = false;
    loop {
        let chunk = async {
            match &mut stdin {
                Some(stdin) => stdin.recv().await,
                None if ended => {
                    tokio::time::sleep(EOF_REPEAT).await;
                    None
                }
                None => std::future::pending().await,
            }
        };
        let message = tokio::select! {
            chunk = chunk => match chunk {
                Some(mut bytes) => {
                    if let Some(stdin) = &mut stdin {
                        while bytes.len() < INPUT_BATCH {
                            match stdin.try_recv() {
                                Ok(more) => bytes.extend_from_slice(&more),
                                Err(_) => break,
                            }
                        }
                    }
                    data_frame(&bytes)
                }
                None => {
                    stdin = None;
                    if interactive {
                        continue;
                    }
                    if attaching {
                        return;
                    }
                    ended = true;
                    data_frame(&[END_OF_TRANSMISSION])
                }
            },
            () = window_changes.next() => resize_frame(terminal::window_size()),
        };
        if outgoing.send(message).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_held_while_disconnected_is_a_clean_beginning_and_ctrl_c_stops() {
        let mut held = Held { interactive: true, ..Held::default() };
        let big = data_frame(&vec![b'x'; HELD_LIMIT - 100]);
        assert!(held.take(big).is_ok());
        assert!(held.take(data_frame(&[b'y'; 200])).is_ok(), "over the limit: dropped");
        assert!(held.take(data_frame(b"ls\r")).is_ok(), "it would fit, but comes after a hole");
        assert_eq!(held.messages.len(), 1);
        assert!(held.take(data_frame(b"\x03")).is_err(), "Ctrl-C from a terminal stops");
        let mut piped = Held::default();
        assert!(piped.take(data_frame(b"\x03")).is_ok(), "piped input may hold any byte");
        assert_eq!(piped.messages.len(), 1);
    }

    #[test]
    fn frames() {
        assert_eq!(resize_frame((120, 40)), Message::Binary(vec![1, 0, 120, 0, 40].into()));
        assert_eq!(data_frame(b"ls"), Message::Binary(b"\0ls".to_vec().into()));
    }

    #[test]
    fn refusals_read_the_servers_message() {
        assert_eq!(
            server_message(br#"{"message":"Error: Invalid credentials"}"#).as_deref(),
            Some("Invalid credentials")
        );
        assert_eq!(server_message(b"Not Found\n").as_deref(), Some("Not Found"));
        assert_eq!(server_message(b""), None);
        let error =
            ConnectError::Refused { status: "401 Unauthorized".into(), message: Some("Invalid credentials".into()) };
        assert_eq!(error.to_string(), "server refused: 401 Unauthorized (Invalid credentials)");
    }
}
