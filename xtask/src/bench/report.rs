//! The bench report: the table printed at the end of a run and `target/bench/report.json`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::system::Machine;
use super::target::Result;
use super::{connect, echo, memory, throughput};

/// What a run was asked to do.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Parameters {
    /// `--quick` was given.
    pub(crate) quick: bool,
    /// Runs (rounds) per figure.
    pub(crate) runs: usize,
    /// Size of the file the throughput figure prints, in bytes.
    pub(crate) file_bytes: u64,
    /// Echo round trips per target.
    pub(crate) echo_samples: usize,
    /// Idle shells open in the memory figure.
    pub(crate) idle_shells: usize,
    /// Connects per target.
    pub(crate) connects: usize,
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
    /// Figure 4.
    pub(crate) connect: Vec<connect::Figure>,
}

/// `value` with `decimals` decimals, or `–` when absent.
fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.decimals$}"))
}

impl Report {
    /// The results as Markdown tables (they read as well in a terminal).
    pub(crate) fn table(&self) -> String {
        let p = &self.parameters;
        let mut out = String::new();
        let _ = writeln!(out, "wssh bench{} — {}", if p.quick { " (quick)" } else { "" }, self.date);
        let _ = writeln!(out, "machine: {}", self.machine.summary());
        let _ = writeln!(
            out,
            "\n### Output throughput ({:.0} MiB file, median of {} runs)\n",
            p.file_bytes as f64 / f64::from(1 << 20),
            p.runs
        );
        let _ = writeln!(out, "| target | MB/s | server CPU s/GB | frames/MB | wire bytes/payload byte |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for figure in &self.throughput {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {} | {} | {} |",
                figure.target,
                figure.mb_per_second,
                or_dash(figure.cpu_seconds_per_gb, 2),
                or_dash(figure.frames_per_mb, 1),
                or_dash(figure.wire_per_payload, 4)
            );
        }
        let _ = writeln!(out, "\n### Keystroke echo round trip ({} samples per target)\n", p.echo_samples);
        let _ = writeln!(out, "| target | p50 µs | p99 µs | max µs |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for figure in &self.echo {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.0} |",
                figure.target, figure.p50_us, figure.p99_us, figure.max_us
            );
        }
        let _ =
            writeln!(out, "\n### Server memory per idle shell ({} shells, median of {} runs)\n", p.idle_shells, p.runs);
        let _ = writeln!(out, "| target | KiB per shell |");
        let _ = writeln!(out, "|---|---:|");
        for figure in &self.memory {
            let _ = writeln!(out, "| {} | {:.1} |", figure.target, figure.per_shell_kib);
        }
        let _ = writeln!(out, "\n### Connect to first output byte ({} connects per target)\n", p.connects);
        let _ = writeln!(out, "| target | p50 ms | p99 ms | of which handshake + auth, p50 ms |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for figure in &self.connect {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.2} | {:.2} |",
                figure.target,
                figure.p50_us / 1e3,
                figure.p99_us / 1e3,
                figure.open_p50_us / 1e3
            );
        }
        out
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
