//! Figure 13, many idle connections (issue 18): one client address (127.0.0.1) opens 10,000
//! connections and holds them, half idle (nothing sent) and half half-sent (a request line and
//! one header, never the blank line). Meanwhile `/healthz` is probed from another address, and
//! a real user (a third address) logs in with a password and opens a shell, again and again.
//! The server's per-address cap refuses most of the 10,000; the figure counts how many were
//! accepted and refused, gives `/healthz` p50/p99 quiet and held, the real user's login and
//! shell times, and the server's RSS before, while held and after.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::chart::{self, Caption, Chart};
use super::loopback::{self, Probes, USER};
use super::stats::{median, percentile};
use super::system::rss_kib;
use super::target::{Program, Result, Target as _};
use super::wssh::{self, WsshTarget};

/// Connections opened at once.
const OPEN_CONCURRENCY: usize = 256;
/// How often `/healthz` is probed.
const PROBE_PERIOD: Duration = Duration::from_millis(10);
/// What a half-sent connection sends: a request without its blank line.
const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n";

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Connections the client tried to hold.
    pub(crate) connections: usize,
    /// Of those, still open after they were all opened.
    pub(crate) accepted: usize,
    /// Of those, closed by the server (or refused at connect).
    pub(crate) refused: usize,
    /// Of the accepted ones, still open at the end of the hold.
    pub(crate) held_at_end: usize,
    /// `/healthz` with nothing else happening.
    pub(crate) quiet: Probes,
    /// `/healthz` while the connections are held.
    pub(crate) held: Probes,
    /// The real user's password logins while held, in microseconds.
    pub(crate) login_us: Vec<f64>,
    /// The real user's shells while held: connect to the echo of a first keystroke, in µs.
    pub(crate) shell_us: Vec<f64>,
    /// The real user's logins and shells that failed.
    pub(crate) user_errors: usize,
    /// Server RSS before, in KiB.
    pub(crate) rss_before_kib: u64,
    /// Server RSS at the end of the hold.
    pub(crate) rss_held_kib: u64,
    /// Server RSS 2 s after the connections were closed.
    pub(crate) rss_after_kib: u64,
}

/// The figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// How long the connections were held, in seconds.
    pub(crate) hold_seconds: f64,
    /// Every run.
    pub(crate) runs: Vec<Run>,
}

/// Runs the figure: `runs` runs, each on a fresh server, holding `connections` for `hold`.
pub(crate) async fn measure(target: &WsshTarget, runs: usize, connections: usize, hold: Duration) -> Result<Figure> {
    let mut all = Vec::with_capacity(runs);
    for round in 0..runs {
        let (instance, access) = target.start_with_api().await?;
        let pid = instance.server_pid(Program::Cat).ok_or("no server process")?;
        let addr = access.addr;
        let rss_before_kib = rss_kib(pid)?;
        let quiet = loopback::probe_healthz(addr, PROBE_PERIOD, tokio::time::sleep(hold)).await;

        // Open them all, `OPEN_CONCURRENCY` at a time.
        let mut streams: Vec<TcpStream> = futures_util::stream::iter(0..connections)
            .map(|index| async move {
                let mut stream = TcpStream::connect(addr).await.ok()?;
                if index % 2 == 1 {
                    // A closed connection may refuse the bytes; it is counted below.
                    let _ = stream.write_all(HALF_SENT).await;
                }
                Some(stream)
            })
            .buffer_unordered(OPEN_CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        streams.retain(is_open);
        let accepted = streams.len();

        // Hold them: probe /healthz, and have the real user log in and open a shell.
        let deadline = Instant::now() + hold;
        let held = loopback::probe_healthz(addr, PROBE_PERIOD, tokio::time::sleep(hold));
        let user = async {
            let (mut login_us, mut shell_us, mut errors) = (Vec::new(), Vec::new(), 0);
            while Instant::now() < deadline {
                match loopback::login(addr, USER, "admin", &access.password).await {
                    Ok((200, took)) => login_us.push(took.as_secs_f64() * 1e6),
                    _ => errors += 1,
                }
                let started = Instant::now();
                let shell = async {
                    let mut terminal = wssh::open_from(&access, USER, Program::Cat).await?;
                    terminal.send(b"x").await?;
                    terminal.recv_until(b"x", loopback::REQUEST_LIMIT).await?;
                    terminal.close().await;
                    Ok::<(), super::target::Error>(())
                };
                match shell.await {
                    Ok(()) => shell_us.push(started.elapsed().as_secs_f64() * 1e6),
                    Err(_) => errors += 1,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (login_us, shell_us, errors)
        };
        let (held, (login_us, shell_us, user_errors)) = futures_util::future::join(held, user).await;
        let rss_held_kib = rss_kib(pid)?;
        streams.retain(is_open);
        let held_at_end = streams.len();
        drop(streams);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after_kib = rss_kib(pid)?;
        let run = Run {
            connections,
            accepted,
            refused: connections - accepted,
            held_at_end,
            quiet,
            held,
            login_us,
            shell_us,
            user_errors,
            rss_before_kib,
            rss_held_kib,
            rss_after_kib,
        };
        eprintln!(
            "  idle connections {}/{runs} {}: {} accepted, {} refused; /healthz p99 {:.2} ms quiet, {:.2} ms held \
             ({} errors); login p50 {:.1} ms, shell p50 {:.1} ms, {} user errors",
            round + 1,
            target.name(),
            run.accepted,
            run.refused,
            run.quiet.ms(99.0),
            run.held.ms(99.0),
            run.held.errors,
            percentile(&run.login_us, 50.0) / 1e3,
            percentile(&run.shell_us, 50.0) / 1e3,
            run.user_errors
        );
        all.push(run);
    }
    Ok(Figure { target: target.name().to_owned(), hold_seconds: hold.as_secs_f64(), runs: all })
}

/// Whether the server has not closed `stream` (nothing to read and no end of stream).
fn is_open(stream: &TcpStream) -> bool {
    let mut byte = [0; 1];
    matches!(stream.try_read(&mut byte), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
}

impl Figure {
    /// The median over runs of `value`.
    fn of(&self, value: impl Fn(&Run) -> f64) -> f64 {
        median(&self.runs.iter().map(value).collect::<Vec<_>>())
    }

    /// The figure's table, appended to `out`.
    pub(crate) fn table(&self, out: &mut String) {
        let Some(first) = self.runs.first() else { return };
        let _ = writeln!(
            out,
            "\n### 13. {} connections held by one client address for {} s (median of {} runs)\n",
            first.connections,
            self.hold_seconds,
            self.runs.len()
        );
        let _ = writeln!(
            out,
            "| target | accepted | refused | still open at end | /healthz p50 ms quiet → held | /healthz p99 ms quiet → held | \
             /healthz errors | login p50 ms | shell p50 ms | user errors | RSS MiB before / held / after |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mib = |kib: u64| kib as f64 / 1024.0;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} → {:.2} | {:.2} → {:.2} | {} | {:.1} | {:.1} | {} | {:.1} / {:.1} / {:.1} |",
            self.target,
            self.of(|run| run.accepted as f64),
            self.of(|run| run.refused as f64),
            self.of(|run| run.held_at_end as f64),
            self.of(|run| run.quiet.ms(50.0)),
            self.of(|run| run.held.ms(50.0)),
            self.of(|run| run.quiet.ms(99.0)),
            self.of(|run| run.held.ms(99.0)),
            self.runs.iter().map(|run| run.held.errors + run.quiet.errors).sum::<usize>(),
            self.of(|run| percentile(&run.login_us, 50.0) / 1e3),
            self.of(|run| percentile(&run.shell_us, 50.0) / 1e3),
            self.runs.iter().map(|run| run.user_errors).sum::<usize>(),
            self.of(|run| mib(run.rss_before_kib)),
            self.of(|run| mib(run.rss_held_kib)),
            self.of(|run| mib(run.rss_after_kib)),
        );
        let _ = writeln!(out, "\ntarget: /healthz within 100 ms while held; the real user logs in and opens a shell");
    }

    /// The figure's chart: `/healthz` quiet and held.
    pub(crate) fn chart(&self, caption: Caption<'_>) -> Chart {
        let connections = self.runs.first().map_or(0, |run| run.connections);
        chart::bars(
            "13-idle-connections.svg",
            &format!("11. /healthz while one address holds {connections} connections (lower is better)"),
            caption,
            "ms",
            &["p50", "p99"],
            &[
                ("quiet".to_owned(), vec![self.of(|run| run.quiet.ms(50.0)), self.of(|run| run.quiet.ms(99.0))]),
                ("held".to_owned(), vec![self.of(|run| run.held.ms(50.0)), self.of(|run| run.held.ms(99.0))]),
            ],
        )
    }
}
