//! `cargo xtask conformance`: runs the API conformance suite, the `conformance` test target of
//! the `wssh` crate (`tests/conformance.rs`), which starts the real binary and checks every
//! documented route, status and reply shape against `docs/api/openapi.json`.

use std::process::{Command, ExitCode};

/// Runs `$CARGO test -p wssh --test conformance` from the project root and exits as it did.
pub(crate) fn run() -> ExitCode {
    // Cargo sets CARGO for the programs it runs; use the same cargo (and toolchain) when we can.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["test", "-p", "wssh", "--test", "conformance"])
        .current_dir(crate::project_root())
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("error: the conformance suite failed ({status})");
            // Exit with cargo's own code where there is one (none when killed by a signal).
            status.code().and_then(|code| u8::try_from(code).ok()).map_or(ExitCode::FAILURE, ExitCode::from)
        }
        Err(error) => {
            eprintln!("error: cannot run {}: {error}", cargo.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}
