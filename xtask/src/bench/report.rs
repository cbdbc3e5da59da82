//! The bench report: the table printed at the end of a run and `target/bench/report.json`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::chart::{self, Caption, Chart};
use super::stats::{median, median_interval};
use super::system::Machine;
use super::target::Result;
use super::{
    api, connect, detached, echo, flood, idle, memory, observers, propagation, reattach, recording, shells, storm,
    teardown, throughput,
};

/// What a run was asked to do.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Parameters {
    /// `--quick` was given.
    pub(crate) quick: bool,
    /// Runs (rounds) per figure.
    pub(crate) runs: usize,
    /// Runs of the heavy figures: memory, many shells, API, login storm.
    pub(crate) heavy_runs: usize,
    /// Size of the file the throughput figure prints, in bytes.
    pub(crate) file_bytes: u64,
    /// Echo round trips per target.
    pub(crate) echo_samples: usize,
    /// Idle shells open in the memory figure.
    pub(crate) idle_shells: usize,
    /// Connects per target.
    pub(crate) connects: usize,
    /// Concurrent shells of the many-shells figure.
    pub(crate) many_shells: usize,
    /// How long they type, in seconds (one keystroke a second).
    pub(crate) many_seconds: u64,
    /// Length of one API run, in seconds.
    pub(crate) api_seconds: f64,
    /// Length of one login-storm phase, in seconds.
    pub(crate) storm_seconds: u64,
    /// Reattaches per case of figure 8.
    pub(crate) reattaches: usize,
    /// The controller's keystrokes per phase of figure 9.
    pub(crate) observer_samples: usize,
    /// What figure 11's long `cat` prints, about, in bytes.
    pub(crate) big_cat_bytes: u64,
    /// Samples of the propagation figure (12), all runs together.
    pub(crate) propagation_samples: usize,
    /// Connections one address tries to hold in figure 15.
    pub(crate) idle_connections: usize,
    /// How long it holds them, in seconds.
    pub(crate) idle_seconds: u64,
    /// Length of each phase of figure 14, in seconds.
    pub(crate) flood_seconds: u64,
    /// Shells dropped at once in figure 15.
    pub(crate) teardown_shells: usize,
    /// The figures run (1 to 15).
    pub(crate) figures: Vec<u8>,
}

/// A peer left out of a run, and why (it could not be installed, or does not start).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Skipped {
    /// The peer.
    pub(crate) target: String,
    /// Why.
    pub(crate) reason: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// Where.
    pub(crate) machine: Machine,
    /// When (UTC, RFC 3339).
    pub(crate) date: String,
    /// The git commit measured (`git describe --always --dirty`), when known.
    pub(crate) commit: Option<String>,
    /// With what sizes.
    pub(crate) parameters: Parameters,
    /// Peers left out.
    pub(crate) skipped: Vec<Skipped>,
    /// Figure 1.
    pub(crate) throughput: Vec<throughput::Figure>,
    /// Figure 2.
    pub(crate) echo: Vec<echo::Figure>,
    /// Figure 3.
    pub(crate) memory: Vec<memory::Figure>,
    /// Figure 7.
    pub(crate) connect: Vec<connect::Figure>,
    /// Figure 4.
    pub(crate) shells: Vec<shells::Figure>,
    /// Figure 5 (empty when left out).
    pub(crate) api: Vec<api::Figure>,
    /// Figure 6 (empty when left out).
    pub(crate) storm: Vec<storm::Figure>,
    /// Figure 8 (empty when left out).
    pub(crate) reattach: Vec<reattach::Figure>,
    /// Figure 9 (empty when left out).
    pub(crate) observers: Vec<observers::Figure>,
    /// Figure 10 (empty when left out).
    pub(crate) detached: Vec<detached::Figure>,
    /// Figure 11 (absent when left out).
    pub(crate) recording: Option<recording::Figure>,
    /// Figure 12 (absent when left out or without PostgreSQL).
    pub(crate) propagation: Option<propagation::Figure>,
    /// Figure 13 (absent when left out).
    pub(crate) idle: Option<idle::Figure>,
    /// Figure 14 (absent when left out).
    pub(crate) flood: Option<flood::Figure>,
    /// Figure 15 (absent when left out).
    pub(crate) teardown: Option<teardown::Figure>,
}

/// `value` with `decimals` decimals, or `–` when absent.
fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.decimals$}"))
}

/// `reference ÷ value`, the wssh/peer ratio, or `–`.
fn ratio(reference: Option<f64>, value: f64) -> String {
    match reference {
        Some(reference) if reference.is_finite() && value.is_finite() && value != 0.0 => {
            format!("{:.2}", reference / value)
        }
        _ => "–".to_owned(),
    }
}

/// The row of `name` in `figures`, by `target`.
fn reference<T>(figures: &[T], name: &str, target: fn(&T) -> &str, value: fn(&T) -> f64) -> Option<f64> {
    figures.iter().find(|figure| target(figure) == name).map(value)
}

/// The throughput targets to compare run by run: every target against the raw PTY, and a
/// target `--compare` or `--compare-binary` added (its name is another's with a suffix)
/// against the one it repeats, as (numerator, denominator).
fn same_round_pairs(figures: &[throughput::Figure]) -> Vec<(&throughput::Figure, &throughput::Figure)> {
    let raw = figures.iter().find(|figure| figure.target == RAW_PTY);
    let mut pairs = Vec::new();
    for figure in figures.iter().filter(|figure| figure.target != RAW_PTY) {
        if let Some(raw) = raw {
            pairs.push((figure, raw));
        }
        let repeated = figures
            .iter()
            .filter(|base| figure.target.starts_with(&format!("{} [", base.target)))
            .max_by_key(|base| base.target.len());
        if let Some(base) = repeated {
            pairs.push((base, figure));
        }
    }
    pairs
}

/// The ceiling's name in the throughput figure.
const RAW_PTY: &str = "raw PTY";
/// The wssh row the ratios of the per-shell figures are taken against.
const NATIVE: &str = "wssh native";
/// The same, with a token (the way browsers connect).
const NATIVE_TOKEN: &str = "wssh native, token";
/// The same, on PostgreSQL.
const NATIVE_TOKEN_POSTGRES: &str = "wssh native, token, PostgreSQL";

impl Report {
    /// The results as Markdown tables (they read as well in a terminal).
    pub(crate) fn table(&self) -> String {
        let p = &self.parameters;
        let mut out = String::new();
        let _ = writeln!(out, "wssh bench{} — {}", if p.quick { " (quick)" } else { "" }, self.date);
        let _ = writeln!(out, "machine: {}", self.machine.summary());
        for skipped in &self.skipped {
            let _ = writeln!(out, "skipped {}: {}", skipped.target, skipped.reason);
        }
        if !self.throughput.is_empty() {
            let _ = writeln!(
                out,
                "\n### 1. Output throughput ({:.0} MiB file, median of {} runs)\n",
                p.file_bytes as f64 / f64::from(1 << 20),
                p.runs
            );
            let _ = writeln!(
                out,
                "| target | MB/s | wssh native ÷ this | server CPU s/GB | client CPU s/GB | machine busy | frames/MB | \
                 wire bytes/payload byte |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
            let native = reference(&self.throughput, NATIVE, |figure| &figure.target, |figure| figure.mb_per_second);
            for figure in &self.throughput {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {} | {} | {:.2} | {:.0}% | {} | {} |",
                    figure.target,
                    figure.mb_per_second,
                    ratio(native, figure.mb_per_second),
                    or_dash(figure.cpu_seconds_per_gb, 2),
                    figure.client_cpu_seconds_per_gb,
                    figure.machine_busy * 100.0,
                    or_dash(figure.frames_per_mb, 1),
                    or_dash(figure.wire_per_payload, 4)
                );
            }
            let pairs = same_round_pairs(&self.throughput);
            if !pairs.is_empty() {
                let _ = writeln!(
                    out,
                    "\nSame-round ratios of throughput (one per run, taken within the run's round, so that the \
                     machine's drift between rounds cancels): their median, and a 95 % interval for it\n"
                );
                let _ = writeln!(out, "| ratio | median | 95 % interval |");
                let _ = writeln!(out, "|---|---:|---:|");
                for (numerator, denominator) in pairs {
                    let ratios: Vec<f64> = numerator
                        .runs
                        .iter()
                        .zip(&denominator.runs)
                        .map(|(top, bottom)| top.bytes_per_second / bottom.bytes_per_second)
                        .collect();
                    let interval = median_interval(&ratios)
                        .map_or_else(|| "–".to_owned(), |(low, high)| format!("{low:.3} – {high:.3}"));
                    let _ = writeln!(
                        out,
                        "| {} ÷ {} | {:.3} | {interval} |",
                        numerator.target,
                        denominator.target,
                        median(&ratios)
                    );
                }
            }
        }
        if !self.echo.is_empty() {
            let _ = writeln!(out, "\n### 2. Keystroke echo round trip ({} samples per target)\n", p.echo_samples);
            let _ = writeln!(out, "| target | p50 µs | p99 µs | max µs | wssh native ÷ this, p50 |");
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            let native = reference(&self.echo, NATIVE, |figure| &figure.target, |figure| figure.p50_us);
            for figure in &self.echo {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {:.0} | {:.0} | {} |",
                    figure.target,
                    figure.p50_us,
                    figure.p99_us,
                    figure.max_us,
                    ratio(native, figure.p50_us)
                );
            }
        }
        if !self.memory.is_empty() {
            let _ = writeln!(
                out,
                "\n### 3. Server memory per idle shell ({} shells, median of {} runs)\n",
                p.idle_shells, p.heavy_runs
            );
            let _ = writeln!(out, "| target | KiB per shell | wssh native, token ÷ this |");
            let _ = writeln!(out, "|---|---:|---:|");
            let native = reference(&self.memory, NATIVE_TOKEN, |figure| &figure.target, |figure| figure.per_shell_kib);
            for figure in &self.memory {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {} |",
                    figure.target,
                    figure.per_shell_kib,
                    ratio(native, figure.per_shell_kib)
                );
            }
        }
        if !self.shells.is_empty() {
            let _ = writeln!(
                out,
                "\n### 4. {} concurrent shells, one keystroke a second for {} s (median of {} runs)\n",
                p.many_shells, p.many_seconds, p.heavy_runs
            );
            let _ = writeln!(
                out,
                "| target | errors | echo p50 ms | echo p99 ms | wssh native, token ÷ this, p99 | server RSS MiB |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
            let native = reference(&self.shells, NATIVE_TOKEN, |figure| &figure.target, |figure| figure.p99_us);
            for figure in &self.shells {
                let rss: Vec<f64> =
                    figure.runs.iter().filter_map(|run| run.server_rss_kib).map(|kib| kib as f64 / 1024.0).collect();
                let rss = (!rss.is_empty()).then(|| median(&rss));
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.2} | {} | {} |",
                    figure.target,
                    figure.errors,
                    figure.p50_us / 1e3,
                    figure.p99_us / 1e3,
                    ratio(native, figure.p99_us),
                    or_dash(rss, 1)
                );
            }
        }
        if let Some(first) = self.api.first() {
            let _ = writeln!(
                out,
                "\n### 5. Token-authenticated API: GET /sessions, {} connections, {} s (median of {} runs)\n",
                first.connections, p.api_seconds, p.heavy_runs
            );
            let _ = writeln!(out, "| target | req/s | p50 ms | p99 ms | errors | server CPU ms/request |");
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
            for api in &self.api {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {:.2} | {:.2} | {} | {:.3} |",
                    api.target,
                    api.requests_per_second,
                    api.p50_us / 1e3,
                    api.p99_us / 1e3,
                    api.errors,
                    api.server_cpu_ms_per_request
                );
            }
            let of = |name: &str| reference(&self.api, name, |api| &api.target, |api| api.requests_per_second);
            if let (Some(sqlite), Some(postgres)) = (of(NATIVE_TOKEN), of(NATIVE_TOKEN_POSTGRES)) {
                let _ = writeln!(
                    out,
                    "
PostgreSQL ÷ SQLite, req/s: {:.0}% (target ≥ 50%)",
                    postgres / sqlite.max(f64::MIN_POSITIVE) * 100.0
                );
            }
        }
        if !self.storm.is_empty() {
            let _ = writeln!(
                out,
                "\n### 6. Login storm: {} password logins/s while {} shells type 10 keys/s ({} s phases, median of {} runs)\n",
                super::storm::LOGINS_PER_SECOND,
                super::storm::SHELLS,
                p.storm_seconds,
                p.heavy_runs
            );
            let _ = writeln!(
                out,
                "| target | phase | echo p50 ms | echo p99 ms | logins/s | login p50 ms | login p99 ms |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
            for storm in &self.storm {
                let _ = writeln!(
                    out,
                    "| {} | quiet | {:.2} | {:.2} | – | – | – |",
                    storm.target,
                    storm.quiet_p50_us / 1e3,
                    storm.quiet_p99_us / 1e3
                );
                let _ = writeln!(
                    out,
                    "| {} | storm | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} |",
                    storm.target,
                    storm.storm_p50_us / 1e3,
                    storm.storm_p99_us / 1e3,
                    storm.logins_per_second,
                    storm.login_p50_us / 1e3,
                    storm.login_p99_us / 1e3
                );
            }
            let errors: usize = self.storm.iter().map(|storm| storm.errors).sum();
            let _ = writeln!(out, "\nerrors (echoes and logins, all phases): {errors}");
        }
        if !self.connect.is_empty() {
            let _ = writeln!(out, "\n### 7. Connect to first output byte ({} connects per target)\n", p.connects);
            let _ = writeln!(
                out,
                "| target | p50 ms | p99 ms | of which handshake + auth, p50 ms | wssh native ÷ this, p50 |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            let native = reference(&self.connect, NATIVE, |figure| &figure.target, |figure| figure.p50_us);
            for figure in &self.connect {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.2} | {:.2} | {} |",
                    figure.target,
                    figure.p50_us / 1e3,
                    figure.p99_us / 1e3,
                    figure.open_p50_us / 1e3,
                    ratio(native, figure.p50_us)
                );
            }
        }
        self.live_tables(&mut out);
        if let Some(propagation) = &self.propagation {
            propagation.table(&mut out, p.heavy_runs);
        }
        if let Some(idle) = &self.idle {
            idle.table(&mut out);
        }
        if let Some(flood) = &self.flood {
            flood.table(&mut out);
        }
        if let Some(teardown) = &self.teardown {
            teardown.table(&mut out);
        }
        out
    }

    /// One chart per figure.
    pub(crate) fn charts(&self) -> Vec<Chart> {
        let rows = |pairs: Vec<(String, Vec<f64>)>| pairs;
        let text = format!(
            "wssh bench{} · {} · {} · {}",
            if self.parameters.quick { " --quick (a smoke run, not a measurement)" } else { "" },
            self.date.get(..10).unwrap_or(&self.date),
            self.commit.as_deref().unwrap_or("unknown commit"),
            self.machine.summary()
        );
        let caption = Caption(&text);
        let mut charts = Vec::new();
        if !self.throughput.is_empty() {
            charts.push(chart::bars(
                "1-throughput.svg",
                "1. Output throughput (higher is better)",
                caption,
                "MB/s",
                &["median"],
                &rows(self.throughput.iter().map(|f| (f.target.clone(), vec![f.mb_per_second])).collect()),
            ));
        }
        if !self.echo.is_empty() {
            charts.push(chart::bars(
                "2-echo.svg",
                "2. Keystroke echo round trip (lower is better)",
                caption,
                "µs",
                &["p50", "p99"],
                &rows(self.echo.iter().map(|f| (f.target.clone(), vec![f.p50_us, f.p99_us])).collect()),
            ));
        }
        if !self.memory.is_empty() {
            charts.push(chart::bars(
                "3-memory.svg",
                "3. Server memory per idle shell (lower is better)",
                caption,
                "KiB",
                &["median"],
                &rows(self.memory.iter().map(|f| (f.target.clone(), vec![f.per_shell_kib])).collect()),
            ));
        }
        if !self.shells.is_empty() {
            charts.push(chart::bars(
                "4-shells.svg",
                &format!("4. {} concurrent shells: echo round trip (lower is better)", self.parameters.many_shells),
                caption,
                "ms",
                &["p50", "p99"],
                &rows(self.shells.iter().map(|f| (f.target.clone(), vec![f.p50_us / 1e3, f.p99_us / 1e3])).collect()),
            ));
        }
        if let Some(first) = self.api.first() {
            charts.push(chart::bars(
                "5-api.svg",
                &format!("5. GET /sessions with a token: {:.0} req/s", first.requests_per_second),
                caption,
                "ms",
                &["p50", "p99"],
                &rows(self.api.iter().map(|f| (f.target.clone(), vec![f.p50_us / 1e3, f.p99_us / 1e3])).collect()),
            ));
        }
        if !self.storm.is_empty() {
            // One target: its phases; more (`--compare`): each phase named with its target.
            let label = |storm: &storm::Figure, phase: &str| {
                if self.storm.len() == 1 { phase.to_owned() } else { format!("{}, {phase}", storm.target) }
            };
            let phases = self
                .storm
                .iter()
                .flat_map(|storm| {
                    [
                        (label(storm, "quiet"), vec![storm.quiet_p50_us / 1e3, storm.quiet_p99_us / 1e3]),
                        (label(storm, "storm"), vec![storm.storm_p50_us / 1e3, storm.storm_p99_us / 1e3]),
                    ]
                })
                .collect();
            charts.push(chart::bars(
                "6-login-storm.svg",
                "6. Echo round trip of 50 shells, without and with a login storm",
                caption,
                "ms",
                &["p50", "p99"],
                &rows(phases),
            ));
        }
        if !self.connect.is_empty() {
            charts.push(chart::bars(
                "7-connect.svg",
                "7. Connect to first output byte (lower is better)",
                caption,
                "ms",
                &["p50", "p99"],
                &rows(self.connect.iter().map(|f| (f.target.clone(), vec![f.p50_us / 1e3, f.p99_us / 1e3])).collect()),
            ));
        }
        self.live_charts(caption, &mut charts);
        if let Some(propagation) = &self.propagation {
            charts.push(propagation.chart(caption));
        }
        if let Some(idle) = &self.idle {
            charts.push(idle.chart(caption));
        }
        if let Some(flood) = &self.flood {
            charts.push(flood.chart(caption));
        }
        if let Some(teardown) = &self.teardown {
            charts.push(teardown.chart(caption));
        }
        charts
    }

    /// Writes the report as pretty JSON to `path`, creating its folder.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}
