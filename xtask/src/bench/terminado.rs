//! terminado, the WebSocket PTY server behind Jupyter's terminals, as a bench target.
//!
//! `terminado_server.py` (next to this file, written into the scratch folder at run time) runs
//! one tornado process that offers every program on its own path, each with a
//! `UniqueTermManager` (a fresh PTY per WebSocket). The protocol is JSON text arrays:
//! the client sends `["set_size", rows, cols]` and `["stdin", text]`; the server sends
//! `["setup", {}]`, `["stdout", text]` and `["disconnect", 1]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::process::ServerProcess;
use super::target::{BoxFuture, COLS, Instance, Program, Programs, ROWS, Result, Target, Terminal, WireCount};
use super::ws::Socket;

/// The launcher script.
const LAUNCHER: &str = include_str!("terminado_server.py");
/// How long Python and tornado may take to listen.
const START_LIMIT: Duration = Duration::from_secs(30);

/// terminado from the cache's venv.
pub(crate) struct Terminado {
    /// The venv's Python.
    python: PathBuf,
    /// Parent of the instances' logs; holds the launcher.
    work: PathBuf,
    /// The command lines.
    programs: Arc<Programs>,
    /// Instances started, to name their logs.
    started: AtomicU64,
}

impl Terminado {
    /// terminado run by `python`, logging under `work`.
    pub(crate) fn new(python: PathBuf, work: PathBuf, programs: Arc<Programs>) -> Terminado {
        Terminado { python, work, programs, started: AtomicU64::new(0) }
    }
}

impl Target for Terminado {
    fn name(&self) -> &str {
        "terminado"
    }

    fn start(&self) -> BoxFuture<'_, Result<Box<dyn Instance>>> {
        Box::pin(async move {
            let routes: serde_json::Map<String, Value> = Program::ALL
                .iter()
                .map(|&program| (program.session_name().to_owned(), json!(self.programs.argv(program))))
                .collect();
            let (process, addr) = self.spawn(routes).await?;
            let instance: Box<dyn Instance> = Box::new(TerminadoInstance { process, addr });
            Ok(instance)
        })
    }
}

impl Terminado {
    /// Starts terminado serving `routes` (path name → argument vector; a name starting with
    /// `named-` is served at `/NAME/TERM` by a `NamedTermManager`, whose terminals outlive
    /// their WebSockets); returns the process and where it listens.
    pub(crate) async fn spawn(&self, routes: serde_json::Map<String, Value>) -> Result<(ServerProcess, SocketAddr)> {
        let number = self.started.fetch_add(1, Ordering::Relaxed);
        let script = self.work.join("terminado_server.py");
        std::fs::write(&script, LAUNCHER)?;
        let mut command = Command::new(&self.python);
        command.arg(&script).arg(Value::Object(routes).to_string()).arg(Programs::DIR).current_dir(Programs::DIR);
        let log = self.work.join(format!("terminado-{number}.log"));
        let mut process = ServerProcess::spawn("terminado", command, &log)?;
        let port = process.wait_for_port("listening on", START_LIMIT).await?;
        Ok((process, SocketAddr::from(([127, 0, 0, 1], port))))
    }
}

/// A running terminado.
struct TerminadoInstance {
    /// The process.
    process: ServerProcess,
    /// Where it listens.
    addr: SocketAddr,
}

impl Instance for TerminadoInstance {
    fn server_pid(&self, _program: Program) -> Option<u32> {
        Some(self.process.pid())
    }

    fn open(&self, program: Program) -> BoxFuture<'_, Result<Box<dyn Terminal>>> {
        Box::pin(async move {
            let request = format!("ws://{}/{}", self.addr, program.session_name()).into_client_request()?;
            let mut socket = Socket::connect(self.addr, request).await?;
            let size = json!(["set_size", ROWS, COLS]).to_string();
            socket.stream.send(Message::text(size)).await?;
            let terminal: Box<dyn Terminal> = Box::new(TerminadoTerminal { socket });
            Ok(terminal)
        })
    }
}

/// One terminado terminal.
struct TerminadoTerminal {
    /// The connection.
    socket: Socket,
}

impl Terminal for TerminadoTerminal {
    fn send<'a>(&'a mut self, input: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let message = json!(["stdin", String::from_utf8_lossy(input)]).to_string();
            self.socket.stream.send(Message::text(message)).await?;
            Ok(())
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Bytes>>> {
        Box::pin(async move {
            loop {
                let Some(message) = self.socket.next_message().await? else { return Ok(None) };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Binary(_) => return Err("terminado sent a binary frame".into()),
                    Message::Close(_) => return Ok(None),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                };
                let value: Value = serde_json::from_str(text.as_str())?;
                match (value.get(0).and_then(Value::as_str), value.get(1)) {
                    (Some("stdout"), Some(Value::String(output))) => return Ok(Some(Bytes::from(output.clone()))),
                    (Some("setup"), _) => {}
                    (Some("disconnect"), _) => return Ok(None),
                    _ => return Err(format!("unexpected terminado message {:.80}", text.as_str()).into()),
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
