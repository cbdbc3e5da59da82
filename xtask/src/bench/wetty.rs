//! wetty (Node, node-pty, socket.io) as a bench target.
//!
//! wetty runs one command for every connection. Run as root with its SSH host on loopback (the
//! default, `localhost`), it spawns that command locally on a PTY (`/usr/bin/env -S COMMAND`)
//! instead of `ssh` or `login`, so no sshd is needed. One wetty process per program: the
//! command of each is `sh FILE`, where FILE (in the scratch folder) `exec`s the program's
//! argument vector.
//!
//! socket.io is not plain WebSocket framing; the client speaks the minimum of it, over a
//! WebSocket at `/BASE/socket.io/?EIO=4&transport=websocket` (engine.io 4, text frames):
//!
//! * server `0{"sid":…,"pingInterval":…}` (open); client `40` (connect to `/`); server `40{…}`,
//!   then `42["login"]` once the program is spawned (keystrokes sent earlier are lost, so
//!   [`Instance::open`] returns only then);
//! * engine.io ping: server `2`, client `3`;
//! * events `42[name, …]`: client `input` (text), `resize` (`{cols, rows}`) and `commit`
//!   (flow control: wetty pauses the PTY past 2 MiB unacknowledged and the browser client
//!   acknowledges every 256 KiB, as this one does); server `login`, `data` (text) and `logout`.
//!
//! A task per terminal reads the socket (answering pings even while nobody waits for output,
//! as for the memory figure's idle shells, which wetty would otherwise drop after 10 s) and
//! hands output over a small bounded channel, so back-pressure reaches wetty as it would from
//! a slow browser.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::process::{ServerProcess, free_port, wait_for_listener};
use super::target::{BoxFuture, COLS, Instance, Program, Programs, ROWS, Result, Target, Terminal, WireCount};
use super::ws::{Counted, Socket};

/// How long Node and wetty may take to listen.
const START_LIMIT: Duration = Duration::from_secs(60);
/// The base path wetty is served under.
const BASE: &str = "/wetty";
/// Output characters per flow-control acknowledgement, as wetty's browser client sends them.
const ACK_CHARS: u64 = 262_144;
/// How long output may still arrive after wetty's `logout`.
const LOGOUT_GRACE: Duration = Duration::from_millis(250);
/// How long wetty may take to finish the socket.io connect.
const CONNECT_LIMIT: Duration = Duration::from_secs(20);

/// wetty from the cache.
pub(crate) struct Wetty {
    /// `node_modules/wetty/build/main.js`.
    main: PathBuf,
    /// Parent of the instances' logs and program files.
    work: PathBuf,
    /// The command lines.
    programs: Arc<Programs>,
    /// Instances started, to name their logs.
    started: AtomicU64,
}

impl Wetty {
    /// wetty's `main`, logging under `work`.
    pub(crate) fn new(main: PathBuf, work: PathBuf, programs: Arc<Programs>) -> Wetty {
        Wetty { main, work, programs, started: AtomicU64::new(0) }
    }

    /// Starts one wetty process running `program` for every connection.
    async fn start_one(&self, number: u64, program: Program) -> Result<(ServerProcess, SocketAddr)> {
        let name = program.session_name();
        let file = self.work.join(format!("wetty-{name}.sh"));
        let argv: Vec<String> = self.programs.argv(program).iter().map(|arg| shell_word(arg)).collect();
        std::fs::write(&file, format!("exec {}\n", argv.join(" ")))?;
        let port = free_port()?;
        let mut command = Command::new("node");
        command
            .arg(&self.main)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--base", BASE, "--ssh-host", "localhost"])
            .arg("--command")
            .arg(format!("sh {}", file.display()))
            .args(["--log-level", "warn"])
            .current_dir(Programs::DIR)
            .env("NODE_ENV", "production");
        let log = self.work.join(format!("wetty-{number}-{name}.log"));
        let mut process = ServerProcess::spawn("wetty", command, &log)?;
        wait_for_listener(&mut process, port, START_LIMIT).await?;
        Ok((process, SocketAddr::from(([127, 0, 0, 1], port))))
    }
}

/// `text` as one single-quoted shell word.
fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Target for Wetty {
    fn name(&self) -> &str {
        "wetty"
    }

    fn start(&self) -> BoxFuture<'_, Result<Box<dyn Instance>>> {
        Box::pin(async move {
            if effective_uid() != Some(0) {
                return Err("wetty runs a local command only as root (otherwise it runs ssh)".into());
            }
            let number = self.started.fetch_add(1, Ordering::Relaxed);
            let mut servers = Vec::with_capacity(Program::ALL.len());
            for program in Program::ALL {
                let (process, addr) = self.start_one(number, program).await?;
                servers.push((program, process, addr));
            }
            let instance: Box<dyn Instance> = Box::new(WettyInstance { servers });
            Ok(instance)
        })
    }
}

/// The effective user id (the second `Uid:` field of `/proc/self/status`), when known.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| line.strip_prefix("Uid:")?.split_whitespace().nth(1)?.parse().ok())
}

/// One wetty process per program.
struct WettyInstance {
    /// Program, process, address.
    servers: Vec<(Program, ServerProcess, SocketAddr)>,
}

impl WettyInstance {
    /// The server of `program`.
    fn server(&self, program: Program) -> Result<(&ServerProcess, SocketAddr)> {
        self.servers
            .iter()
            .find(|(offered, _, _)| *offered == program)
            .map(|(_, process, addr)| (process, *addr))
            .ok_or_else(|| format!("no wetty for {}", program.session_name()).into())
    }
}

impl Instance for WettyInstance {
    fn server_pid(&self, program: Program) -> Option<u32> {
        self.server(program).ok().map(|(process, _)| process.pid())
    }

    fn open(&self, program: Program) -> BoxFuture<'_, Result<Box<dyn Terminal>>> {
        Box::pin(async move {
            let (_, addr) = self.server(program)?;
            let request = format!("ws://{addr}{BASE}/socket.io/?EIO=4&transport=websocket").into_client_request()?;
            let socket = Socket::connect(addr, request).await?;
            let wire = socket.counter();
            let (sink, mut stream) = socket.stream.split();
            let sink = Arc::new(Mutex::new(sink));
            // engine.io open, socket.io connect, then wetty's `login`: wetty attaches its `input`
            // listener right after spawning, in the same tick as it emits `login`, and drops
            // keystrokes that arrive before.
            tokio::time::timeout(CONNECT_LIMIT, async {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) if text.as_str().starts_with('0') => {}
                    other => return Err(format!("no engine.io open: {other:?}")),
                }
                sink.lock().await.send(Message::text("40")).await.map_err(|error| error.to_string())?;
                loop {
                    match stream.next().await {
                        Some(Ok(Message::Text(text))) if text.as_str().starts_with(r#"42["login""#) => return Ok(()),
                        Some(Ok(Message::Text(text))) if text.as_str().starts_with(r#"42["data""#) => {
                            return Err("wetty sent output before login".to_owned());
                        }
                        Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                            sink.lock().await.send(Message::text("3")).await.map_err(|error| error.to_string())?;
                        }
                        Some(Ok(_)) => {}
                        other => return Err(format!("no socket.io connect and login: {other:?}")),
                    }
                }
            })
            .await
            .map_err(|_| "socket.io connect and login timed out")??;
            let resize = format!("42{}", json!(["resize", { "cols": COLS, "rows": ROWS }]));
            sink.lock().await.send(Message::text(resize)).await?;
            let frames = Arc::new(AtomicU64::new(0));
            let (output, received) = mpsc::channel(4);
            let reader = tokio::spawn(read(stream, sink.clone(), output, frames.clone()));
            let terminal: Box<dyn Terminal> = Box::new(WettyTerminal { sink, received, reader, wire, frames });
            Ok(terminal)
        })
    }
}

/// The writing half of a wetty socket.
type Sink = Arc<Mutex<SplitSink<WebSocketStream<Counted>, Message>>>;

/// Reads a wetty socket until it ends: answers pings, acknowledges output, forwards it.
async fn read(
    mut stream: SplitStream<WebSocketStream<Counted>>,
    sink: Sink,
    output: mpsc::Sender<Result<Bytes>>,
    frames: Arc<AtomicU64>,
) {
    let mut unacknowledged = 0u64;
    // Set by `logout`: wetty announces the exit at once but sends the last output up to 2 ms
    // later (it batches output), and leaves the socket open.
    let mut ending: Option<tokio::time::Instant> = None;
    loop {
        let next = match ending {
            Some(deadline) => match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => stream.next().await,
        };
        let Some(message) = next else { break };
        frames.fetch_add(1, Ordering::Relaxed);
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break,
            Ok(_) => continue,
            Err(error) => {
                let _ = output.send(Err(error.into())).await;
                return;
            }
        };
        let text = text.as_str();
        if text == "2" {
            if sink.lock().await.send(Message::text("3")).await.is_err() {
                break;
            }
            continue;
        }
        let Some(event) = text.strip_prefix("42") else { continue };
        let value: Value = match serde_json::from_str(event) {
            Ok(value) => value,
            Err(error) => {
                let _ = output.send(Err(format!("malformed socket.io event: {error}").into())).await;
                return;
            }
        };
        match (value.get(0).and_then(Value::as_str), value.get(1)) {
            (Some("data"), Some(Value::String(data))) => {
                unacknowledged += data.chars().count() as u64;
                while unacknowledged >= ACK_CHARS {
                    unacknowledged -= ACK_CHARS;
                    let commit = format!("42{}", json!(["commit", ACK_CHARS]));
                    if sink.lock().await.send(Message::text(commit)).await.is_err() {
                        return;
                    }
                }
                if output.send(Ok(Bytes::from(data.clone()))).await.is_err() {
                    return;
                }
            }
            (Some("logout"), _) => ending = Some(tokio::time::Instant::now() + LOGOUT_GRACE),
            _ => {}
        }
    }
}

/// One wetty terminal.
struct WettyTerminal {
    /// The writing half.
    sink: Sink,
    /// Output from the reader task; closed when the socket ends.
    received: mpsc::Receiver<Result<Bytes>>,
    /// The reader task.
    reader: tokio::task::JoinHandle<()>,
    /// Bytes read from the socket, and their count at the handshake.
    wire: (Arc<AtomicU64>, u64),
    /// Frames received.
    frames: Arc<AtomicU64>,
}

impl Terminal for WettyTerminal {
    fn send<'a>(&'a mut self, input: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let message = format!("42{}", json!(["input", String::from_utf8_lossy(input)]));
            self.sink.lock().await.send(Message::text(message)).await?;
            Ok(())
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Bytes>>> {
        Box::pin(async move { self.received.recv().await.transpose() })
    }

    fn wire(&self) -> Option<WireCount> {
        Some(WireCount {
            bytes: self.wire.0.load(Ordering::Relaxed) - self.wire.1,
            frames: self.frames.load(Ordering::Relaxed),
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        let WettyTerminal { sink, mut received, reader, .. } = *self;
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = sink.lock().await.close().await;
                while received.recv().await.is_some() {}
            })
            .await;
            reader.abort();
        })
    }
}
