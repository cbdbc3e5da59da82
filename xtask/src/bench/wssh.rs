//! wssh as a bench target: building and starting the real server with a bench configuration,
//! and [`WsshTarget`], a WebSocket client for it in either framing.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use wssh_store_postgres::scratch::ScratchDatabase;

use super::framing::{Framing, FromServer, NATIVE_SUBPROTOCOL};
use super::postgres::Postgres;
use super::target::{BoxFuture, COLS, Instance, Program, Programs, ROWS, Result, Target, Terminal, WireCount};
use super::ws::{HANDSHAKE_TIMEOUT, Socket};

/// How long the server may take to print its listening address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the release server and bench client with `$CARGO build --release -p wssh -p xtask`
/// and returns the server's path. Always both: with `-p wssh` alone, Cargo unifies the
/// dependencies' features differently and relinks a different server every time.
pub(crate) fn build(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status =
        Command::new(&cargo).args(["build", "--release", "-p", "wssh", "-p", "xtask"]).current_dir(root).status()?;
    if !status.success() {
        return Err(format!("`cargo build --release -p wssh -p xtask` failed ({status})").into());
    }
    Ok(root.join("target/release/wssh"))
}

/// What starting a server needs; every server started gets a fresh folder under `work`.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The release binary.
    pub(crate) binary: PathBuf,
    /// The parent of the servers' folders.
    pub(crate) work: PathBuf,
    /// The programs to configure as sessions.
    pub(crate) programs: Arc<Programs>,
    /// Arguments added to `wssh serve` (`--compare`); none for the server as deployed.
    pub(crate) extra_args: Vec<String>,
    /// When set, every server gets a fresh database on this PostgreSQL (`--database URL`)
    /// instead of SQLite in its data directory, and its targets' names end in ", PostgreSQL".
    pub(crate) postgres: Option<Arc<Postgres>>,
    /// Top-level configuration keys set on top of the bench's (e.g. `record_all_shells`).
    pub(crate) config: serde_json::Map<String, serde_json::Value>,
    /// Sessions configured beside one per [`Program`] and `bash` (a figure's own programs).
    pub(crate) extra_sessions: Vec<serde_json::Value>,
    /// Added to the targets' names, e.g. `, recorded`.
    pub(crate) label: String,
}

/// The live-shell limits of the bench's servers (per user and in all): above any figure's count.
const SHELL_LIMIT: usize = 100_000;

/// Folders of servers started, across every [`Launch`].
static STARTED: AtomicU64 = AtomicU64::new(0);

impl Launch {
    /// Servers of `binary` with folders under `work`, offering `programs`, started with
    /// `extra_args` added.
    ///
    /// Shells end with their last connection (`shell_detach_timeout_seconds: 0`), as before
    /// live shells: the figures that open and close shells (3, 4, 6) measure open shells, not
    /// closed ones lingering detached. Their output still goes through the shell's history.
    /// The live-shell figures start servers with the default timeout ([`Launch::variant`]).
    /// The live-shell limits (50 per user, 1,000 in all by default) are lifted: every shell
    /// of the bench is the administrator's, and figure 4 opens 1,000 or more.
    pub(crate) fn new(binary: PathBuf, work: PathBuf, programs: Arc<Programs>, extra_args: Vec<String>) -> Arc<Launch> {
        let mut config = serde_json::Map::new();
        config.insert("shell_detach_timeout_seconds".into(), json!(0));
        config.insert("shell_limit_per_user".into(), json!(SHELL_LIMIT));
        config.insert("shell_limit_total".into(), json!(SHELL_LIMIT));
        Arc::new(Launch {
            binary,
            work,
            programs,
            extra_args,
            postgres: None,
            config,
            extra_sessions: Vec::new(),
            label: String::new(),
        })
    }

    /// The same servers with `label` added to their targets' names.
    pub(crate) fn labelled(self: Arc<Self>, label: &str) -> Arc<Launch> {
        let mut launch = Arc::unwrap_or_clone(self);
        launch.label.push_str(label);
        Arc::new(launch)
    }

    /// The same servers, each on a fresh database of `postgres`.
    pub(crate) fn on_postgres(&self, postgres: Arc<Postgres>) -> Arc<Launch> {
        Arc::new(Launch {
            binary: self.binary.clone(),
            work: self.work.clone(),
            programs: self.programs.clone(),
            extra_args: self.extra_args.clone(),
            postgres: Some(postgres),
            config: self.config.clone(),
            extra_sessions: self.extra_sessions.clone(),
            label: self.label.clone(),
        })
    }

    /// The same servers with `config` keys set over this launch's (a `null` value removes the
    /// key, leaving the server's default), `sessions` added, and `label` added to the names.
    pub(crate) fn variant(
        &self,
        label: &str,
        config: serde_json::Value,
        sessions: Vec<serde_json::Value>,
    ) -> Arc<Launch> {
        let mut merged = self.config.clone();
        if let serde_json::Value::Object(config) = config {
            for (key, value) in config {
                if value.is_null() {
                    merged.remove(&key);
                } else {
                    merged.insert(key, value);
                }
            }
        }
        let mut extra_sessions = self.extra_sessions.clone();
        extra_sessions.extend(sessions);
        Arc::new(Launch {
            binary: self.binary.clone(),
            work: self.work.clone(),
            programs: self.programs.clone(),
            extra_args: self.extra_args.clone(),
            postgres: self.postgres.clone(),
            config: merged,
            extra_sessions,
            label: format!("{}{label}", self.label),
        })
    }
}

/// A running `wssh serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct WsshServer {
    /// The server process.
    child: Child,
    /// Where it listens.
    addr: SocketAddr,
    /// The configured administrator's password.
    password: String,
    /// `Authorization: Basic …` for the configured administrator.
    basic: String,
    /// `Authorization: Bearer wssh_…`, an access token of the administrator.
    bearer: String,
    /// The PostgreSQL database it alone uses, dropped after the server stopped.
    _database: Option<ScratchDatabase>,
    /// Its folder: configuration, log, data directory.
    folder: PathBuf,
}

impl WsshServer {
    /// Starts `wssh serve` with a fresh configuration and data directory, one session per
    /// [`Program`] (plus the `bash` session of the configuration), waits for its
    /// `listening on http://ADDR` line, and mints an access token.
    pub(crate) async fn start(launch: &Launch) -> Result<WsshServer> {
        let database = match &launch.postgres {
            Some(postgres) => Some(postgres.database("wssh_bench")?),
            None => None,
        };
        let url = database.as_ref().map(|database| database.url().to_owned());
        let mut server = WsshServer::start_node(launch, url.as_deref(), &random_hex(16)?).await?;
        server._database = database;
        Ok(server)
    }

    /// Starts `wssh serve` as [`WsshServer::start`] does, on the PostgreSQL database `url` when
    /// given (several nodes on one database: the first one seeds the administrator with
    /// `password`, the others find it), and mints an access token.
    pub(crate) async fn start_node(launch: &Launch, url: Option<&str>, password: &str) -> Result<WsshServer> {
        let number = STARTED.fetch_add(1, Ordering::Relaxed);
        let work = &launch.work.join(format!("wssh-{number}"));
        let (binary, programs) = (&launch.binary, &launch.programs);
        std::fs::create_dir_all(work)?;
        let password = password.to_owned();
        let mut sessions: Vec<_> = Program::ALL
            .iter()
            .map(|&program| {
                let argv = programs.argv(program);
                json!({ "name": program.session_name(), "cmd": argv[0], "args": argv[1..], "dir": Programs::DIR })
            })
            .collect();
        sessions.push(json!({ "name": "bash", "cmd": "bash", "args": ["--norc", "-i"], "dir": Programs::DIR }));
        sessions.extend(launch.extra_sessions.iter().cloned());
        let mut config = json!({
            "initial_credentials": [{ "username": "admin", "password": password }],
            "initial_sessions": sessions,
            "servers": [{ "port": "0", "protocol": "http" }],
        });
        if let serde_json::Value::Object(config) = &mut config {
            config.extend(launch.config.clone());
        }
        let config_path = work.join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let log = std::fs::File::create(work.join("stderr.log"))?;
        let mut command = Command::new(binary);
        command.arg("serve");
        if let Some(url) = url {
            command.arg("--database").arg(url);
        }
        let mut child = command
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(work.join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .args(&launch.extra_args)
            .current_dir(work)
            .process_group(0)
            // The server's default log level, as deployed.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (found, address) = std::sync::mpsc::channel();
        // Reads the address, then keeps draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines().map_while(std::io::Result::ok) {
                let address = line.strip_prefix("listening on http://").and_then(|address| address.parse().ok());
                if let Some(address) = address
                    && let Some(found) = found.take()
                {
                    let _ = found.send(address);
                }
            }
        });
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}")));
        let Ok(addr) = address.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("wssh did not start; see {}", work.join("stderr.log").display()).into());
        };
        let mut server =
            WsshServer { child, addr, password, basic, bearer: String::new(), _database: None, folder: work.clone() };
        server.bearer = server.mint_token().await?;
        Ok(server)
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How to reach its API.
    pub(crate) fn access(&self) -> ApiAccess {
        ApiAccess {
            addr: self.addr,
            password: self.password.clone(),
            bearer: self.bearer.clone(),
            pid: self.pid(),
            folder: self.folder.clone(),
        }
    }

    /// Creates an access token (`POST /tokens` with the administrator's password) and returns
    /// its `Authorization` value.
    async fn mint_token(&self) -> Result<String> {
        let password = &self.password;
        let body = json!({
            "authorization": { "type": "password", "username": "admin", "password": password },
            "token": { "description": "wssh bench" },
        })
        .to_string();
        let request = super::http::request(::http::Method::POST, self.addr, "/tokens", None, Some(&body))?;
        let mut connection = super::http::Connection::open(self.addr).await?;
        let reply = connection.exchange(request, HANDSHAKE_TIMEOUT).await?;
        if reply.status != 200 {
            return Err(
                format!("POST /tokens answered {}: {}", reply.status, String::from_utf8_lossy(&reply.body)).into()
            );
        }
        let reply: serde_json::Value = serde_json::from_slice(&reply.body)?;
        let secret = reply["token"]["token"].as_str().ok_or("POST /tokens: no token in the reply")?;
        Ok(format!("Bearer {secret}"))
    }
}

impl Drop for WsshServer {
    fn drop(&mut self) {
        super::process::stop(&mut self.child);
    }
}

/// `bytes` random bytes from the kernel, in hex.
fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read as _;
    let mut buffer = vec![0; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buffer)?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// How a [`WsshTarget`] authenticates on the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `Authorization: Basic` with the password (an argon2id verification per connection).
    Basic,
    /// `Authorization: Bearer wssh_…` with an access token (a SHA-256 lookup), as browsers do.
    Token,
}

/// wssh in one framing, authenticated one way.
#[derive(Clone)]
pub(crate) struct WsshTarget {
    /// How to start a server.
    launch: Arc<Launch>,
    /// The framing spoken.
    framing: Framing,
    /// How it authenticates.
    auth: Auth,
    /// The name in the table.
    name: String,
}

impl WsshTarget {
    /// wssh started by `launch`, spoken to in `framing`, authenticating with `auth`.
    pub(crate) fn new(launch: Arc<Launch>, framing: Framing, auth: Auth) -> WsshTarget {
        let suffix = match auth {
            Auth::Basic => "",
            Auth::Token => ", token",
        };
        let database = if launch.postgres.is_some() { ", PostgreSQL" } else { "" };
        let variant =
            if launch.extra_args.is_empty() { String::new() } else { format!(" [{}]", launch.extra_args.join(" ")) };
        let name = format!("wssh {}{suffix}{database}{}{variant}", framing.label(), launch.label);
        WsshTarget { launch, framing, auth, name }
    }
}

/// How to reach a wssh server's HTTP API.
#[derive(Debug, Clone)]
pub(crate) struct ApiAccess {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// The administrator's password.
    pub(crate) password: String,
    /// `Bearer wssh_…`, an access token of the administrator.
    pub(crate) bearer: String,
    /// The server's process id.
    pub(crate) pid: u32,
    /// The server's folder (its data directory is `data/` in it).
    pub(crate) folder: PathBuf,
}

impl WsshTarget {
    /// Starts an instance, and says how to reach its API (the API figures).
    pub(crate) async fn start_with_api(&self) -> Result<(Box<dyn Instance>, ApiAccess)> {
        let server = WsshServer::start(&self.launch).await?;
        let access = server.access();
        let authorization = match self.auth {
            Auth::Basic => server.basic.clone(),
            Auth::Token => server.bearer.clone(),
        };
        let instance: Box<dyn Instance> = Box::new(WsshInstance { server, framing: self.framing, authorization });
        Ok((instance, access))
    }
}

impl Target for WsshTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&self) -> BoxFuture<'_, Result<Box<dyn Instance>>> {
        Box::pin(async move { Ok(self.start_with_api().await?.0) })
    }
}

/// A wssh server and how to speak to it.
struct WsshInstance {
    /// The server.
    server: WsshServer,
    /// The framing spoken.
    framing: Framing,
    /// The handshake's `Authorization` value.
    authorization: String,
}

impl Instance for WsshInstance {
    fn server_pid(&self, _program: Program) -> Option<u32> {
        Some(self.server.pid())
    }

    fn open(&self, program: Program) -> BoxFuture<'_, Result<Box<dyn Terminal>>> {
        Box::pin(async move {
            let addr = self.server.addr;
            let mut request = format!("ws://{addr}/{}", program.session_name()).into_client_request()?;
            request.headers_mut().insert("authorization", self.authorization.parse()?);
            if self.framing == Framing::Native {
                request.headers_mut().insert("sec-websocket-protocol", NATIVE_SUBPROTOCOL.parse()?);
            }
            let mut socket = Socket::connect(addr, request).await?;
            socket.stream.send(Message::Binary(self.framing.resize(COLS, ROWS).into())).await?;
            let terminal: Box<dyn Terminal> = Box::new(WsshTerminal { socket, framing: self.framing });
            Ok(terminal)
        })
    }
}

/// Opens `program` on the server of `access` (native framing, its token, sized 80×24) from
/// the local address `source`: figures that need more connections than one address may hold.
pub(crate) async fn open_from(
    access: &ApiAccess,
    source: std::net::IpAddr,
    program: Program,
) -> Result<Box<dyn Terminal>> {
    let addr = access.addr;
    let mut request = format!("ws://{addr}/{}", program.session_name()).into_client_request()?;
    request.headers_mut().insert("authorization", access.bearer.parse()?);
    request.headers_mut().insert("sec-websocket-protocol", NATIVE_SUBPROTOCOL.parse()?);
    let mut socket = Socket::connect_from(addr, Some(source), request).await?;
    socket.stream.send(Message::Binary(Framing::Native.resize(COLS, ROWS).into())).await?;
    Ok(Box::new(WsshTerminal { socket, framing: Framing::Native }))
}

/// One shell WebSocket.
struct WsshTerminal {
    /// The connection.
    socket: Socket,
    /// Its framing.
    framing: Framing,
}

impl Terminal for WsshTerminal {
    fn send<'a>(&'a mut self, input: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.socket.stream.send(Message::Binary(self.framing.stdin(input).into())).await?;
            Ok(())
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Bytes>>> {
        Box::pin(async move {
            loop {
                let Some(message) = self.socket.next_message().await? else { return Ok(None) };
                match message {
                    Message::Binary(frame) => match self.framing.decode(frame)? {
                        FromServer::Output(bytes) => return Ok(Some(bytes)),
                        FromServer::Exit(_) | FromServer::Other => {}
                        FromServer::Error(reason) => return Err(format!("server error: {reason}").into()),
                    },
                    Message::Text(_) => return Err("the server sent a text frame".into()),
                    Message::Close(_) => return Ok(None),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        })
    }

    fn wire(&self) -> Option<WireCount> {
        Some(self.socket.wire())
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.socket.close())
    }
}
