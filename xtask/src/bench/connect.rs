//! Figure 7, connect time: from opening the TCP connection (WebSocket handshake,
//! authentication, PTY spawn) to the first byte of the program's output. For the raw PTY, from
//! the spawn to the first byte.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::{percentile, shares};
use super::target::{Instance, Program, Result, Target, start_all};

/// How long one connect may take at most.
const CONNECT_LIMIT: Duration = Duration::from_secs(20);

/// One target's samples, summarised.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Connects measured.
    pub(crate) samples: usize,
    /// Median, in microseconds.
    pub(crate) p50_us: f64,
    /// 99th percentile, in microseconds.
    pub(crate) p99_us: f64,
    /// Median of the first part: handshake and authentication (for the raw PTY, the spawn), in
    /// microseconds.
    pub(crate) open_p50_us: f64,
}

/// Runs the figure on an instance of each target: `total` connects per target, split over
/// `rounds` rounds with the targets taking turns (A B A B …).
pub(crate) async fn measure(targets: &[Arc<dyn Target>], rounds: usize, total: usize) -> Result<Vec<Figure>> {
    let instances = start_all(targets).await?;
    let mut all: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut opens: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for (round, count) in shares(total, rounds).into_iter().enumerate() {
        for (((target, instance), samples), opens) in targets.iter().zip(&instances).zip(&mut all).zip(&mut opens) {
            let before = samples.len();
            for _ in 0..count {
                let sample = tokio::time::timeout(CONNECT_LIMIT, connect_once(instance.as_ref()))
                    .await
                    .map_err(|_| format!("connect, {}: no output within {CONNECT_LIMIT:?}", target.name()))?
                    .map_err(|error| format!("connect, {}: {error}", target.name()))?;
                samples.push(sample.total);
                opens.push(sample.open);
            }
            eprintln!(
                "  connect {}/{rounds} {:<28} p50 {:>8.2} ms",
                round + 1,
                target.name(),
                percentile(&samples[before..], 50.0) / 1e3
            );
        }
    }
    Ok(targets
        .iter()
        .zip(all)
        .zip(opens)
        .map(|((target, samples), opens)| Figure {
            target: target.name().to_owned(),
            samples: samples.len(),
            p50_us: percentile(&samples, 50.0),
            p99_us: percentile(&samples, 99.0),
            open_p50_us: percentile(&opens, 50.0),
        })
        .collect())
}

/// One connect's times, in microseconds.
struct Sample {
    /// Until [`Instance::open`] returned.
    open: f64,
    /// Until the first output byte.
    total: f64,
}

/// One connect.
async fn connect_once(instance: &dyn Instance) -> Result<Sample> {
    let start = Instant::now();
    let mut terminal = instance.open(Program::Ready).await?;
    let open = start.elapsed().as_secs_f64() * 1e6;
    loop {
        match terminal.recv().await? {
            Some(bytes) if !bytes.is_empty() => break,
            Some(_) => {}
            None => return Err("the terminal ended without output".into()),
        }
    }
    let total = start.elapsed().as_secs_f64() * 1e6;
    terminal.close().await;
    Ok(Sample { open, total })
}
