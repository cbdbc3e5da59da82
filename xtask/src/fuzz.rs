//! `cargo xtask fuzz [--seconds N] [TARGET…]`: runs every cargo-fuzz target in `fuzz/` (or the
//! ones named) for N seconds each, with the committed seeds in `fuzz/seeds/<target>/`. Needs the
//! nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). A crash stops the run; its
//! input is in `fuzz/artifacts/<target>/`, to be committed as a regression test.

use std::process::{Command, ExitCode};

use crate::project_root;

/// Options of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How long to fuzz each target, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The targets to run (default: all of them).
    targets: Vec<String>,
}

/// The targets `cargo fuzz list` reports.
fn all_targets(fuzz_dir: &std::path::Path) -> Result<Vec<String>, String> {
    let output = Command::new("cargo")
        .args(["+nightly", "fuzz", "list"])
        .current_dir(fuzz_dir)
        .output()
        .map_err(|error| format!("cannot run cargo +nightly fuzz: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo +nightly fuzz list` failed (is cargo-fuzz installed? `cargo install cargo-fuzz`): {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Into::into)
        .collect())
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let fuzz_dir = project_root().join("fuzz");
    let targets = if args.targets.is_empty() {
        match all_targets(&fuzz_dir) {
            Ok(targets) => targets,
            Err(error) => {
                eprintln!("xtask fuzz: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        args.targets.clone()
    };
    for target in &targets {
        println!("fuzzing {target} for {} s", args.seconds);
        let corpus = fuzz_dir.join("corpus").join(target);
        let seeds = fuzz_dir.join("seeds").join(target);
        if let Err(error) = std::fs::create_dir_all(&corpus) {
            eprintln!("xtask fuzz: cannot create {}: {error}", corpus.display());
            return ExitCode::FAILURE;
        }
        let mut command = Command::new("cargo");
        command.args(["+nightly", "fuzz", "run", target]).arg(&corpus);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        command.args(["--", &format!("-max_total_time={}", args.seconds), "-rss_limit_mb=4096", "-timeout=10"]);
        match command.current_dir(&fuzz_dir).status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!(
                    "xtask fuzz: {target} failed ({status}); the input is in {}",
                    fuzz_dir.join("artifacts").join(target).display()
                );
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("xtask fuzz: cannot run cargo +nightly fuzz: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("fuzzed {} targets, {} s each: no crash", targets.len(), args.seconds);
    ExitCode::SUCCESS
}
