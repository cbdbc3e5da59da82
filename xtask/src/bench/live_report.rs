//! The tables and charts of the live-shell and recording figures (8 to 11), kept apart from
//! [`report`](super::report)'s.

use std::fmt::Write as _;

use super::chart::{self, Caption, Chart};
use super::recording;
use super::report::Report;

/// Peers and these figures: what they lack.
const NO_PEER: &str = "ttyd, terminado (per-connection terminals), wetty: no such feature";

impl Report {
    /// Figures 8 to 11 as Markdown tables, appended to `out`.
    pub(crate) fn live_tables(&self, out: &mut String) {
        let p = &self.parameters;
        if !self.reattach.is_empty() {
            let _ = writeln!(
                out,
                "\n### 8. Reattach to a live shell, to the first resumed byte ({} reattaches per case)\n",
                p.reattaches
            );
            let _ = writeln!(out, "| target | shell | p50 ms | p99 ms | max ms | bytes resumed and checked |");
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
            for figure in &self.reattach {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.2} | {:.2} | {} |",
                    figure.target,
                    figure.case,
                    figure.p50_us / 1e3,
                    figure.p99_us / 1e3,
                    figure.max_us / 1e3,
                    figure.checked_bytes.map_or_else(|| "– (no offsets)".to_owned(), |bytes| bytes.to_string())
                );
            }
            let _ = writeln!(
                out,
                "\nttyd, wetty: no such feature (a new connection is a new program). terminado: its named \
                 terminals, which replay recent output with no offset."
            );
        }
        if !self.observers.is_empty() {
            let _ = writeln!(
                out,
                "\n### 9. One controller and {} observers on one shell ({} keystrokes per phase)\n",
                super::observers::OBSERVERS,
                p.observer_samples
            );
            let _ = writeln!(
                out,
                "| target | echo p50 µs alone | echo p99 µs alone | echo p50 µs observed | echo p99 µs observed | \
                 observers with every byte | bytes each observer received, all runs |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
            for figure in &self.observers {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {}/{} | {} |",
                    figure.target,
                    figure.alone_p50_us,
                    figure.alone_p99_us,
                    figure.observed_p50_us,
                    figure.observed_p99_us,
                    figure.observers_exact,
                    figure.observers_total,
                    figure.bytes_per_observer
                );
            }
            let _ = writeln!(out, "\n{NO_PEER}.");
        }
        if !self.detached.is_empty() {
            let _ = writeln!(
                out,
                "\n### 10. Server memory per idle detached shell ({} shells, median of {} runs)\n",
                p.idle_shells, p.heavy_runs
            );
            let _ = writeln!(out, "| target | KiB per shell | history bytes per shell | KiB beside the history |");
            let _ = writeln!(out, "|---|---:|---:|---:|");
            for figure in &self.detached {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {:.0} | {:.1} |",
                    figure.target,
                    figure.per_shell_kib,
                    figure.history_bytes_per_shell,
                    figure.per_shell_kib - figure.history_bytes_per_shell / 1024.0
                );
            }
            let _ = writeln!(out, "\n{NO_PEER} (a program ends with its connection).");
        }
        if let Some(figure) = &self.recording {
            let _ = writeln!(
                out,
                "\n### 11. Recording: throughput ({:.0} MiB file, median of {} runs) and echo ({} samples)\n",
                p.file_bytes as f64 / f64::from(1 << 20),
                p.runs,
                p.echo_samples
            );
            let _ = writeln!(
                out,
                "| target | MB/s | ÷ without | server CPU s/GB | echo p50 µs | echo p99 µs | p99 − without, µs |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
            let plain_mb = figure.throughput.first().map(|f| f.mb_per_second);
            let plain_p99 = figure.echo.first().map(|f| f.p99_us);
            for (throughput, echo) in figure.throughput.iter().zip(&figure.echo) {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {} | {} | {:.0} | {:.0} | {} |",
                    throughput.target,
                    throughput.mb_per_second,
                    plain_mb.map_or_else(|| "–".to_owned(), |plain| format!("{:.2}", throughput.mb_per_second / plain)),
                    throughput.cpu_seconds_per_gb.map_or_else(|| "–".to_owned(), |cpu| format!("{cpu:.2}")),
                    echo.p50_us,
                    echo.p99_us,
                    plain_p99.map_or_else(|| "–".to_owned(), |plain| format!("{:+.0}", echo.p99_us - plain))
                );
            }
            let _ = writeln!(out, "\nLong `cat` into a recorded shell ({}):\n", figure.recorded);
            let _ = writeln!(out, "| run | MB | s | server RSS start MiB | peak MiB | end MiB | recording MB |");
            let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
            for (run, cat) in figure.big_cat.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
                    run + 1,
                    cat.payload_bytes as f64 / 1e6,
                    cat.seconds,
                    cat.rss_start_kib as f64 / 1024.0,
                    cat.rss_peak_kib as f64 / 1024.0,
                    cat.rss_end_kib as f64 / 1024.0,
                    cat.recording_bytes as f64 / 1e6
                );
            }
            let _ = writeln!(out, "\nNo peer records.");
        }
    }

    /// The charts of figures 8 to 11, appended to `charts`.
    pub(crate) fn live_charts(&self, caption: Caption<'_>, charts: &mut Vec<Chart>) {
        if !self.reattach.is_empty() {
            let rows: Vec<(String, Vec<f64>)> = self
                .reattach
                .iter()
                .map(|f| (format!("{}, {}", f.target, f.case), vec![f.p50_us / 1e3, f.p99_us / 1e3]))
                .collect();
            charts.push(chart::bars(
                "8-reattach.svg",
                "8. Reattach to a live shell: first resumed byte (lower is better)",
                caption,
                "ms",
                &["p50", "p99"],
                &rows,
            ));
        }
        if !self.observers.is_empty() {
            let rows: Vec<(String, Vec<f64>)> = self
                .observers
                .iter()
                .flat_map(|f| {
                    [
                        (format!("{}, alone", f.target), vec![f.alone_p50_us, f.alone_p99_us]),
                        (
                            format!("{}, {} observers", f.target, f.observers),
                            vec![f.observed_p50_us, f.observed_p99_us],
                        ),
                    ]
                })
                .collect();
            charts.push(chart::bars(
                "9-observers.svg",
                "9. Controller's echo, alone and with observers (lower is better)",
                caption,
                "µs",
                &["p50", "p99"],
                &rows,
            ));
        }
        if !self.detached.is_empty() {
            let rows: Vec<(String, Vec<f64>)> = self
                .detached
                .iter()
                .map(|f| (f.target.clone(), vec![f.per_shell_kib - f.history_bytes_per_shell / 1024.0]))
                .collect();
            charts.push(chart::bars(
                "10-detached.svg",
                "10. Server memory per idle detached shell, beside its history (lower is better)",
                caption,
                "KiB",
                &["median"],
                &rows,
            ));
        }
        if let Some(figure) = &self.recording {
            let rows: Vec<(String, Vec<f64>)> =
                figure.throughput.iter().map(|f| (f.target.clone(), vec![f.mb_per_second])).collect();
            charts.push(chart::bars(
                "11-recording-throughput.svg",
                "11. Output throughput with and without recording (higher is better)",
                caption,
                "MB/s",
                &["median"],
                &rows,
            ));
            let rows: Vec<(String, Vec<f64>)> =
                figure.echo.iter().map(|f| (f.target.clone(), vec![f.p50_us, f.p99_us])).collect();
            charts.push(chart::bars(
                "11-recording-echo.svg",
                "11. Keystroke echo with and without recording (lower is better)",
                caption,
                "µs",
                &["p50", "p99"],
                &rows,
            ));
            let mib = |kib: u64| kib as f64 / 1024.0;
            let rows: Vec<(String, Vec<f64>)> = figure
                .big_cat
                .iter()
                .enumerate()
                .map(|(run, cat)| {
                    (
                        format!("run {}", run + 1),
                        vec![mib(cat.rss_start_kib), mib(cat.rss_peak_kib), mib(cat.rss_end_kib)],
                    )
                })
                .collect();
            let megabytes = recording::median_of(figure.big_cat.iter().map(|cat| cat.payload_bytes as f64 / 1e6));
            charts.push(chart::bars(
                "11-recording-memory.svg",
                &format!("11. Server RSS during a {megabytes:.0} MB cat into a recorded shell"),
                caption,
                "MiB",
                &["start", "peak", "end"],
                &rows,
            ));
        }
    }
}
