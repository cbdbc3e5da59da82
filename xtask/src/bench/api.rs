//! Figure 5, the token-authenticated API: `GET /sessions` with `Authorization: Bearer wssh_…`
//! on 64 keep-alive connections for a fixed time; requests per second, p50 and p99, errors,
//! and the server's CPU time per 1,000 requests.
//!
//! The client is ours ([`super::http`]) rather than `wrk`, so CI needs nothing installed. It
//! runs on the bench's one thread, so on a small machine it competes with the server for CPU;
//! the figure is a floor for the server's capacity, not a ceiling.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::http::{self, Connection};
use super::stats::{median, percentile};
use super::system::cpu_ticks;
use super::target::Result;
use super::wssh::{ApiAccess, WsshTarget};

/// How long one request may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);
/// At most this many requests per connection and run (a bound, far above what a run reaches).
const MAX_REQUESTS: usize = 10_000_000;

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Requests answered 200.
    pub(crate) requests: usize,
    /// Requests that failed (status, connection).
    pub(crate) errors: usize,
    /// The run's length, in seconds.
    pub(crate) seconds: f64,
    /// Requests answered per second.
    pub(crate) requests_per_second: f64,
    /// Latency p50, in microseconds.
    pub(crate) p50_us: f64,
    /// Latency p99, in microseconds.
    pub(crate) p99_us: f64,
    /// The server's CPU milliseconds per request.
    pub(crate) server_cpu_ms_per_request: f64,
}

/// The figure: the runs and their medians.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Connections.
    pub(crate) connections: usize,
    /// Every run.
    pub(crate) runs: Vec<Run>,
    /// Median requests per second.
    pub(crate) requests_per_second: f64,
    /// Median p50, in microseconds.
    pub(crate) p50_us: f64,
    /// Median p99, in microseconds.
    pub(crate) p99_us: f64,
    /// Errors, all runs together.
    pub(crate) errors: usize,
    /// Median server CPU milliseconds per request.
    pub(crate) server_cpu_ms_per_request: f64,
}

/// Runs the figure on a wssh server per target: `runs` rounds of `seconds` each, the targets
/// taking turns.
pub(crate) async fn measure(
    targets: &[&WsshTarget],
    runs: usize,
    connections: usize,
    seconds: f64,
    ticks_per_second: u64,
) -> Result<Vec<Figure>> {
    use super::target::{Program, Target as _};
    let mut servers = Vec::with_capacity(targets.len());
    for target in targets {
        let (instance, access) = target.start_with_api().await?;
        let pid = instance.server_pid(Program::Cat).ok_or("no server process")?;
        // One request first: the API answers as expected.
        let mut probe = Connection::open(access.addr).await?;
        let reply = probe.exchange(list_request(&access)?, REQUEST_LIMIT).await?;
        if reply.status != 200 {
            let body = String::from_utf8_lossy(&reply.body);
            return Err(format!("GET /sessions answered {}: {body}", reply.status).into());
        }
        servers.push((instance, access, pid));
    }
    let mut all: Vec<Vec<Run>> = vec![Vec::with_capacity(runs); targets.len()];
    for round in 0..runs {
        for ((target, (_instance, access, pid)), results) in targets.iter().zip(&servers).zip(&mut all) {
            let before = cpu_ticks(*pid)?;
            let run = run_once(access, connections, Duration::from_secs_f64(seconds)).await?;
            let cpu = cpu_ticks(*pid)?.saturating_sub(before) as f64 / ticks_per_second as f64;
            let run = Run { server_cpu_ms_per_request: cpu * 1e3 / run.requests.max(1) as f64, ..run };
            eprintln!(
                "  api {}/{runs} {:<28} {:>8.0} req/s, p99 {:.2} ms, {} errors",
                round + 1,
                target.name(),
                run.requests_per_second,
                run.p99_us / 1e3,
                run.errors
            );
            results.push(run);
        }
    }
    Ok(targets.iter().zip(all).map(|(target, results)| summarise(target.name(), connections, results)).collect())
}

/// The medians of one target's runs.
fn summarise(target: &str, connections: usize, results: Vec<Run>) -> Figure {
    let of = |value: fn(&Run) -> f64| median(&results.iter().map(value).collect::<Vec<_>>());
    Figure {
        target: target.to_owned(),
        connections,
        requests_per_second: of(|run| run.requests_per_second),
        p50_us: of(|run| run.p50_us),
        p99_us: of(|run| run.p99_us),
        server_cpu_ms_per_request: of(|run| run.server_cpu_ms_per_request),
        errors: results.iter().map(|run| run.errors).sum(),
        runs: results,
    }
}

/// `GET /sessions` with the token.
fn list_request(access: &ApiAccess) -> Result<http::Request> {
    http::request(::http::Method::GET, access.addr, "/sessions", Some(&access.bearer), None)
}

/// One run: `connections` connections, each sending requests one after another until the end.
async fn run_once(access: &ApiAccess, connections: usize, length: Duration) -> Result<Run> {
    let start = Instant::now();
    let deadline = start + length;
    let workers = (0..connections).map(|_| async {
        let mut samples = Vec::new();
        let mut errors = 0;
        let mut connection = None;
        for _ in 0..MAX_REQUESTS {
            if Instant::now() >= deadline {
                break;
            }
            let sent = Instant::now();
            let reply = async {
                let connection = match &mut connection {
                    Some(connection) => connection,
                    None => connection.insert(Connection::open(access.addr).await?),
                };
                connection.exchange(list_request(access)?, REQUEST_LIMIT).await
            }
            .await;
            match reply {
                Ok(reply) if reply.status == 200 => samples.push(sent.elapsed().as_secs_f64() * 1e6),
                Ok(_) => errors += 1,
                Err(_) => {
                    errors += 1;
                    connection = None;
                }
            }
        }
        (samples, errors)
    });
    let done = futures_util::future::join_all(workers).await;
    let seconds = start.elapsed().as_secs_f64();
    let errors = done.iter().map(|(_, errors)| errors).sum();
    let samples: Vec<f64> = done.into_iter().flat_map(|(samples, _)| samples).collect();
    Ok(Run {
        requests: samples.len(),
        errors,
        seconds,
        requests_per_second: samples.len() as f64 / seconds,
        p50_us: percentile(&samples, 50.0),
        p99_us: percentile(&samples, 99.0),
        server_cpu_ms_per_request: 0.0,
    })
}
