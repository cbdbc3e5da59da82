//! Figure 3, server memory per idle shell: the server's resident set with many idle `cat`
//! shells open, minus what it was before, divided by the number of shells.
//!
//! Each run starts a new instance ([`Target::start`]): memory a process has freed stays in its
//! allocator and would be reused by the next run's shells, hiding them.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
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
            eprintln!("  memory {}/{runs} {:<22} {:>8.1} KiB/shell", round + 1, target.name(), run.per_shell_kib);
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

/// Opens `count` idle shells, [`CONCURRENCY`] at a time.
async fn open_many(instance: &dyn Instance, count: usize) -> Result<Vec<Box<dyn Terminal>>> {
    let opened: Vec<Result<Box<dyn Terminal>>> = futures_util::stream::iter(0..count)
        .map(|_| idle_shell(instance))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// Closes every terminal, all at once.
async fn close_all(terminals: Vec<Box<dyn Terminal>>) {
    futures_util::future::join_all(terminals.into_iter().map(|terminal| terminal.close())).await;
}

/// Waits until the server has no child processes left (the shells of earlier runs).
async fn wait_for_reaping(pid: u32) -> Result<()> {
    let deadline = tokio::time::Instant::now() + REAP_LIMIT;
    while child_count(pid) > 0 {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("the server still has {} children after {REAP_LIMIT:?}", child_count(pid)).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One run: warm up, baseline, open `shells`, measure, close.
async fn run_once(instance: &dyn Instance, shells: usize) -> Result<Run> {
    let pid = instance.server_pid(Program::Cat).ok_or("no server process")?;
    close_all(open_many(instance, WARM_UP).await?).await;
    wait_for_reaping(pid).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_before_kib = rss_kib(pid)?;
    let terminals = open_many(instance, shells).await?;
    tokio::time::sleep(SETTLE).await;
    let children = child_count(pid);
    let rss_after_kib = rss_kib(pid);
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
