//! Figure 8, reattach time: a client drops its connection to a live shell (the TCP connection
//! ends without a WebSocket close, as when a network goes) and comes back with the offset of
//! the next byte it needs; the time from opening the new connection to the first resumed
//! output byte. Each resume is checked: the `0x04` message names the offset asked for, no gap
//! comes, and the resumed bytes continue the stream exactly.
//!
//! Two cases, each on its own shell: *idle*, a `cat` shell with nothing new to say (the client
//! comes back [`IDLE_BACK`] bytes early, as if the last bytes were lost in flight, and must get
//! those same bytes again), and *busy*, a program printing about 100 KB/s (the client resumes
//! from exactly what it had, while output goes on). ttyd and wetty have no such feature (a new
//! connection is a new program). terminado's named terminals (`NamedTermManager`) outlive
//! their WebSockets: a new WebSocket to the same name gets the terminal's buffer of recent
//! reads again, then live output; it has no offsets, so only the idle case can be checked
//! (the replay must be everything received so far); the busy case is timed, not checked.

use std::time::{Duration, Instant};

use futures_util::SinkExt as _;
use serde::Serialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::live::LiveSocket;
use super::stats::{percentile, shares};
use super::target::{COLS, Programs, ROWS, Result};
use super::terminado::Terminado;
use super::ws::Socket;
use super::wssh::{ApiAccess, WsshTarget};

/// The busy program's session.
pub(crate) const BUSY_SESSION: &str = "ticker";
/// Lines the busy program prints per burst (`seq 1 LINES`).
const LINES: u64 = 500;
/// How long the client reads output between drops.
const READ_FOR: Duration = Duration::from_millis(30);
/// How long the client is away.
const AWAY: Duration = Duration::from_millis(20);
/// Bytes the idle case asks for again.
const IDLE_BACK: u64 = 16;
/// How long any step may take.
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// The busy program: bursts of numbered lines, about 100 KB/s.
pub(crate) fn busy_session() -> serde_json::Value {
    json!({
        "name": BUSY_SESSION,
        "cmd": "sh",
        "args": ["-c", format!("while :; do seq 1 {LINES}; sleep 0.02; done")],
        "dir": Programs::DIR,
    })
}

/// One target and case, summarised.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// `idle` or `busy`.
    pub(crate) case: String,
    /// Reattaches timed (each checked exact).
    pub(crate) samples: usize,
    /// Median time to the first resumed byte, in microseconds.
    pub(crate) p50_us: f64,
    /// 99th percentile, in microseconds.
    pub(crate) p99_us: f64,
    /// The slowest, in microseconds.
    pub(crate) max_us: f64,
    /// Bytes received again or anew after the reattaches and checked to continue the stream;
    /// `None` where the target cannot say where it resumes (terminado, busy).
    pub(crate) checked_bytes: Option<u64>,
}

/// Runs the figure on one instance of each target: `total` reattaches per case, split over
/// `rounds` rounds with the cases taking turns, each round on a new shell.
pub(crate) async fn measure(
    targets: &[&WsshTarget],
    terminado: Option<&Terminado>,
    rounds: usize,
    total: usize,
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for target in targets {
        let (_instance, access) = target.start_with_api().await?;
        let mut idle = (Vec::new(), 0u64);
        let mut busy = (Vec::new(), 0u64);
        for (round, count) in shares(total, rounds).into_iter().enumerate() {
            let name = target_name(target);
            idle.1 +=
                idle_round(&access, count, &mut idle.0).await.map_err(|error| format!("reattach, idle: {error}"))?;
            busy.1 +=
                busy_round(&access, count, &mut busy.0).await.map_err(|error| format!("reattach, busy: {error}"))?;
            eprintln!(
                "  reattach {}/{rounds} {name:<28} idle p50 {:>7.0} µs, busy p50 {:>7.0} µs",
                round + 1,
                percentile(&idle.0, 50.0),
                percentile(&busy.0, 50.0)
            );
        }
        for (case, (samples, checked_bytes)) in [("idle", idle), ("busy", busy)] {
            figures.push(Figure {
                target: target_name(target),
                case: case.to_owned(),
                samples: samples.len(),
                p50_us: percentile(&samples, 50.0),
                p99_us: percentile(&samples, 99.0),
                max_us: percentile(&samples, 100.0),
                checked_bytes: Some(checked_bytes),
            });
        }
    }
    // A peer that fails here loses its rows, with the reason printed, and does not end the run.
    if let Some(terminado) = terminado {
        match measure_terminado(terminado, rounds, total).await {
            Ok(rows) => figures.extend(rows),
            Err(error) => eprintln!("bench: warning: reattach, terminado left out: {error}"),
        }
    }
    Ok(figures)
}

/// The target's name.
fn target_name(target: &WsshTarget) -> String {
    use super::target::Target as _;
    target.name().to_owned()
}

/// Opens a new shell of `session`; returns the connection and the shell's id.
async fn open(access: &ApiAccess, session: &str) -> Result<(LiveSocket, String)> {
    let mut socket = LiveSocket::connect(access, &format!("/{session}"), true).await?;
    let info = socket.hello(STEP_LIMIT).await?;
    if info.offset != 0 {
        return Err(format!("a new shell starts at offset {}", info.offset).into());
    }
    Ok((socket, info.shell))
}

/// Attaches to `shell` of `session` from `offset`; checks the `0x04` message.
async fn attach(access: &ApiAccess, session: &str, shell: &str, offset: u64) -> Result<LiveSocket> {
    let mut socket = LiveSocket::connect(access, &format!("/{session}?shell={shell}&offset={offset}"), false).await?;
    let info = socket.hello(STEP_LIMIT).await?;
    if info.shell != shell || info.offset != offset || info.mode != "control" {
        return Err(format!("asked for {shell} from {offset}, got {info:?}").into());
    }
    Ok(socket)
}

/// `count` reattaches to a new idle `cat` shell; appends the times (µs); returns the bytes checked.
async fn idle_round(access: &ApiAccess, count: usize, samples: &mut Vec<f64>) -> Result<u64> {
    let (mut socket, shell) = open(access, "cat").await?;
    let typed = b"idle-shell-reattach-probe";
    socket.send(typed).await?;
    let mut received = Vec::new();
    while received.len() < typed.len() {
        received.extend_from_slice(&socket.data(STEP_LIMIT).await?);
    }
    let end = received.len() as u64;
    let expected = received[received.len() - IDLE_BACK as usize..].to_vec();
    let mut checked = 0;
    for _ in 0..count {
        socket.drop_connection();
        tokio::time::sleep(AWAY).await;
        let start = Instant::now();
        socket = attach(access, "cat", &shell, end - IDLE_BACK).await?;
        let mut again = socket.data(STEP_LIMIT).await?.to_vec();
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        while again.len() < expected.len() {
            again.extend_from_slice(&socket.data(STEP_LIMIT).await?);
        }
        if again != expected {
            return Err(format!("resumed {again:?}, expected {expected:?}").into());
        }
        checked += again.len() as u64;
    }
    socket.close().await;
    super::live::end_shell(access, &shell).await?;
    Ok(checked)
}

/// `count` reattaches to a new busy shell; appends the times (µs); returns the bytes checked.
async fn busy_round(access: &ApiAccess, count: usize, samples: &mut Vec<f64>) -> Result<u64> {
    let (mut socket, shell) = open(access, BUSY_SESSION).await?;
    let mut lines = Lines::default();
    let mut offset = 0u64;
    let mut checked = 0;
    read_for(&mut socket, &mut lines, &mut offset).await?;
    for _ in 0..count {
        socket.drop_connection();
        tokio::time::sleep(AWAY).await;
        let start = Instant::now();
        socket = attach(access, BUSY_SESSION, &shell, offset).await?;
        let first = socket.data(STEP_LIMIT).await?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        let before = offset;
        lines.push(&first)?;
        offset += first.len() as u64;
        read_for(&mut socket, &mut lines, &mut offset).await?;
        checked += offset - before;
    }
    socket.close().await;
    super::live::end_shell(access, &shell).await?;
    Ok(checked)
}

/// Reads output for [`READ_FOR`], checking it and counting the offset.
async fn read_for(socket: &mut LiveSocket, lines: &mut Lines, offset: &mut u64) -> Result<()> {
    let until = tokio::time::Instant::now() + READ_FOR;
    loop {
        let Ok(data) = tokio::time::timeout_at(until, socket.data(STEP_LIMIT)).await else { return Ok(()) };
        let data = data?;
        lines.push(&data)?;
        *offset += data.len() as u64;
    }
}

/// Checks that the busy program's output arrives whole: every line is the number after the
/// one before (1 after [`LINES`]), whatever the reattaches in between.
#[derive(Default)]
struct Lines {
    /// The line begun and not ended yet.
    partial: Vec<u8>,
    /// The last whole line's number.
    last: Option<u64>,
}

impl Lines {
    /// Takes more output.
    fn push(&mut self, data: &[u8]) -> Result<()> {
        for &byte in data {
            if byte != b'\n' {
                self.partial.push(byte);
                continue;
            }
            let text = std::str::from_utf8(&self.partial)?.trim_end_matches('\r');
            let number: u64 = text.parse().map_err(|_| format!("not a line of the program: {text:?}"))?;
            if let Some(last) = self.last {
                let next = if last == LINES { 1 } else { last + 1 };
                if number != next {
                    return Err(format!("line {number} followed line {last}: output lost or doubled").into());
                }
            }
            self.last = Some(number);
            self.partial.clear();
        }
        Ok(())
    }
}

/// terminado's side: a server with named `cat` and busy terminals, `total` reattaches per case.
async fn measure_terminado(terminado: &Terminado, rounds: usize, total: usize) -> Result<Vec<Figure>> {
    let busy = busy_session();
    let mut routes = serde_json::Map::new();
    routes.insert("named-cat".into(), json!(["cat"]));
    routes.insert(format!("named-{BUSY_SESSION}"), json!([busy["cmd"], busy["args"][0], busy["args"][1]]));
    let (_process, addr) = terminado.spawn(routes).await?;
    let (mut idle, mut busy) = ((Vec::new(), 0u64), Vec::new());
    for (round, count) in shares(total, rounds).into_iter().enumerate() {
        let name = format!("r{round}");
        idle.1 += terminado_idle(addr, &name, count, &mut idle.0)
            .await
            .map_err(|error| format!("reattach, terminado, idle: {error}"))?;
        terminado_busy(addr, &name, count, &mut busy)
            .await
            .map_err(|error| format!("reattach, terminado, busy: {error}"))?;
        eprintln!(
            "  reattach {}/{rounds} {:<28} idle p50 {:>7.0} µs, busy p50 {:>7.0} µs",
            round + 1,
            "terminado",
            percentile(&idle.0, 50.0),
            percentile(&busy, 50.0)
        );
    }
    let figure = |case: &str, samples: &[f64], checked_bytes| Figure {
        target: "terminado".to_owned(),
        case: case.to_owned(),
        samples: samples.len(),
        p50_us: percentile(samples, 50.0),
        p99_us: percentile(samples, 99.0),
        max_us: percentile(samples, 100.0),
        checked_bytes,
    };
    Ok(vec![figure("idle", &idle.0, Some(idle.1)), figure("busy", &busy, None)])
}

/// A terminado WebSocket to the named terminal `path` (`/named-PROGRAM/TERM`), sized 80×24.
async fn terminado_connect(addr: std::net::SocketAddr, path: &str) -> Result<Socket> {
    let request = format!("ws://{addr}{path}").into_client_request()?;
    let mut socket = Socket::connect(addr, request).await?;
    socket.stream.send(Message::text(json!(["set_size", ROWS, COLS]).to_string())).await?;
    Ok(socket)
}

/// terminado's next output, within [`STEP_LIMIT`].
async fn terminado_output(socket: &mut Socket) -> Result<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + STEP_LIMIT;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next_message())
            .await
            .map_err(|_| "no output in time")??
            .ok_or("the connection closed")?;
        let Message::Text(text) = message else { continue };
        let value: serde_json::Value = serde_json::from_str(text.as_str())?;
        match (value.get(0).and_then(serde_json::Value::as_str), value.get(1)) {
            (Some("stdout"), Some(serde_json::Value::String(output))) => return Ok(output.clone().into_bytes()),
            (Some("setup"), _) => {}
            _ => return Err(format!("unexpected terminado message {:.80}", text.as_str()).into()),
        }
    }
}

/// Types `input` into terminado's terminal.
async fn terminado_send(socket: &mut Socket, input: &str) -> Result<()> {
    socket.stream.send(Message::text(json!(["stdin", input]).to_string())).await?;
    Ok(())
}

/// terminado, idle: the replay after each reattach must be everything received so far.
async fn terminado_idle(addr: std::net::SocketAddr, name: &str, count: usize, samples: &mut Vec<f64>) -> Result<u64> {
    let path = format!("/named-cat/{name}");
    let mut socket = terminado_connect(addr, &path).await?;
    let typed = "idle-shell-reattach-probe";
    terminado_send(&mut socket, typed).await?;
    let mut received = Vec::new();
    while received.len() < typed.len() {
        received.extend(terminado_output(&mut socket).await?);
    }
    let mut checked = 0;
    for _ in 0..count {
        drop(socket);
        tokio::time::sleep(AWAY).await;
        let start = Instant::now();
        socket = terminado_connect(addr, &path).await?;
        let mut again = terminado_output(&mut socket).await?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        while again.len() < received.len() {
            again.extend(terminado_output(&mut socket).await?);
        }
        if again != received {
            return Err(format!("replayed {:?}, expected {:?}", String::from_utf8_lossy(&again), typed).into());
        }
        checked += again.len() as u64;
    }
    // Ctrl-D ends `cat`, and the named terminal with it.
    terminado_send(&mut socket, "\u{4}").await?;
    socket.close().await;
    Ok(checked)
}

/// terminado, busy: timed to the first byte after each reattach (the buffer's replay).
async fn terminado_busy(addr: std::net::SocketAddr, name: &str, count: usize, samples: &mut Vec<f64>) -> Result<()> {
    let path = format!("/named-{BUSY_SESSION}/{name}");
    let mut socket = terminado_connect(addr, &path).await?;
    terminado_output(&mut socket).await?;
    for _ in 0..count {
        let until = tokio::time::Instant::now() + READ_FOR;
        while tokio::time::timeout_at(until, terminado_output(&mut socket)).await.is_ok() {}
        drop(socket);
        tokio::time::sleep(AWAY).await;
        let start = Instant::now();
        socket = terminado_connect(addr, &path).await?;
        terminado_output(&mut socket).await?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    // Ctrl-C ends the loop, and the named terminal with it.
    terminado_send(&mut socket, "\u{3}").await?;
    socket.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_must_follow_each_other() {
        let mut lines = Lines::default();
        lines.push(b"499\r\n50").unwrap();
        lines.push(b"0\r\n1\r\n2\r\n").unwrap();
        assert!(lines.push(b"4\r\n").is_err());
        let mut doubled = Lines::default();
        doubled.push(b"7\r\n8\r\n").unwrap();
        assert!(doubled.push(b"8\r\n").is_err());
    }
}
