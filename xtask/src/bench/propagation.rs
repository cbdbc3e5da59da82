//! Figure 12, revocation propagation across nodes (issue 16): two `wssh serve` processes on
//! one PostgreSQL database. Each sample mints an access token on one node, has the other node
//! accept it (so that node holds it resolved in memory), starts a request loop on that other
//! node (`GET /sessions` with the token on a keep-alive connection, one request a millisecond),
//! then revokes the token on the first node (`DELETE /tokens`); the delay is from sending the
//! revocation to the other node's first 401. The nodes swap roles every sample. p50, p99, max.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::chart::{self, Caption, Chart};
use super::http::{self, Connection};
use super::stats::{median, percentile, shares};
use super::target::Result;
use super::wssh::{ApiAccess, Launch, WsshServer};

/// Nodes on the database.
pub(crate) const NODES: usize = 2;
/// How long one sample may take before it counts as an error.
const SAMPLE_LIMIT: Duration = Duration::from_secs(5);
/// How long one request may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// The pause between two requests of the watching loop (its resolution).
const POLL: Duration = Duration::from_millis(1);

/// One run: a fresh database and fresh nodes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Every delay, in microseconds.
    pub(crate) delays_us: Vec<f64>,
    /// The revocations' own round trips on the revoking node, in microseconds.
    pub(crate) revoke_us: Vec<f64>,
    /// Samples that failed (no 401 within the limit, or an unexpected status).
    pub(crate) errors: usize,
}

/// The figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Where the database was (the bench's throwaway cluster or `$WSSH_BENCH_DATABASE_URL`).
    pub(crate) database: String,
    /// Nodes on the database.
    pub(crate) nodes: usize,
    /// Every run.
    pub(crate) runs: Vec<Run>,
    /// Samples with a delay, all runs together.
    pub(crate) samples: usize,
    /// Delay p50 over every sample, in microseconds.
    pub(crate) p50_us: f64,
    /// Delay p99 over every sample.
    pub(crate) p99_us: f64,
    /// The longest delay.
    pub(crate) max_us: f64,
    /// The revocation's own round trip on the revoking node, p50.
    pub(crate) revoke_p50_us: f64,
    /// Failed samples, all runs together.
    pub(crate) errors: usize,
}

/// Runs the figure: `runs` runs (fresh database and nodes each) sharing `samples` samples.
pub(crate) async fn measure(launch: &Arc<Launch>, runs: usize, samples: usize) -> Result<Figure> {
    let postgres = launch.postgres.as_ref().ok_or("the propagation figure needs PostgreSQL")?;
    let mut all = Vec::with_capacity(runs);
    for (round, count) in shares(samples, runs).into_iter().enumerate() {
        let database = postgres.database("wssh_bench_cluster")?;
        let password = format!("bench-{}", std::process::id()) + &"x".repeat(24);
        let mut nodes = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            // One at a time: the first migrates and seeds, the others find it done.
            nodes.push(WsshServer::start_node(launch, Some(database.url()), &password).await?);
        }
        let access: Vec<ApiAccess> = nodes.iter().map(WsshServer::access).collect();
        let mut run = Run { delays_us: Vec::with_capacity(count), revoke_us: Vec::new(), errors: 0 };
        for index in 0..count {
            let (from, to) = (&access[index % NODES], &access[(index + 1) % NODES]);
            match tokio::time::timeout(SAMPLE_LIMIT, sample(from, to)).await {
                Ok(Ok((delay, revoke))) => {
                    run.delays_us.push(delay.as_secs_f64() * 1e6);
                    run.revoke_us.push(revoke.as_secs_f64() * 1e6);
                }
                Ok(Err(error)) => {
                    eprintln!("  propagation: sample failed: {error}");
                    run.errors += 1;
                }
                Err(_) => run.errors += 1,
            }
        }
        eprintln!(
            "  propagation {}/{runs} {} nodes: p50 {:.1} ms, p99 {:.1} ms, {} errors",
            round + 1,
            NODES,
            percentile(&run.delays_us, 50.0) / 1e3,
            percentile(&run.delays_us, 99.0) / 1e3,
            run.errors
        );
        drop(nodes);
        drop(database);
        all.push(run);
    }
    let delays: Vec<f64> = all.iter().flat_map(|run| run.delays_us.iter().copied()).collect();
    let revokes: Vec<f64> = all.iter().flat_map(|run| run.revoke_us.iter().copied()).collect();
    Ok(Figure {
        target: "wssh, PostgreSQL".to_owned(),
        database: postgres.describe(),
        nodes: NODES,
        samples: delays.len(),
        p50_us: percentile(&delays, 50.0),
        p99_us: percentile(&delays, 99.0),
        max_us: percentile(&delays, 100.0),
        revoke_p50_us: median(&revokes),
        errors: all.iter().map(|run| run.errors).sum(),
        runs: all,
    })
}

/// A request with a JSON body and `authorization`; the reply's status and JSON body.
async fn call(
    connection: &mut Connection,
    addr: SocketAddr,
    method: ::http::Method,
    path: &str,
    authorization: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value)> {
    let request = http::request(method, addr, path, Some(authorization), Some(&body.to_string()))?;
    let reply = connection.exchange(request, REQUEST_LIMIT).await?;
    let body = serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null);
    Ok((reply.status, body))
}

/// One sample: a token minted on `from` and accepted by `to`, revoked on `from` while `to` is
/// asked in a loop; the delay until `to` refuses it, and the revocation's own round trip.
async fn sample(from: &ApiAccess, to: &ApiAccess) -> Result<(Duration, Duration)> {
    let mut on_from = Connection::open(from.addr).await?;
    let (status, minted) = call(
        &mut on_from,
        from.addr,
        ::http::Method::POST,
        "/tokens",
        &from.bearer,
        &json!({ "token": { "description": "revocation probe" } }),
    )
    .await?;
    if status != 200 {
        return Err(format!("POST /tokens answered {status}: {minted}").into());
    }
    let identifier = minted["token"]["identifier"].as_str().ok_or("POST /tokens: no identifier")?.to_owned();
    let bearer = format!("Bearer {}", minted["token"]["token"].as_str().ok_or("POST /tokens: no secret")?);
    let mut on_to = Connection::open(to.addr).await?;
    let list = || http::request(::http::Method::GET, to.addr, "/sessions", Some(&bearer), None);
    // `to` accepts the token (and now holds it resolved in memory).
    for _ in 0..2 {
        let status = on_to.exchange(list()?, REQUEST_LIMIT).await?.status;
        if status != 200 {
            return Err(format!("the other node answered {status} before the revocation").into());
        }
    }
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Instant>();
    let watch = async {
        let sent = started_rx.await.map_err(|_| "the revocation was never sent")?;
        loop {
            let status = on_to.exchange(list()?, REQUEST_LIMIT).await?.status;
            match status {
                401 => return Ok::<Duration, super::target::Error>(sent.elapsed()),
                200 => tokio::time::sleep(POLL).await,
                other => return Err(format!("the other node answered {other}").into()),
            }
        }
    };
    let revoke = async {
        let body = json!({ "token": { "identifier": identifier } });
        let sent = Instant::now();
        let _ = started_tx.send(sent);
        let (status, reply) =
            call(&mut on_from, from.addr, ::http::Method::DELETE, "/tokens", &from.bearer, &body).await?;
        if status != 200 {
            return Err::<Duration, super::target::Error>(format!("DELETE /tokens answered {status}: {reply}").into());
        }
        Ok(sent.elapsed())
    };
    let (delay, revoked) = futures_util::future::join(watch, revoke).await;
    Ok((delay?, revoked?))
}

impl Figure {
    /// The figure's table, appended to `out`.
    pub(crate) fn table(&self, out: &mut String, runs: usize) {
        let _ = writeln!(
            out,
            "\n### 12. Revocation propagation: {} nodes on one PostgreSQL ({}), {} samples over {runs} runs\n",
            self.nodes, self.database, self.samples
        );
        let _ = writeln!(out, "| target | p50 ms | p99 ms | max ms | revocation round trip p50 ms | errors |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            self.target,
            self.p50_us / 1e3,
            self.p99_us / 1e3,
            self.max_us / 1e3,
            self.revoke_p50_us / 1e3,
            self.errors
        );
        let _ = writeln!(out, "\ntargets: p50 ≤ 100 ms, p99 ≤ 1000 ms");
    }

    /// The figure's chart.
    pub(crate) fn chart(&self, caption: Caption<'_>) -> Chart {
        chart::bars(
            "12-propagation.svg",
            &format!("10. Token revoked on one node, refused by another ({} nodes; lower is better)", self.nodes),
            caption,
            "ms",
            &["p50", "p99"],
            &[(self.target.clone(), vec![self.p50_us / 1e3, self.p99_us / 1e3])],
        )
    }
}
