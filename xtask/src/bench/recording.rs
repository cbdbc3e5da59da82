//! Figure 11, recording's cost: output throughput (figure 1's program and file) and keystroke
//! echo (figure 2's) of wssh with every shell recorded (`record_all_shells: true`, asciicast
//! written off the output path) against the same server without recording, taking turns; and
//! a long `cat` (1 GB; 64 MiB with `--quick`) into a recorded shell while the server's resident
//! set is sampled every [`SAMPLE_EVERY`]: start, peak and end, which must stay flat (the
//! recording queue is bounded and the history is 4 MiB at most). wssh only: no peer records.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::live::LiveSocket;
use super::stats::median;
use super::system::rss_kib;
use super::target::{Programs, Result, Target, contains, shell_quote};
use super::wssh::WsshTarget;
use super::{echo, throughput};

/// The long `cat`'s session.
pub(crate) const BIG_CAT_SESSION: &str = "bigcat";
/// How often the server's memory is sampled during the long `cat`.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long the long `cat` may take.
const RUN_LIMIT: Duration = Duration::from_secs(900);
/// How long a step other than the `cat` may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// The long `cat`: like the throughput program, with the file printed `times` times.
pub(crate) fn big_cat_session(file: &Path, times: u64) -> serde_json::Value {
    let script = format!(
        "echo ready; read line; i=0; while [ $i -lt {times} ]; do cat {}; i=$((i+1)); done; \
         echo BENCH-$((40+2))-END; read line",
        shell_quote(file)
    );
    json!({ "name": BIG_CAT_SESSION, "cmd": "sh", "args": ["-c", script], "dir": Programs::DIR })
}

/// How many times the file is printed for about `bytes`.
pub(crate) fn times(bytes: u64, file_bytes: u64) -> u64 {
    bytes.div_ceil(file_bytes.max(1)).max(1)
}

/// One long `cat`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BigCat {
    /// Output bytes received.
    pub(crate) payload_bytes: u64,
    /// Seconds from the go-ahead to the sentinel.
    pub(crate) seconds: f64,
    /// The server's `VmRSS` at the go-ahead, in KiB.
    pub(crate) rss_start_kib: u64,
    /// The largest sample, in KiB.
    pub(crate) rss_peak_kib: u64,
    /// At the sentinel, in KiB.
    pub(crate) rss_end_kib: u64,
    /// Every sample, in KiB.
    pub(crate) rss_samples_kib: Vec<u64>,
    /// The size of the recordings in the data directory after the shell ended, in bytes.
    pub(crate) recording_bytes: u64,
}

/// The whole figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// Throughput without and with recording (figure 1's measurement).
    pub(crate) throughput: Vec<throughput::Figure>,
    /// Echo without and with recording (figure 2's measurement).
    pub(crate) echo: Vec<echo::Figure>,
    /// The recorded target's name.
    pub(crate) recorded: String,
    /// The long `cat`s, one per run.
    pub(crate) big_cat: Vec<BigCat>,
}

/// The sizes of the figure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Rounds of the throughput and echo parts.
    pub(crate) runs: usize,
    /// Long `cat`s.
    pub(crate) heavy_runs: usize,
    /// The throughput file's size.
    pub(crate) file_bytes: u64,
    /// Echo samples per target.
    pub(crate) echo_samples: usize,
    /// Ticks per second of `/proc` CPU times.
    pub(crate) ticks: u64,
}

/// Runs the figure: `plain` and `recorded` take turns in the throughput and echo parts; the
/// long `cat` runs on new instances of `recorded`.
pub(crate) async fn measure(plain: &WsshTarget, recorded: &WsshTarget, sizes: Sizes) -> Result<Figure> {
    let pair: Vec<Arc<dyn Target>> = vec![Arc::new(plain.clone()), Arc::new(recorded.clone())];
    let throughput = throughput::measure(&pair, sizes.runs, sizes.file_bytes, sizes.ticks).await?;
    let echo = echo::measure(&pair, sizes.runs, sizes.echo_samples).await?;
    let mut big_cat = Vec::new();
    for run in 0..sizes.heavy_runs {
        let cat = big_cat_once(recorded).await.map_err(|error| format!("recording, long cat: {error}"))?;
        eprintln!(
            "  long cat {}/{} {:<28} {:>6.0} MB in {:.1} s, RSS start {} / peak {} / end {} KiB, recording {:.0} MB",
            run + 1,
            sizes.heavy_runs,
            recorded.name(),
            cat.payload_bytes as f64 / 1e6,
            cat.seconds,
            cat.rss_start_kib,
            cat.rss_peak_kib,
            cat.rss_end_kib,
            cat.recording_bytes as f64 / 1e6
        );
        big_cat.push(cat);
    }
    Ok(Figure { throughput, echo, recorded: recorded.name().to_owned(), big_cat })
}

/// One long `cat` into a recorded shell on a new instance, sampling the server's memory.
async fn big_cat_once(recorded: &WsshTarget) -> Result<BigCat> {
    let (instance, access) = recorded.start_with_api().await?;
    let pid = access.pid;
    let mut socket = LiveSocket::connect(&access, &format!("/{BIG_CAT_SESSION}"), true).await?;
    let shell = socket.hello(STEP_LIMIT).await?.shell;
    let mut seen = Vec::new();
    while !contains(&seen, Programs::READY) {
        seen.extend_from_slice(&socket.data(STEP_LIMIT).await?);
    }
    let rss_start_kib = rss_kib(pid)?;
    let mut rss_samples_kib = vec![rss_start_kib];
    let start = Instant::now();
    socket.send(b"\r").await?;
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    let mut payload_bytes = 0u64;
    let mut tail: Vec<u8> = Vec::with_capacity(128);
    loop {
        tokio::select! {
            _ = ticker.tick() => rss_samples_kib.push(rss_kib(pid)?),
            data = tokio::time::timeout_at(deadline, socket.data(STEP_LIMIT)) => {
                let data = data.map_err(|_| format!("no sentinel within {RUN_LIMIT:?}"))??;
                payload_bytes += data.len() as u64;
                tail.extend_from_slice(&data[data.len().saturating_sub(64)..]);
                if tail.len() > 64 {
                    tail.drain(..tail.len() - 64);
                }
                if contains(&tail, Programs::SENTINEL) {
                    break;
                }
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let rss_end_kib = rss_kib(pid)?;
    rss_samples_kib.push(rss_end_kib);
    socket.close().await;
    // The figure's servers end a shell with its connection; the close may have done it.
    super::live::end_shell_unless_ended(&access, &shell).await?;
    // The recording is finished once the shell has ended.
    let recording_bytes = wait_for_recording(&access.folder.join("data")).await;
    drop(instance);
    Ok(BigCat {
        payload_bytes,
        seconds,
        rss_start_kib,
        rss_peak_kib: rss_samples_kib.iter().copied().max().unwrap_or(rss_start_kib),
        rss_end_kib,
        rss_samples_kib,
        recording_bytes,
    })
}

/// The recordings' size in `folder`, once it stops growing for 200 ms (at most [`STEP_LIMIT`]).
async fn wait_for_recording(folder: &Path) -> u64 {
    let deadline = tokio::time::Instant::now() + STEP_LIMIT;
    let mut last = 0;
    loop {
        let size = recordings_size(folder);
        if (size == last && size > 0) || tokio::time::Instant::now() > deadline {
            return size;
        }
        last = size;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The total size of the `.cast` files (compressed or not) under `folder`.
fn recordings_size(folder: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else { return 0 };
    entries
        .filter_map(std::result::Result::ok)
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                recordings_size(&path)
            } else if path.to_string_lossy().contains(".cast") {
                entry.metadata().map(|metadata| metadata.len()).unwrap_or(0)
            } else {
                0
            }
        })
        .sum()
}

/// The median of `values`, for the report.
pub(crate) fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    median(&values.collect::<Vec<_>>())
}
