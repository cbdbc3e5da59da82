//! Figure 1, output throughput: a terminal `cat`s a generated file of printable lines; how
//! many payload bytes per second arrive until the sentinel line does, and what that costs the
//! server (CPU seconds per GB), in frames per MB and in wire bytes per payload byte.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::median;
use super::system::{cpu_ticks, machine_ticks, rss_kib};
use super::target::{Instance, Program, Programs, Result, Target, contains, start_all};

/// The length of a line of the generated file, newline included.
pub(crate) const LINE: u64 = 80;
/// How long one run may take at most.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// How long the program may take to say `ready`.
const READY_LIMIT: Duration = Duration::from_secs(20);

/// Writes `bytes` (rounded down to whole lines) of lines of pseudo-random printable ASCII
/// (space to `~`) to `path`; returns the file's size. Random text is the hard case for a
/// compressing framing: gzip gets it down to about 0.83 of its size, where real terminal
/// output (logs, listings, source) compresses several-fold.
pub(crate) fn generate_file(path: &Path, bytes: u64) -> Result<u64> {
    let lines = bytes / LINE;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut line = vec![b'\n'; usize::try_from(LINE)?];
    // xorshift64: deterministic, so every run prints the same file.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..lines {
        for byte in &mut line[..usize::try_from(LINE - 1)?] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = b' ' + ((state >> 32) % 95) as u8;
        }
        file.write_all(&line)?;
    }
    file.flush()?;
    Ok(lines * LINE)
}

/// One run against one target.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Output bytes received from the go-ahead to the sentinel (the terminal turns each `\n`
    /// into `\r\n`, so this exceeds the file's size).
    pub(crate) payload_bytes: u64,
    /// Seconds from sending the go-ahead to receiving the sentinel.
    pub(crate) seconds: f64,
    /// Payload bytes per second.
    pub(crate) bytes_per_second: f64,
    /// The server's CPU time (user + system) during the run, when there is a server.
    pub(crate) server_cpu_seconds: Option<f64>,
    /// Bytes read from the socket during the run, when there is a socket.
    pub(crate) wire_bytes: Option<u64>,
    /// Frames received during the run, when there is a socket.
    pub(crate) frames: Option<u64>,
    /// The server's `VmRSS` at the end of the run, in KiB, when there is a server.
    pub(crate) server_rss_kib: Option<u64>,
    /// The bench client's own CPU time (user + system) during the run, in seconds: the reader
    /// of the raw PTY, the WebSocket client of the others.
    pub(crate) client_cpu_seconds: f64,
    /// How much of all the machine's cores was busy during the run (0 to 1): the program and
    /// the kernel's terminal work, the server, the client, and anything else.
    pub(crate) machine_busy: f64,
}

/// One target's runs and their medians.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Every run, in order.
    pub(crate) runs: Vec<Run>,
    /// Median throughput, in MB/s (10^6 bytes).
    pub(crate) mb_per_second: f64,
    /// Median server CPU seconds per GB (10^9 payload bytes).
    pub(crate) cpu_seconds_per_gb: Option<f64>,
    /// Median frames per MB of payload.
    pub(crate) frames_per_mb: Option<f64>,
    /// Median wire bytes per payload byte.
    pub(crate) wire_per_payload: Option<f64>,
    /// Median bench-client CPU seconds per GB.
    pub(crate) client_cpu_seconds_per_gb: f64,
    /// Median share of the machine's cores busy during a run (0 to 1).
    pub(crate) machine_busy: f64,
}

/// Runs the figure on an instance of each target: `runs` rounds, each target once per round,
/// each round starting one target later (A B C, B C A, C A B …), so that no target always
/// runs right after the same other one.
pub(crate) async fn measure(
    targets: &[Arc<dyn Target>],
    runs: usize,
    file_bytes: u64,
    ticks_per_second: u64,
) -> Result<Vec<Figure>> {
    let instances = start_all(targets).await?;
    let mut all: Vec<Vec<Run>> = vec![Vec::new(); targets.len()];
    for round in 0..runs {
        for index in (0..targets.len()).map(|index| (index + round) % targets.len()) {
            let (target, instance) = (&targets[index], &instances[index]);
            let run = run_once(instance.as_ref(), file_bytes, ticks_per_second)
                .await
                .map_err(|error| format!("throughput, {}: {error}", target.name()))?;
            eprintln!(
                "  throughput {}/{runs} {:<28} {:>8.1} MB/s",
                round + 1,
                target.name(),
                run.bytes_per_second / 1e6
            );
            all[index].push(run);
        }
    }
    Ok(targets.iter().zip(all).map(|(target, runs)| summarise(target.name(), runs)).collect())
}

/// The medians of one target's runs.
fn summarise(name: &str, runs: Vec<Run>) -> Figure {
    let of = |value: &dyn Fn(&Run) -> Option<f64>| -> Option<f64> {
        let values: Option<Vec<f64>> = runs.iter().map(value).collect();
        values.map(|values| median(&values))
    };
    let mb_per_second = of(&|run| Some(run.bytes_per_second / 1e6)).unwrap_or(f64::NAN);
    let cpu_seconds_per_gb = of(&|run| Some(run.server_cpu_seconds? / (run.payload_bytes as f64 / 1e9)));
    let frames_per_mb = of(&|run| Some(run.frames? as f64 / (run.payload_bytes as f64 / 1e6)));
    let wire_per_payload = of(&|run| Some(run.wire_bytes? as f64 / run.payload_bytes as f64));
    let client_cpu_seconds_per_gb =
        of(&|run| Some(run.client_cpu_seconds / (run.payload_bytes as f64 / 1e9))).unwrap_or(f64::NAN);
    let machine_busy = of(&|run| Some(run.machine_busy)).unwrap_or(f64::NAN);
    Figure {
        target: name.to_owned(),
        runs,
        mb_per_second,
        cpu_seconds_per_gb,
        frames_per_mb,
        wire_per_payload,
        client_cpu_seconds_per_gb,
        machine_busy,
    }
}

/// One run: open, wait for `ready`, send the go-ahead, count output until the sentinel.
async fn run_once(instance: &dyn Instance, file_bytes: u64, ticks_per_second: u64) -> Result<Run> {
    let mut terminal = instance.open(Program::Throughput).await?;
    terminal.recv_until(Programs::READY, READY_LIMIT).await?;
    let pid = instance.server_pid(Program::Throughput);
    let wire_before = terminal.wire();
    let cpu_before = pid.map(cpu_ticks).transpose()?;
    let client_before = cpu_ticks(std::process::id())?;
    let machine_before = machine_ticks()?;
    let start = Instant::now();
    terminal.send(b"\r").await?;
    let deadline = tokio::time::Instant::from_std(start + RUN_LIMIT);
    let mut payload_bytes = 0u64;
    // The last bytes of the output, enough to hold the sentinel across chunk boundaries.
    let mut tail: Vec<u8> = Vec::with_capacity(256);
    loop {
        let chunk = tokio::time::timeout_at(deadline, terminal.recv())
            .await
            .map_err(|_| format!("no sentinel within {RUN_LIMIT:?} ({payload_bytes} bytes received)"))??
            .ok_or_else(|| format!("the terminal ended before the sentinel ({payload_bytes} bytes received)"))?;
        payload_bytes += chunk.len() as u64;
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(64)..]);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
        if contains(&tail, Programs::SENTINEL) {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let machine_after = machine_ticks()?;
    let client_after = cpu_ticks(std::process::id())?;
    let cpu_after = pid.map(cpu_ticks).transpose()?;
    let server_rss_kib = pid.map(rss_kib).transpose()?;
    let wire_after = terminal.wire();
    terminal.close().await;
    // Every line arrives, with `\r\n` for `\n`.
    let expected = file_bytes + file_bytes / LINE;
    if payload_bytes < expected {
        return Err(format!("output lost: {payload_bytes} bytes received, at least {expected} expected").into());
    }
    let server_cpu_seconds = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before) as f64 / ticks_per_second as f64),
        _ => None,
    };
    let (wire_bytes, frames) = match (wire_before, wire_after) {
        (Some(before), Some(after)) => (Some(after.bytes - before.bytes), Some(after.frames - before.frames)),
        _ => (None, None),
    };
    Ok(Run {
        payload_bytes,
        seconds,
        bytes_per_second: payload_bytes as f64 / seconds,
        server_cpu_seconds,
        wire_bytes,
        frames,
        server_rss_kib,
        client_cpu_seconds: client_after.saturating_sub(client_before) as f64 / ticks_per_second as f64,
        machine_busy: (machine_after.0.saturating_sub(machine_before.0)) as f64
            / (machine_after.1.saturating_sub(machine_before.1)).max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_file_is_whole_printable_lines() {
        let path = std::env::temp_dir().join(format!("wssh-bench-lines-{}.txt", std::process::id()));
        let size = generate_file(&path, 1000).unwrap();
        let text = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(size, 960);
        assert_eq!(text.len(), 960);
        assert!(text.split(|&byte| byte == b'\n').all(|line| line.iter().all(|byte| (b' '..=b'~').contains(byte))));
        assert_eq!(text.iter().filter(|&&byte| byte == b'\n').count(), 12);
    }
}
