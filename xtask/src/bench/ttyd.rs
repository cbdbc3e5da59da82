//! ttyd, the reference C web terminal (libwebsockets), as a bench target, spoken to in its
//! `tty` subprotocol.
//!
//! One ttyd serves every program: it runs `env` with the arguments the client puts in the URL
//! (`-a`, `/ws?arg=cat`), and `env` execs them, so each terminal runs exactly the program's
//! argument vector. The protocol, as ttyd 1.7.7 speaks it (checked by experiment):
//!
//! * the client's first message is JSON, `{"AuthToken":"","columns":80,"rows":24}`; ttyd
//!   spawns the program on receiving it;
//! * client messages: `'0'` + input, `'1'` + resize JSON (binary frames);
//! * server messages: `'0'` + output, `'1'` + window title, `'2'` + preferences JSON.
//!
//! ttyd exits on the first SIGTERM when idle but asks for a second one while clients are
//! connected; [`super::process`] escalates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::process::ServerProcess;
use super::target::{BoxFuture, COLS, Instance, Program, Programs, ROWS, Result, Target, Terminal, WireCount};
use super::ws::{Socket, query_escape};

/// How long ttyd may take to listen.
const START_LIMIT: Duration = Duration::from_secs(20);

/// ttyd from the cache.
pub(crate) struct Ttyd {
    /// The binary.
    binary: PathBuf,
    /// Parent of the instances' folders.
    work: PathBuf,
    /// The command lines.
    programs: Arc<Programs>,
    /// Instances started, to name their folders.
    started: AtomicU64,
}

impl Ttyd {
    /// ttyd from `binary`, logging under `work`.
    pub(crate) fn new(binary: PathBuf, work: PathBuf, programs: Arc<Programs>) -> Ttyd {
        Ttyd { binary, work, programs, started: AtomicU64::new(0) }
    }
}

impl Target for Ttyd {
    fn name(&self) -> &str {
        "ttyd"
    }

    fn start(&self) -> BoxFuture<'_, Result<Box<dyn Instance>>> {
        Box::pin(async move {
            let number = self.started.fetch_add(1, Ordering::Relaxed);
            let log = self.work.join(format!("ttyd-{number}.log"));
            let mut command = Command::new(&self.binary);
            command
                .args(["--interface", "127.0.0.1", "--port", "0", "--writable", "--url-arg", "--cwd", Programs::DIR])
                .arg("env")
                .current_dir(Programs::DIR);
            let mut process = ServerProcess::spawn("ttyd", command, &log)?;
            let port = process.wait_for_port("Listening on port:", START_LIMIT).await?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let instance: Box<dyn Instance> = Box::new(TtydInstance { process, addr, programs: self.programs.clone() });
            Ok(instance)
        })
    }
}

/// A running ttyd.
struct TtydInstance {
    /// The process.
    process: ServerProcess,
    /// Where it listens.
    addr: SocketAddr,
    /// The command lines.
    programs: Arc<Programs>,
}

impl Instance for TtydInstance {
    fn server_pid(&self, _program: Program) -> Option<u32> {
        Some(self.process.pid())
    }

    fn open(&self, program: Program) -> BoxFuture<'_, Result<Box<dyn Terminal>>> {
        Box::pin(async move {
            let query: Vec<String> =
                self.programs.argv(program).iter().map(|arg| format!("arg={}", query_escape(arg))).collect();
            let mut request = format!("ws://{}/ws?{}", self.addr, query.join("&")).into_client_request()?;
            request.headers_mut().insert("sec-websocket-protocol", "tty".parse()?);
            let mut socket = Socket::connect(self.addr, request).await?;
            let hello = serde_json::json!({ "AuthToken": "", "columns": COLS, "rows": ROWS }).to_string();
            socket.stream.send(Message::Binary(Bytes::from(hello))).await?;
            let terminal: Box<dyn Terminal> = Box::new(TtydTerminal { socket });
            Ok(terminal)
        })
    }
}

/// One ttyd terminal.
struct TtydTerminal {
    /// The connection.
    socket: Socket,
}

impl Terminal for TtydTerminal {
    fn send<'a>(&'a mut self, input: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut frame = Vec::with_capacity(1 + input.len());
            frame.push(b'0');
            frame.extend_from_slice(input);
            self.socket.stream.send(Message::Binary(frame.into())).await?;
            Ok(())
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Bytes>>> {
        Box::pin(async move {
            loop {
                let Some(message) = self.socket.next_message().await? else { return Ok(None) };
                let frame = match message {
                    Message::Binary(frame) => frame,
                    Message::Text(text) => Bytes::from(text),
                    Message::Close(_) => return Ok(None),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                };
                match frame.first() {
                    Some(b'0') => return Ok(Some(frame.slice(1..))),
                    Some(b'1' | b'2') => {}
                    other => return Err(format!("unknown ttyd message {other:?}").into()),
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
