//! wssh's development tasks, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`):
//!
//! * `cargo xtask migrate [--data-dir DIR | --database URL] [--show]` applies, or only lists, the database
//!   migrations of a data directory ([`migrate`]);
//! * `cargo xtask conformance` runs the API conformance suite, `tests/conformance.rs`, against
//!   the real binary ([`conformance`]);
//! * `cargo xtask fuzz [--seconds N] [TARGET…]` runs the cargo-fuzz targets in `fuzz/` ([`fuzz`]);
//! * `cargo xtask schemathesis [--examples N]` runs Schemathesis against the real binary's
//!   OpenAPI document ([`schemathesis`](mod@schemathesis));
//! * `cargo xtask bench [--quick]` measures wssh against ttyd, terminado, wetty and the raw-PTY
//!   ceiling and writes `target/bench/report.json` and a chart per figure ([`bench`](mod@bench)).

#![allow(clippy::print_stdout, reason = "a command-line tool reports on standard output")]

mod bench;
mod conformance;
mod fuzz;
mod migrate;
mod schemathesis;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line: one task.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about = "wssh's development tasks")]
struct Cli {
    /// The task to run.
    #[command(subcommand)]
    task: Task,
}

/// The tasks.
#[derive(Debug, Subcommand)]
enum Task {
    /// Apply the pending database migrations of a data directory, or with --show only list them.
    Migrate(migrate::Args),
    /// Run the API conformance suite (tests/conformance.rs) against the real wssh binary.
    Conformance,
    /// Run every fuzz target in fuzz/ (nightly toolchain and cargo-fuzz required).
    Fuzz(fuzz::Args),
    /// Run Schemathesis against the real wssh binary's served OpenAPI document: no 5xx and no
    /// reply the document does not describe.
    Schemathesis(schemathesis::Args),
    /// Measure wssh against ttyd, terminado, wetty and the raw PTY: seven figures
    /// (docs/performance.md).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    match Cli::parse().task {
        Task::Migrate(args) => migrate::run(&args),
        Task::Conformance => conformance::run(),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Schemathesis(args) => schemathesis::run(&args),
        Task::Bench(args) => bench::run(&args),
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map_or(manifest_dir.clone(), PathBuf::from)
}
