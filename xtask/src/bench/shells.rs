//! Figure 4, many concurrent shells: 1,000 `cat` shells open at once on one server, each
//! typing one keystroke a second for 30 s; errors (shells that failed to open, echoes that did
//! not come back within [`ECHO_LIMIT`]) and the echo round trip's p50 and p99 over all shells.
//!
//! Each run starts a new instance. The bench raises its own open-files limit first
//! ([`raise_open_files`]), and the servers it starts inherit it; the server's limit is recorded.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::{median, percentile};
use super::system::{child_count, open_files_limit, rss_kib};
use super::target::{Instance, Program, Result, Target, Terminal};

/// Shells opened at once.
const OPEN_CONCURRENCY: usize = 16;
/// How long one shell may take to open and echo.
const OPEN_LIMIT: Duration = Duration::from_secs(30);
/// How long all shells together may take to open.
const ALL_OPEN_LIMIT: Duration = Duration::from_secs(300);
/// How long an echo may take before it counts as an error.
pub(crate) const ECHO_LIMIT: Duration = Duration::from_secs(5);
/// Keystrokes per line before an untimed carriage return.
const LINE_LIMIT: usize = 64;

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Shells asked for.
    pub(crate) shells: usize,
    /// Shells that opened (and echoed once).
    pub(crate) opened: usize,
    /// Seconds it took to open them, [`OPEN_CONCURRENCY`] at a time.
    pub(crate) open_seconds: f64,
    /// Echoes timed.
    pub(crate) echoes: usize,
    /// Shells that failed to open plus echoes that failed or timed out.
    pub(crate) errors: usize,
    /// Echo round trip p50, in microseconds.
    pub(crate) p50_us: f64,
    /// Echo round trip p99, in microseconds.
    pub(crate) p99_us: f64,
    /// The server's `VmRSS` with every shell open, in KiB.
    pub(crate) server_rss_kib: Option<u64>,
    /// The server's soft open-files limit.
    pub(crate) server_open_files: Option<u64>,
}

/// One target's runs and their medians.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Every run, in order.
    pub(crate) runs: Vec<Run>,
    /// Errors, all runs together.
    pub(crate) errors: usize,
    /// Median over runs of the p50, in microseconds.
    pub(crate) p50_us: f64,
    /// Median over runs of the p99, in microseconds.
    pub(crate) p99_us: f64,
}

/// Raises this process's soft open-files limit to its hard limit (with util-linux's `prlimit`,
/// which keeps xtask free of `unsafe` and of nix features the server does not use: a feature
/// only xtask enabled would make every bench rebuild the server); returns the soft limit.
pub(crate) fn raise_open_files() -> Result<u64> {
    let pid = std::process::id();
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let hard = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files")?.split_whitespace().nth(1).map(str::to_owned))
        .ok_or("no open-files limit in /proc/self/limits")?;
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .map_err(|error| format!("prlimit: {error}"))?;
    if !status.success() {
        return Err(format!("prlimit failed ({status})").into());
    }
    open_files_limit(pid).ok_or_else(|| "no open-files limit in /proc/self/limits".into())
}

/// Runs the figure: `runs` rounds, the targets taking turns, each on a new instance with
/// `shells` shells typing once a second for `seconds`.
pub(crate) async fn measure(
    targets: &[Arc<dyn Target>],
    runs: usize,
    shells: usize,
    seconds: u64,
) -> Result<Vec<Figure>> {
    let mut all: Vec<Vec<Run>> = vec![Vec::new(); targets.len()];
    for round in 0..runs {
        for (target, results) in targets.iter().zip(&mut all) {
            let instance = target.start().await.map_err(|error| format!("cannot start {}: {error}", target.name()))?;
            let run = run_once(instance.as_ref(), shells, seconds)
                .await
                .map_err(|error| format!("shells, {}: {error}", target.name()))?;
            eprintln!(
                "  shells {}/{runs} {:<28} {} open in {:.1} s, {} errors, p99 {:.1} ms",
                round + 1,
                target.name(),
                run.opened,
                run.open_seconds,
                run.errors,
                run.p99_us / 1e3
            );
            results.push(run);
            drop(instance);
        }
    }
    Ok(targets
        .iter()
        .zip(all)
        .map(|(target, runs)| Figure {
            target: target.name().to_owned(),
            errors: runs.iter().map(|run| run.errors).sum(),
            p50_us: median(&runs.iter().map(|run| run.p50_us).collect::<Vec<_>>()),
            p99_us: median(&runs.iter().map(|run| run.p99_us).collect::<Vec<_>>()),
            runs,
        })
        .collect())
}

/// Opens a `cat` shell and waits for its first echo.
async fn open_shell(instance: &dyn Instance) -> Result<Box<dyn Terminal>> {
    tokio::time::timeout(OPEN_LIMIT, async {
        let mut terminal = instance.open(Program::Cat).await?;
        terminal.send(b"i").await?;
        terminal.recv_until(b"i", OPEN_LIMIT).await?;
        Ok(terminal)
    })
    .await
    .map_err(|_| format!("no shell within {OPEN_LIMIT:?}"))?
}

/// One run: open the shells, let them type, close them.
///
/// Each shell is one future: it opens (at most [`OPEN_CONCURRENCY`] at a time), then reads
/// while it waits for the others (so the connection answers the server's pings, as a browser's
/// would: ttyd hangs up on a client that leaves its pings unanswered), then types. The typing
/// starts when every shell has opened or failed to.
async fn run_once(instance: &dyn Instance, shells: usize, seconds: u64) -> Result<Run> {
    let started = Instant::now();
    let period = Duration::from_secs(1);
    let gate = tokio::sync::Semaphore::new(OPEN_CONCURRENCY);
    let (go, start) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
    let settled = Cell::new(0usize);
    let (gate, settled) = (&gate, &settled);
    let shell = |index: usize| {
        let mut start = start.clone();
        async move {
            let terminal = {
                let _permit = gate.acquire().await.map_err(|_| "the run ended")?;
                open_shell(instance).await
            };
            settled.set(settled.get() + 1);
            let mut terminal = terminal?;
            let begin = loop {
                if let Some(begin) = *start.borrow_and_update() {
                    break begin;
                }
                tokio::select! {
                    changed = start.changed() => changed.map_err(|_| "the run ended before the typing")?,
                    output = terminal.recv() => {
                        if output?.is_none() {
                            return Err("the terminal ended while waiting for the others".into());
                        }
                    }
                }
            };
            // Spread the shells evenly over the period.
            let first = begin + period.mul_f64(index as f64 / shells as f64);
            Ok::<_, super::target::Error>(type_periodically(terminal, first, period, seconds).await)
        }
    };
    let pid = instance.server_pid(Program::Cat);
    let coordinator = async move {
        let deadline = Instant::now() + ALL_OPEN_LIMIT;
        while settled.get() < shells {
            if Instant::now() > deadline {
                return Err(format!("{shells} shells did not open within {ALL_OPEN_LIMIT:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let open_seconds = started.elapsed().as_secs_f64();
        let begin = tokio::time::Instant::now() + Duration::from_millis(100);
        let _ = go.send(Some(begin));
        // The server's memory and limits, read halfway through.
        tokio::time::sleep_until(begin + Duration::from_secs(seconds) / 2).await;
        let memory = pid.and_then(|pid| rss_kib(pid).ok());
        Ok::<_, super::target::Error>((open_seconds, memory, pid.and_then(open_files_limit)))
    };
    let limit = ALL_OPEN_LIMIT + Duration::from_secs(seconds) + period + ECHO_LIMIT * 2;
    let typed = futures_util::future::join_all((0..shells).map(shell));
    let (typed, coordinated) = tokio::time::timeout(limit, futures_util::future::join(typed, coordinator))
        .await
        .map_err(|_| format!("the shells did not finish within {limit:?}"))?;
    let (open_seconds, server_rss_kib, server_open_files) = coordinated?;
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut terminals = Vec::with_capacity(shells);
    for outcome in typed {
        match outcome {
            Ok((shell_samples, failures, terminal)) => {
                samples.extend(shell_samples);
                errors += failures;
                terminals.push(terminal);
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    let opened = terminals.len();
    if let Some(error) = first_error {
        eprintln!("  shells: {} of {shells} shells failed to open; the first: {error}", shells - opened);
    }
    if opened == 0 {
        return Err("no shell opened".into());
    }
    let children = pid.map(child_count);
    futures_util::future::join_all(terminals.into_iter().map(|terminal| terminal.close())).await;
    if let Some(children) = children
        && children < opened
    {
        eprintln!("  shells: {opened} shells open but the server has only {children} children");
    }
    Ok(Run {
        shells,
        opened,
        open_seconds,
        echoes: samples.len(),
        errors,
        p50_us: percentile(&samples, 50.0),
        p99_us: percentile(&samples, 99.0),
        server_rss_kib,
        server_open_files,
    })
}

/// Types one keystroke every `period`, the first at `first`, `count` times (bounded: each
/// echo waits at most [`ECHO_LIMIT`]), reading in between so that the connection answers
/// pings; returns the round trips in µs, the failures and the terminal. A failed echo ends the
/// shell's typing: its remaining keystrokes count as failures.
pub(crate) async fn type_periodically(
    mut terminal: Box<dyn Terminal>,
    first: tokio::time::Instant,
    period: Duration,
    count: u64,
) -> (Vec<f64>, usize, Box<dyn Terminal>) {
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut next = first;
    let mut line = 1;
    for done in 0..count {
        let result = async {
            idle_until(terminal.as_mut(), next).await?;
            if line == LINE_LIMIT {
                // Untimed: the newline's echo, then cat's copy of the line.
                terminal.send(b"\r").await?;
                expect(terminal.as_mut(), 2 + line + 2).await?;
                line = 0;
            }
            let start = Instant::now();
            terminal.send(b"x").await?;
            expect(terminal.as_mut(), 1).await?;
            Ok::<_, super::target::Error>(start.elapsed())
        }
        .await;
        next += period;
        match result {
            Ok(elapsed) => {
                samples.push(elapsed.as_secs_f64() * 1e6);
                line += 1;
            }
            Err(_) => {
                let failures = usize::try_from(count - done).unwrap_or(usize::MAX);
                return (samples, failures, terminal);
            }
        }
    }
    (samples, 0, terminal)
}

/// Reads (and drops) output until `until`, so that an idle connection answers pings.
async fn idle_until(terminal: &mut dyn Terminal, until: tokio::time::Instant) -> Result<()> {
    loop {
        match tokio::time::timeout_at(until, terminal.recv()).await {
            Err(_) => return Ok(()),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => return Err("the terminal ended".into()),
            Ok(Err(error)) => return Err(error),
        }
    }
}

/// Waits for exactly `count` output bytes, within [`ECHO_LIMIT`] (shells echo one byte per
/// keystroke, so nothing more arrives unasked).
async fn expect(terminal: &mut dyn Terminal, count: usize) -> Result<()> {
    let deadline = tokio::time::Instant::now() + ECHO_LIMIT;
    let mut seen = 0;
    while seen < count {
        let chunk = tokio::time::timeout_at(deadline, terminal.recv())
            .await
            .map_err(|_| "no echo in time")??
            .ok_or("the terminal ended")?;
        seen += chunk.len();
    }
    Ok(())
}
