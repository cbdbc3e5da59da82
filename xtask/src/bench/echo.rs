//! Figure 2, keystroke echo round trip: one byte typed into `cat` on a terminal in its
//! default (canonical, echoing) mode, timed until the terminal's echo of it arrives back.
//!
//! Every [`LINE_LIMIT`] keystrokes a carriage return ends the line (untimed) and its echo and
//! `cat`'s copy of the line are drained, so the terminal's line buffer never fills.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::{percentile, shares};
use super::target::{Instance, Program, Result, Target, Terminal, start_all};

/// Keystrokes per line.
const LINE_LIMIT: usize = 64;
/// How long one echo may take at most.
const ECHO_LIMIT: Duration = Duration::from_secs(5);
/// How long the first echo (program start included) may take.
const FIRST_LIMIT: Duration = Duration::from_secs(20);

/// One target's samples, summarised.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Round trips measured.
    pub(crate) samples: usize,
    /// Median round trip, in microseconds.
    pub(crate) p50_us: f64,
    /// 99th percentile round trip, in microseconds.
    pub(crate) p99_us: f64,
    /// Slowest round trip, in microseconds.
    pub(crate) max_us: f64,
}

/// Runs the figure on an instance of each target: `total` samples per target, split over
/// `rounds` rounds with the targets taking turns (A B A B …), each round on a fresh terminal.
pub(crate) async fn measure(targets: &[Arc<dyn Target>], rounds: usize, total: usize) -> Result<Vec<Figure>> {
    let instances = start_all(targets).await?;
    let mut all: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for (round, count) in shares(total, rounds).into_iter().enumerate() {
        for ((target, instance), samples) in targets.iter().zip(&instances).zip(&mut all) {
            let before = samples.len();
            round_trips(instance.as_ref(), count, samples)
                .await
                .map_err(|error| format!("echo, {}: {error}", target.name()))?;
            eprintln!(
                "  echo {}/{rounds} {:<28} p50 {:>6.0} µs",
                round + 1,
                target.name(),
                percentile(&samples[before..], 50.0)
            );
        }
    }
    Ok(targets
        .iter()
        .zip(all)
        .map(|(target, samples)| Figure {
            target: target.name().to_owned(),
            samples: samples.len(),
            p50_us: percentile(&samples, 50.0),
            p99_us: percentile(&samples, 99.0),
            max_us: percentile(&samples, 100.0),
        })
        .collect())
}

/// Output received beyond what has been waited for.
struct Echoes {
    /// The terminal.
    terminal: Box<dyn Terminal>,
    /// Bytes received and not yet accounted for.
    credit: usize,
}

impl Echoes {
    /// Waits until `count` more bytes have arrived.
    async fn expect(&mut self, count: usize, limit: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.credit < count {
            let chunk = tokio::time::timeout_at(deadline, self.terminal.recv())
                .await
                .map_err(|_| format!("no echo within {limit:?}"))??
                .ok_or("the terminal ended")?;
            self.credit += chunk.len();
        }
        self.credit -= count;
        Ok(())
    }
}

/// `count` timed round trips on a fresh `cat` terminal, appended to `samples` (µs).
async fn round_trips(instance: &dyn Instance, count: usize, samples: &mut Vec<f64>) -> Result<()> {
    let mut echoes = Echoes { terminal: instance.open(Program::Cat).await?, credit: 0 };
    // Untimed: the terminal is up once its first echo is back.
    echoes.terminal.send(b"w").await?;
    echoes.expect(1, FIRST_LIMIT).await?;
    let mut line = 1;
    for _ in 0..count {
        if line == LINE_LIMIT {
            // The echo of the newline (`\r\n`), then cat's copy of the line and its `\r\n`.
            echoes.terminal.send(b"\r").await?;
            echoes.expect(2 + line + 2, ECHO_LIMIT).await?;
            line = 0;
        }
        let start = Instant::now();
        echoes.terminal.send(b"x").await?;
        echoes.expect(1, ECHO_LIMIT).await?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        line += 1;
    }
    echoes.terminal.close().await;
    Ok(())
}
