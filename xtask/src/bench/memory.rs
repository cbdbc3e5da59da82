//! Figure 3, server memory per idle shell: the server's resident set with many idle `cat`
//! shells open, minus what it was before, divided by the number of shells.
//!
//! Each run starts a new instance ([`Target::start`]): memory a process has freed stays in its
//! allocator and would be reused by the next run's shells, hiding them.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::stats::median;
use super::system::{child_count, rss_kib};
use super::target::{Instance, Program, Result, Target, Terminal};

/// Shells opened at once (the server hashes as many passwords at once as it has cores).
const CONCURRENCY: usize = 2;
/// Shells opened and closed before the baseline, so it includes warmed-up allocator state.
const WARM_UP: usize = 4;
/// How long to let the server settle before reading its memory.
const SETTLE: Duration = Duration::from_millis(500);
/// How long a shell may take to open and echo.
const OPEN_LIMIT: Duration = Duration::from_secs(30);
/// How long all shells together may take to open.
const ALL_OPEN_LIMIT: Duration = Duration::from_secs(300);
/// How long the server may take to end the shells after their clients left.
const REAP_LIMIT: Duration = Duration::from_secs(20);

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// The server's `VmRSS` before opening the shells, in KiB.
    pub(crate) rss_before_kib: u64,
    /// The server's `VmRSS` with the shells open, in KiB.
    pub(crate) rss_after_kib: u64,
    /// Shells open.
    pub(crate) shells: usize,
    /// (after − before) / shells, in KiB.
    pub(crate) per_shell_kib: f64,
}

/// One target's runs and their median.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Every run, in order.
    pub(crate) runs: Vec<Run>,
    /// Median KiB per idle shell.
    pub(crate) per_shell_kib: f64,
}

/// Runs the figure: `runs` rounds, the targets taking turns, `shells` idle shells each time on
/// a new instance. Targets without a server process are skipped.
pub(crate) async fn measure(targets: &[Arc<dyn Target>], runs: usize, shells: usize) -> Result<Vec<Figure>> {
    let mut all: Vec<Vec<Run>> = vec![Vec::new(); targets.len()];
    for round in 0..runs {
        for (target, results) in targets.iter().zip(&mut all) {
            let instance = target.start().await.map_err(|error| format!("cannot start {}: {error}", target.name()))?;
            if instance.server_pid(Program::Cat).is_none() {
                continue;
            }
            let run = run_once(instance.as_ref(), shells)
                .await
                .map_err(|error| format!("memory, {}: {error}", target.name()))?;
            eprintln!("  memory {}/{runs} {:<28} {:>8.1} KiB/shell", round + 1, target.name(), run.per_shell_kib);
            results.push(run);
        }
    }
    Ok(targets
        .iter()
        .zip(all)
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(target, runs)| Figure {
            target: target.name().to_owned(),
            per_shell_kib: median(&runs.iter().map(|run| run.per_shell_kib).collect::<Vec<_>>()),
            runs,
        })
        .collect())
}

/// Opens a `cat` shell and waits for its echo, so the program is surely running.
async fn idle_shell(instance: &dyn Instance) -> Result<Box<dyn Terminal>> {
    let mut terminal = instance.open(Program::Cat).await?;
    terminal.send(b"i").await?;
    terminal.recv_until(b"i", OPEN_LIMIT).await?;
    Ok(terminal)
}

/// Opens `count` idle shells, [`CONCURRENCY`] at a time, and once every one has opened runs
/// `during` while all of them keep reading (so that they answer the server's pings, as a
/// browser would; ttyd hangs up on a client that does not); returns the shells and what
/// `during` returned.
async fn hold_open<T>(
    instance: &dyn Instance,
    count: usize,
    during: impl Future<Output = T>,
) -> Result<(Vec<Box<dyn Terminal>>, T)> {
    let gate = tokio::sync::Semaphore::new(CONCURRENCY);
    let (release, released) = tokio::sync::watch::channel(false);
    let settled = Cell::new(0usize);
    let (gate, settled) = (&gate, &settled);
    let shell = |_| {
        let mut released = released.clone();
        async move {
            let terminal = {
                let _permit = gate.acquire().await.map_err(|_| "the run ended")?;
                idle_shell(instance).await
            };
            settled.set(settled.get() + 1);
            let mut terminal = terminal?;
            while !*released.borrow_and_update() {
                tokio::select! {
                    changed = released.changed() => changed.map_err(|_| "the run ended while the shells were open")?,
                    output = terminal.recv() => {
                        if output?.is_none() {
                            return Err("an idle terminal ended".into());
                        }
                    }
                }
            }
            Ok::<_, super::target::Error>(terminal)
        }
    };
    let coordinator = async move {
        let deadline = tokio::time::Instant::now() + ALL_OPEN_LIMIT;
        while settled.get() < count {
            if tokio::time::Instant::now() > deadline {
                return Err(format!("{count} shells did not open within {ALL_OPEN_LIMIT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let value = during.await;
        let _ = release.send(true);
        Ok(value)
    };
    let (terminals, value) =
        futures_util::future::join(futures_util::future::join_all((0..count).map(shell)), coordinator).await;
    let value = value?;
    let terminals: Result<Vec<_>> = terminals.into_iter().collect();
    Ok((terminals?, value))
}

/// Closes every terminal, all at once.
async fn close_all(terminals: Vec<Box<dyn Terminal>>) {
    futures_util::future::join_all(terminals.into_iter().map(|terminal| terminal.close())).await;
}

/// Waits until the server has no child processes left (the shells of earlier runs). A server
/// that keeps some longer (ttyd, now and then) is measured anyway, with a warning: its children
/// are not part of its own RSS, and one straggler must not end the whole bench.
async fn wait_for_reaping(pid: u32) -> Result<()> {
    let deadline = tokio::time::Instant::now() + REAP_LIMIT;
    while child_count(pid) > 0 {
        if tokio::time::Instant::now() > deadline {
            eprintln!("bench: warning: the server still has {} children after {REAP_LIMIT:?}", child_count(pid));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One run: warm up, baseline, open `shells`, measure, close.
async fn run_once(instance: &dyn Instance, shells: usize) -> Result<Run> {
    let pid = instance.server_pid(Program::Cat).ok_or("no server process")?;
    close_all(hold_open(instance, WARM_UP, async {}).await?.0).await;
    wait_for_reaping(pid).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_before_kib = rss_kib(pid)?;
    let settle = async {
        tokio::time::sleep(SETTLE).await;
        (child_count(pid), rss_kib(pid))
    };
    let (terminals, (children, rss_after_kib)) = hold_open(instance, shells, settle).await?;
    close_all(terminals).await;
    if children < shells {
        return Err(format!("{shells} shells open but the server has {children} children").into());
    }
    let rss_after_kib = rss_after_kib?;
    wait_for_reaping(pid).await?;
    Ok(Run {
        rss_before_kib,
        rss_after_kib,
        shells,
        per_shell_kib: (rss_after_kib as f64 - rss_before_kib as f64) / shells as f64,
    })
}
