//! Figure 15, mass teardown (issue 18): 500 `cat` shells (native framing, token, from 50
//! loopback addresses so the per-address cap does not apply), each confirmed by an echo, are
//! dropped at once (their TCP connections closed with no WebSocket close). The figure is the
//! time from the drop until the server has no child process left (every program reaped), and
//! `/healthz` p50, p99 and max from another address meanwhile (one probe every 5 ms, each on a
//! new connection).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;

use super::chart::{self, Caption, Chart};
use super::loopback::{self, Probes};
use super::stats::median;
use super::system::child_count;
use super::target::{Program, Result, Target as _, Terminal};
use super::wssh::{self, WsshTarget};

/// Shells opened at once.
const OPEN_CONCURRENCY: usize = 16;
/// Client addresses the shells come from.
const ADDRESSES: usize = 50;
/// How often `/healthz` is probed.
const PROBE_PERIOD: Duration = Duration::from_millis(5);
/// How long the programs may take to be reaped before the run fails.
const REAP_LIMIT: Duration = Duration::from_secs(60);
/// The server's documented grace (SIGHUP, then SIGKILL after it).
pub(crate) const GRACE: Duration = Duration::from_secs(2);

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    /// Shells open (and echoing) when dropped.
    pub(crate) shells: usize,
    /// The server's children just before the drop.
    pub(crate) children: usize,
    /// From the drop until the server had no child left, in milliseconds.
    pub(crate) reaped_ms: f64,
    /// `/healthz` from the drop until then.
    pub(crate) probes: Probes,
}

/// The figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Every run.
    pub(crate) runs: Vec<Run>,
}

/// Runs the figure: `runs` runs, each on a fresh server with `shells` shells.
pub(crate) async fn measure(target: &WsshTarget, runs: usize, shells: usize) -> Result<Figure> {
    let mut all = Vec::with_capacity(runs);
    for round in 0..runs {
        let (instance, access) = target.start_with_api().await?;
        let pid = instance.server_pid(Program::Cat).ok_or("no server process")?;
        let access = &access;
        let opened: Vec<Result<Box<dyn Terminal>>> = futures_util::stream::iter(0..shells)
            .map(|index| async move {
                let mut terminal =
                    wssh::open_from(access, loopback::address(2, index % ADDRESSES), Program::Cat).await?;
                terminal.send(b"i").await?;
                terminal.recv_until(b"i", Duration::from_secs(30)).await?;
                Ok(terminal)
            })
            .buffer_unordered(OPEN_CONCURRENCY)
            .collect()
            .await;
        let mut terminals = Vec::with_capacity(shells);
        for terminal in opened {
            terminals.push(terminal.map_err(|error| format!("teardown: a shell did not open: {error}"))?);
        }
        let children = child_count(pid);
        let dropped = Instant::now();
        drop(terminals);
        let (reaped_tx, reaped_rx) = tokio::sync::oneshot::channel::<()>();
        let probes = loopback::probe_healthz(access.addr, PROBE_PERIOD, async {
            let _ = reaped_rx.await;
        });
        let reaped = async {
            loop {
                if child_count(pid) == 0 {
                    let took = dropped.elapsed();
                    let _ = reaped_tx.send(());
                    return Ok(took);
                }
                if dropped.elapsed() > REAP_LIMIT {
                    return Err(format!("teardown: programs still running {REAP_LIMIT:?} after the drop"));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let (probes, reaped) = futures_util::future::join(probes, reaped).await;
        let run = Run { shells, children, reaped_ms: reaped?.as_secs_f64() * 1e3, probes };
        eprintln!(
            "  teardown {}/{runs} {}: {} shells ({} programs) reaped in {:.0} ms; /healthz p99 {:.2} ms, max {:.2} ms, \
             {} errors",
            round + 1,
            target.name(),
            run.shells,
            run.children,
            run.reaped_ms,
            run.probes.ms(99.0),
            run.probes.ms(100.0),
            run.probes.errors
        );
        all.push(run);
    }
    Ok(Figure { target: target.name().to_owned(), runs: all })
}

impl Figure {
    /// The median over runs of `value`.
    fn of(&self, value: impl Fn(&Run) -> f64) -> f64 {
        median(&self.runs.iter().map(value).collect::<Vec<_>>())
    }

    /// The figure's table, appended to `out`.
    pub(crate) fn table(&self, out: &mut String) {
        let Some(first) = self.runs.first() else { return };
        let _ = writeln!(
            out,
            "\n### 15. Teardown of {} shells dropped at once (median of {} runs)\n",
            first.shells,
            self.runs.len()
        );
        let _ = writeln!(
            out,
            "| target | all reaped after ms | /healthz p50 ms | /healthz p99 ms | /healthz max ms | probes | errors |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {} |",
            self.target,
            self.of(|run| run.reaped_ms),
            self.of(|run| run.probes.ms(50.0)),
            self.of(|run| run.probes.ms(99.0)),
            self.of(|run| run.probes.ms(100.0)),
            self.of(|run| run.probes.samples_us.len() as f64),
            self.runs.iter().map(|run| run.probes.errors).sum::<usize>()
        );
        let _ = writeln!(
            out,
            "\ntargets: all reaped within the grace ({} ms); /healthz within 100 ms throughout",
            GRACE.as_millis()
        );
    }

    /// The figure's chart.
    pub(crate) fn chart(&self, caption: Caption<'_>) -> Chart {
        let shells = self.runs.first().map_or(0, |run| run.shells);
        chart::bars(
            "15-teardown.svg",
            &format!("13. {shells} shells dropped at once (lower is better)"),
            caption,
            "ms",
            &["all reaped", "/healthz p99"],
            &[(self.target.clone(), vec![self.of(|run| run.reaped_ms), self.of(|run| run.probes.ms(99.0))])],
        )
    }
}
