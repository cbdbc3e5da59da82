//! Figure 6, a login storm: 50 `cat` shells (native framing, token) each typing ten
//! keystrokes a second; their echo p50 and p99 in a quiet phase and in a storm phase, during
//! which password logins (`POST /auth/login`, argon2id) arrive at 20 per second, each on a
//! new connection. Also the logins' own latency and errors.
//!
//! Every run has both phases on the same shells, their order alternating between runs so that
//! drift is shared.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;

use super::http::{self, Connection};
use super::shells::type_periodically;
use super::stats::{median, percentile};
use super::target::{Instance, Program, Result, Target as _, Terminal};
use super::wssh::{ApiAccess, WsshTarget};

/// Logins per second in the storm.
pub(crate) const LOGINS_PER_SECOND: u32 = 20;
/// Shells typing.
pub(crate) const SHELLS: usize = 50;
/// Keystrokes per second per shell.
const KEYSTROKES_PER_SECOND: u32 = 10;
/// How long a login may take before it counts as an error.
const LOGIN_LIMIT: Duration = Duration::from_secs(10);
/// Logins in flight at most; a login due while this many are pending is skipped and counted.
const MAX_PENDING: usize = 200;

/// One phase of a run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Phase {
    /// Whether logins were arriving.
    pub(crate) storm: bool,
    /// Echoes timed.
    pub(crate) echoes: usize,
    /// Echoes that failed or timed out.
    pub(crate) echo_errors: usize,
    /// Echo p50, in microseconds.
    pub(crate) echo_p50_us: f64,
    /// Echo p99, in microseconds.
    pub(crate) echo_p99_us: f64,
    /// Logins that succeeded.
    pub(crate) logins: usize,
    /// Logins that failed, timed out or could not be sent.
    pub(crate) login_errors: usize,
    /// Login p50, in microseconds (NaN without logins).
    pub(crate) login_p50_us: f64,
    /// Login p99, in microseconds.
    pub(crate) login_p99_us: f64,
}

/// The figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The shells' target.
    pub(crate) target: String,
    /// Every phase of every run.
    pub(crate) phases: Vec<Phase>,
    /// Median over quiet phases of the echo p50, in microseconds.
    pub(crate) quiet_p50_us: f64,
    /// Median over quiet phases of the echo p99.
    pub(crate) quiet_p99_us: f64,
    /// Median over storm phases of the echo p50.
    pub(crate) storm_p50_us: f64,
    /// Median over storm phases of the echo p99.
    pub(crate) storm_p99_us: f64,
    /// Median over storm phases of the login p50.
    pub(crate) login_p50_us: f64,
    /// Median over storm phases of the login p99.
    pub(crate) login_p99_us: f64,
    /// Logins completed per second of storm, median.
    pub(crate) logins_per_second: f64,
    /// Echo and login errors, all phases together.
    pub(crate) errors: usize,
}

/// Runs the figure on a wssh server per target: `runs` rounds, the targets taking turns, each
/// run a quiet and a storm phase of `seconds`.
pub(crate) async fn measure(targets: &[&WsshTarget], runs: usize, seconds: u64) -> Result<Vec<Figure>> {
    let mut servers = Vec::with_capacity(targets.len());
    for target in targets {
        servers.push(target.start_with_api().await?);
    }
    let mut all: Vec<Vec<Phase>> = vec![Vec::with_capacity(runs * 2); targets.len()];
    for round in 0..runs {
        for ((target, (instance, access)), phases) in targets.iter().zip(&servers).zip(&mut all) {
            let mut terminals = open_shells(instance.as_ref()).await?;
            for storm in [round % 2 == 1, round % 2 == 0] {
                let (phase, back) = phase(terminals, access, storm, seconds).await?;
                terminals = back;
                eprintln!(
                    "  login storm {}/{runs} {:<28} {:<6} echo p99 {:>7.2} ms, {} logins ({} errors)",
                    round + 1,
                    target.name(),
                    if storm { "storm" } else { "quiet" },
                    phase.echo_p99_us / 1e3,
                    phase.logins,
                    phase.login_errors
                );
                phases.push(phase);
            }
            futures_util::future::join_all(terminals.into_iter().map(|terminal| terminal.close())).await;
        }
    }
    Ok(targets.iter().zip(all).map(|(target, phases)| summarise(target.name(), seconds, phases)).collect())
}

/// The medians of one target's phases.
fn summarise(target: &str, seconds: u64, phases: Vec<Phase>) -> Figure {
    let of = |storm: bool, value: fn(&Phase) -> f64| {
        median(&phases.iter().filter(|phase| phase.storm == storm).map(value).collect::<Vec<_>>())
    };
    Figure {
        target: target.to_owned(),
        quiet_p50_us: of(false, |phase| phase.echo_p50_us),
        quiet_p99_us: of(false, |phase| phase.echo_p99_us),
        storm_p50_us: of(true, |phase| phase.echo_p50_us),
        storm_p99_us: of(true, |phase| phase.echo_p99_us),
        login_p50_us: of(true, |phase| phase.login_p50_us),
        login_p99_us: of(true, |phase| phase.login_p99_us),
        logins_per_second: of(true, |phase| phase.logins as f64) / seconds as f64,
        errors: phases.iter().map(|phase| phase.echo_errors + phase.login_errors).sum(),
        phases,
    }
}

/// Opens the shells, each confirmed by an echo.
async fn open_shells(instance: &dyn Instance) -> Result<Vec<Box<dyn Terminal>>> {
    let mut terminals = Vec::with_capacity(SHELLS);
    for _ in 0..SHELLS {
        let mut terminal = instance.open(Program::Cat).await?;
        terminal.send(b"i").await?;
        terminal.recv_until(b"i", Duration::from_secs(30)).await?;
        terminals.push(terminal);
    }
    Ok(terminals)
}

/// One phase: the shells type for `seconds`, with logins arriving if `storm`.
async fn phase(
    terminals: Vec<Box<dyn Terminal>>,
    access: &ApiAccess,
    storm: bool,
    seconds: u64,
) -> Result<(Phase, Vec<Box<dyn Terminal>>)> {
    let period = Duration::from_secs(1) / KEYSTROKES_PER_SECOND;
    let count = seconds * u64::from(KEYSTROKES_PER_SECOND);
    let shells = terminals.len();
    let typing = futures_util::future::join_all(terminals.into_iter().enumerate().map(|(index, terminal)| {
        let first = tokio::time::Instant::now() + period.mul_f64(index as f64 / shells as f64);
        type_periodically(terminal, first, period, count)
    }));
    let logins =
        async { if storm { login_storm(access, Duration::from_secs(seconds)).await } else { (Vec::new(), 0) } };
    let limit = Duration::from_secs(seconds) + LOGIN_LIMIT + Duration::from_secs(10);
    let (typed, (login_samples, login_errors)) =
        tokio::time::timeout(limit, futures_util::future::join(typing, logins))
            .await
            .map_err(|_| format!("login storm: the phase did not end within {limit:?}"))?;
    let mut samples = Vec::new();
    let mut echo_errors = 0;
    let mut terminals = Vec::with_capacity(shells);
    for (shell_samples, failures, terminal) in typed {
        samples.extend(shell_samples);
        echo_errors += failures;
        terminals.push(terminal);
    }
    let phase = Phase {
        storm,
        echoes: samples.len(),
        echo_errors,
        echo_p50_us: percentile(&samples, 50.0),
        echo_p99_us: percentile(&samples, 99.0),
        logins: login_samples.len(),
        login_errors,
        login_p50_us: percentile(&login_samples, 50.0),
        login_p99_us: percentile(&login_samples, 99.0),
    };
    Ok((phase, terminals))
}

/// Sends [`LOGINS_PER_SECOND`] password logins a second for `length`, each on a new
/// connection; returns the successful ones' latencies (µs) and the errors.
async fn login_storm(access: &ApiAccess, length: Duration) -> (Vec<f64>, usize) {
    let body = serde_json::json!({ "username": "admin", "password": access.password }).to_string();
    let body = body.as_str();
    let interval = Duration::from_secs(1) / LOGINS_PER_SECOND;
    let total = (length.as_secs_f64() * f64::from(LOGINS_PER_SECOND)).round() as u64;
    let login = || async move {
        let request = http::request(::http::Method::POST, access.addr, "/auth/login", None, Some(body))?;
        let sent = Instant::now();
        let mut connection = Connection::open(access.addr).await?;
        let reply = connection.exchange(request, LOGIN_LIMIT).await?;
        if reply.status != 200 {
            return Err(format!("POST /auth/login answered {}", reply.status).into());
        }
        Ok::<f64, super::target::Error>(sent.elapsed().as_secs_f64() * 1e6)
    };
    let mut pending = FuturesUnordered::new();
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0;
    while sent < total || !pending.is_empty() {
        tokio::select! {
            _ = ticker.tick(), if sent < total => {
                sent += 1;
                if pending.len() >= MAX_PENDING {
                    errors += 1;
                } else {
                    pending.push(login());
                }
            }
            Some(done) = pending.next(), if !pending.is_empty() => match done {
                Ok(micros) => samples.push(micros),
                Err(_) => errors += 1,
            },
        }
    }
    (samples, errors)
}
