//! Figure 9, one controller and [`OBSERVERS`] observers on one live shell: the controller's
//! keystroke echo round trip alone and with the observers attached (`mode=observe`, from
//! offset 0), and whether every observer received every byte the controller did.
//!
//! The controller types into `cat` as in figure 2 (a line ended, untimed, every 64
//! keystrokes). Each observer reads in a task of its own; at the end its whole stream is
//! compared byte for byte with the controller's. wssh only: ttyd and wetty have no such
//! feature (a connection is a program of its own), nor terminado's per-connection terminals
//! that the other figures measure.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::live::LiveSocket;
use super::stats::{percentile, shares};
use super::target::{Result, Target as _};
use super::wssh::{ApiAccess, WsshTarget};

/// Observers attached in the second phase.
pub(crate) const OBSERVERS: usize = 20;
/// Keystrokes per line.
const LINE_LIMIT: usize = 64;
/// How long any step may take.
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// One target, summarised.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Observers attached in the second phase.
    pub(crate) observers: usize,
    /// Round trips timed per phase.
    pub(crate) samples: usize,
    /// The controller alone: median echo, µs.
    pub(crate) alone_p50_us: f64,
    /// The controller alone: 99th percentile, µs.
    pub(crate) alone_p99_us: f64,
    /// With the observers: median echo, µs.
    pub(crate) observed_p50_us: f64,
    /// With the observers: 99th percentile, µs.
    pub(crate) observed_p99_us: f64,
    /// Bytes each observer had to receive, summed over runs.
    pub(crate) bytes_per_observer: u64,
    /// Observers, over all runs, whose stream equalled the controller's byte for byte.
    pub(crate) observers_exact: usize,
    /// Observers attached, over all runs.
    pub(crate) observers_total: usize,
}

/// Runs the figure on one instance of each target: `total` keystrokes per phase, split over
/// `rounds` rounds, each round on a new shell with new observers.
pub(crate) async fn measure(targets: &[&WsshTarget], rounds: usize, total: usize) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for target in targets {
        let (_instance, access) = target.start_with_api().await?;
        let (mut alone, mut observed) = (Vec::new(), Vec::new());
        let (mut bytes, mut exact, mut attached) = (0, 0, 0);
        for (round, count) in shares(total, rounds).into_iter().enumerate() {
            let run = run_once(&access, count, &mut alone, &mut observed)
                .await
                .map_err(|error| format!("observers, {}: {error}", target.name()))?;
            eprintln!(
                "  observers {}/{rounds} {:<28} echo p99 alone {:>6.0} µs, with {OBSERVERS} observers {:>6.0} µs, \
                 {}/{OBSERVERS} exact",
                round + 1,
                target.name(),
                percentile(&alone, 99.0),
                percentile(&observed, 99.0),
                run.1
            );
            bytes += run.0;
            exact += run.1;
            attached += OBSERVERS;
        }
        figures.push(Figure {
            target: target.name().to_owned(),
            observers: OBSERVERS,
            samples: observed.len(),
            alone_p50_us: percentile(&alone, 50.0),
            alone_p99_us: percentile(&alone, 99.0),
            observed_p50_us: percentile(&observed, 50.0),
            observed_p99_us: percentile(&observed, 99.0),
            bytes_per_observer: bytes,
            observers_exact: exact,
            observers_total: attached,
        });
    }
    Ok(figures)
}

/// The controller's side: its connection and every data byte it received.
struct Controller {
    /// The connection.
    socket: LiveSocket,
    /// Everything received, from offset 0.
    received: Vec<u8>,
    /// Bytes received and not yet waited for.
    credit: usize,
}

impl Controller {
    /// Waits until `count` more bytes have arrived.
    async fn expect(&mut self, count: usize) -> Result<()> {
        while self.credit < count {
            let data = self.socket.data(STEP_LIMIT).await?;
            self.credit += data.len();
            self.received.extend_from_slice(&data);
        }
        self.credit -= count;
        Ok(())
    }

    /// `count` timed round trips, appended to `samples` (µs).
    async fn type_keys(&mut self, count: usize, samples: &mut Vec<f64>) -> Result<()> {
        let mut line = 0;
        for _ in 0..count {
            if line == LINE_LIMIT {
                self.socket.send(b"\r").await?;
                self.expect(2 + line + 2).await?;
                line = 0;
            }
            let start = Instant::now();
            self.socket.send(b"x").await?;
            self.expect(1).await?;
            samples.push(start.elapsed().as_secs_f64() * 1e6);
            line += 1;
        }
        // End the line, so that the next phase starts on a fresh one.
        self.socket.send(b"\r").await?;
        self.expect(2 + line + 2).await
    }
}

/// One run: a new shell, `count` keystrokes alone, [`OBSERVERS`] observers attached, `count`
/// more; returns the bytes each observer had to receive and how many received them exactly.
async fn run_once(
    access: &ApiAccess,
    count: usize,
    alone: &mut Vec<f64>,
    observed: &mut Vec<f64>,
) -> Result<(u64, usize)> {
    let mut socket = LiveSocket::connect(access, "/cat", true).await?;
    let shell = socket.hello(STEP_LIMIT).await?.shell;
    let mut controller = Controller { socket, received: Vec::new(), credit: 0 };
    // Untimed: the program is up once its first echo is back.
    controller.socket.send(b"w").await?;
    controller.expect(1).await?;
    controller.type_keys(count, alone).await?;
    let (total, told) = tokio::sync::watch::channel(None::<usize>);
    let mut observers = Vec::with_capacity(OBSERVERS);
    for _ in 0..OBSERVERS {
        let mut socket =
            LiveSocket::connect(access, &format!("/cat?shell={shell}&mode=observe&offset=0"), false).await?;
        let info = socket.hello(STEP_LIMIT).await?;
        if info.offset != 0 || info.mode != "observe" {
            return Err(format!("an observer got {info:?}").into());
        }
        observers.push(tokio::spawn(observe(socket, told.clone())));
    }
    controller.type_keys(count, observed).await?;
    let _ = total.send(Some(controller.received.len()));
    let mut exact = 0;
    for observer in observers {
        let stream = observer.await??;
        exact += usize::from(stream == controller.received);
    }
    controller.socket.close().await;
    super::live::end_shell(access, &shell).await?;
    Ok((controller.received.len() as u64, exact))
}

/// An observer: reads until it has as many bytes as the controller received in all (once the
/// controller says how many), and returns them.
async fn observe(mut socket: LiveSocket, mut total: tokio::sync::watch::Receiver<Option<usize>>) -> Result<Vec<u8>> {
    let mut received = Vec::new();
    loop {
        if let Some(total) = *total.borrow_and_update()
            && received.len() >= total
        {
            break;
        }
        tokio::select! {
            changed = total.changed() => changed.map_err(|_| "the run ended")?,
            data = socket.data(STEP_LIMIT * 3) => received.extend_from_slice(&data?),
        }
    }
    socket.close().await;
    Ok(received)
}
