//! Figure 10, server memory per idle detached shell: the server's resident set with many idle
//! `cat` shells that no client is attached to (each opened, confirmed by an echo, then its
//! connection closed: the shell lives on for the detach timeout, 300 s by default), minus what
//! it was before, divided by the number of shells; and beside it the output their histories
//! hold (`output_bytes` of `GET /api/shells`), so that the target (≤ 16 KiB per shell beside
//! the history's bytes) can be read off. wssh only: ttyd and wetty end a program with its
//! connection (no such feature); terminado's named terminals outlive their connection, but
//! its per-connection terminals are what the other figures start (not measured).

use std::time::Duration;

use serde::Serialize;

use super::live::{LiveSocket, end_shell, list_shells};
use super::stats::median;
use super::system::{child_count, rss_kib};
use super::target::{Result, Target as _};
use super::wssh::{ApiAccess, WsshTarget};

/// Shells opened at once.
const CONCURRENCY: usize = 2;
/// Shells opened, detached and ended before the baseline (warmed-up allocator state).
const WARM_UP: usize = 4;
/// How long to let the server settle before reading its memory.
const SETTLE: Duration = Duration::from_millis(500);
/// How long any step may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// The server's `VmRSS` before, in KiB.
    pub(crate) rss_before_kib: u64,
    /// The server's `VmRSS` with the detached shells, in KiB.
    pub(crate) rss_after_kib: u64,
    /// Detached shells.
    pub(crate) shells: usize,
    /// Output bytes their histories hold, in all.
    pub(crate) history_bytes: u64,
    /// (after − before) / shells, in KiB.
    pub(crate) per_shell_kib: f64,
}

/// One target's runs and medians.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Every run.
    pub(crate) runs: Vec<Run>,
    /// Median KiB per detached shell.
    pub(crate) per_shell_kib: f64,
    /// Median history bytes per shell.
    pub(crate) history_bytes_per_shell: f64,
}

/// Runs the figure: `runs` rounds, each on a new instance of each target, `shells` shells.
pub(crate) async fn measure(targets: &[&WsshTarget], runs: usize, shells: usize) -> Result<Vec<Figure>> {
    let mut all: Vec<Vec<Run>> = vec![Vec::new(); targets.len()];
    for round in 0..runs {
        for (target, results) in targets.iter().zip(&mut all) {
            let (instance, access) = target.start_with_api().await?;
            let run = run_once(&access, shells)
                .await
                .map_err(|error| format!("detached memory, {}: {error}", target.name()))?;
            drop(instance);
            eprintln!(
                "  detached memory {}/{runs} {:<28} {:>8.1} KiB/shell ({:.0} history bytes/shell)",
                round + 1,
                target.name(),
                run.per_shell_kib,
                run.history_bytes as f64 / run.shells as f64
            );
            results.push(run);
        }
    }
    Ok(targets
        .iter()
        .zip(all)
        .map(|(target, runs)| Figure {
            target: target.name().to_owned(),
            per_shell_kib: median(&runs.iter().map(|run| run.per_shell_kib).collect::<Vec<_>>()),
            history_bytes_per_shell: median(
                &runs.iter().map(|run| run.history_bytes as f64 / run.shells as f64).collect::<Vec<_>>(),
            ),
            runs,
        })
        .collect())
}

/// Opens a `cat` shell, waits for its echo and closes the connection (the shell stays,
/// detached); returns its id.
async fn detached_shell(access: &ApiAccess) -> Result<String> {
    let mut socket = LiveSocket::connect(access, "/cat", true).await?;
    let shell = socket.hello(STEP_LIMIT).await?.shell;
    socket.send(b"i").await?;
    socket.data(STEP_LIMIT).await?;
    socket.close().await;
    Ok(shell)
}

/// Opens `count` detached shells, [`CONCURRENCY`] at a time.
async fn detach_many(access: &ApiAccess, count: usize) -> Result<Vec<String>> {
    use futures_util::StreamExt as _;
    let ids: Vec<Result<String>> = futures_util::stream::iter((0..count).map(|_| detached_shell(access)))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    ids.into_iter().collect()
}

/// Waits until the server lists `count` shells, all detached; returns their history bytes.
async fn wait_detached(access: &ApiAccess, count: usize) -> Result<u64> {
    let deadline = tokio::time::Instant::now() + STEP_LIMIT;
    loop {
        let shells = list_shells(access).await?;
        if shells.len() == count && shells.iter().all(|shell| shell.detached_since.is_some()) {
            return Ok(shells.iter().map(|shell| shell.output_bytes).sum());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{} shells listed, {count} detached expected", shells.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the server has no child processes left.
async fn wait_for_reaping(pid: u32) -> Result<()> {
    let deadline = tokio::time::Instant::now() + STEP_LIMIT;
    while child_count(pid) > 0 {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("the server still has {} children after {STEP_LIMIT:?}", child_count(pid)).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One run: warm up (open, detach, end with `DELETE /api/shells/{id}`), baseline, `shells`
/// detached shells, measure, end them.
async fn run_once(access: &ApiAccess, shells: usize) -> Result<Run> {
    let pid = access.pid;
    for shell in detach_many(access, WARM_UP).await? {
        end_shell(access, &shell).await?;
    }
    wait_for_reaping(pid).await?;
    wait_detached(access, 0).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_before_kib = rss_kib(pid)?;
    let ids = detach_many(access, shells).await?;
    let history_bytes = wait_detached(access, shells).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_after_kib = rss_kib(pid)?;
    let children = child_count(pid);
    if children < shells {
        return Err(format!("{shells} detached shells but the server has {children} children").into());
    }
    for shell in &ids {
        end_shell(access, shell).await?;
    }
    Ok(Run {
        rss_before_kib,
        rss_after_kib,
        shells,
        history_bytes,
        per_shell_kib: (rss_after_kib as f64 - rss_before_kib as f64) / shells as f64,
    })
}
