//! `cargo xtask schemathesis [--examples N] [--seed S]`: runs Schemathesis (a pinned version,
//! pip-installed into `target/schemathesis-venv`) against the real `wssh` binary's served
//! OpenAPI document (`/api/openapi.json`), with an administrator's token, for at most N
//! generated cases per operation. It fails on any 5xx, on any reply that the document does not
//! describe (status, content type, headers, body schema, `Allow`), on an operation that works
//! without its credentials or answers an undocumented method, and on a panic in the server log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use crate::project_root;

/// The Schemathesis release the run is pinned to (its checks change between releases).
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Per-operation exceptions, each for a limit of OpenAPI rather than of the server: `/sessions`
/// answers go_ws_sh's COPY and MOVE, which the document can only state as `x-copy`/`x-move`
/// extensions, so Schemathesis takes their `Allow` entries for undocumented methods.
///
/// The checks that are failures: every one about what the server answers, plus credentials
/// that are not ignored and methods that are refused.
const CONFIG: &str = r#"
[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_headers_conformance.enabled = true
response_schema_conformance.enabled = true
ignored_auth.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true

[[operations]]
include-path = "/sessions"
checks.allow_header_conformance.enabled = false
"#;

/// The administrator the server under test starts with.
const ADMIN_PASSWORD: &str = "schemathesis-admin-1";

/// Options of `cargo xtask schemathesis`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Generated cases per API operation, at most.
    #[arg(long, default_value_t = 20)]
    examples: u32,
    /// Hypothesis' seed, to repeat a run.
    #[arg(long)]
    seed: Option<u128>,
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn run(args: &Args) -> ExitCode {
    match try_run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn try_run(args: &Args) -> Result<bool, String> {
    let root = project_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(&cargo).args(["build", "-p", "wssh"]).current_dir(&root).status();
    if !built.is_ok_and(|status| status.success()) {
        return Err("`cargo build -p wssh` failed".into());
    }
    let st = schemathesis(&root)?;

    let work = root.join("target/schemathesis-run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|error| format!("{}: {error}", work.display()))?;
    // The login throttle off, in effect: Schemathesis sends thousands of requests with wrong
    // credentials from one address, and its check wants 401 or 403 for each, where the server
    // rightly answers 429 once the failures pile up (the throttle has tests of its own). A run
    // that tripped it depended on the seed.
    let config = serde_json::json!({
        "initial_credentials": [{ "username": "admin", "password": ADMIN_PASSWORD }],
        "initial_sessions": [{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp" }],
        "lockout_max_failures": 1_000_000,
        "limits": {
            "lockout_address_max_failures": 1_000_000,
            "lockout_account_max_failures_per_hour": 1_000_000,
        },
    });
    std::fs::write(work.join("config.json"), config.to_string()).map_err(|error| error.to_string())?;
    let log = std::fs::File::create(work.join("server.log")).map_err(|error| error.to_string())?;
    let mut server = Killed(
        Command::new(root.join("target/debug/wssh"))
            .args(["serve", "--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0"])
            .current_dir(&work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start wssh: {error}"))?,
    );
    let stdout = server.0.stdout.take().ok_or("no stdout")?;
    let address = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("listening on http://").map(str::to_owned))
        .ok_or("wssh did not listen (see target/schemathesis-run/server.log)")?;
    let base = format!("http://{address}");
    let token = mint_token(&base)?;

    println!(
        "schemathesis {SCHEMATHESIS_VERSION} against {base}/api/openapi.json, at most {} cases per operation",
        args.examples
    );
    std::fs::write(work.join("schemathesis.toml"), CONFIG).map_err(|error| error.to_string())?;
    let mut command = Command::new(&st);
    command
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(format!("{base}/api/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--max-examples", &args.examples.to_string()])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: Python 3.11's parser is not safe for Hypothesis' concurrent lambda
        // introspection (a spurious "AST constructor recursion depth mismatch").
        .args(["--workers", "1", "--request-timeout", "10", "--no-color"])
        .args(["--generation-database", "none"])
        .args(["--report-dir", &work.join("report").display().to_string(), "--report", "junit"])
        .current_dir(&work);
    if let Some(seed) = args.seed {
        command.args(["--seed", &seed.to_string()]);
    }
    let status = command.status().map_err(|error| format!("cannot run {}: {error}", st.display()))?;
    let server_log = std::fs::read_to_string(work.join("server.log")).unwrap_or_default();
    let panicked = server_log.contains("panicked");
    if panicked {
        eprintln!("error: the server panicked; see {}", work.join("server.log").display());
    }
    if server.0.try_wait().ok().flatten().is_some() {
        eprintln!("error: the server exited during the run; see {}", work.join("server.log").display());
        return Ok(false);
    }
    Ok(status.success() && !panicked)
}

/// The `st` of the pinned Schemathesis, installing it into a venv under target/ when needed.
fn schemathesis(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target/schemathesis-venv");
    let st = venv.join("bin/st");
    let installed = Command::new(&st)
        .arg("--version")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(SCHEMATHESIS_VERSION));
    if installed {
        return Ok(st);
    }
    let created = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
    if !created.is_ok_and(|status| status.success()) {
        return Err("`python3 -m venv` failed (install python3-venv)".into());
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", &format!("schemathesis=={SCHEMATHESIS_VERSION}")])
        .status();
    if !pip.is_ok_and(|status| status.success()) {
        return Err(format!("pip install schemathesis=={SCHEMATHESIS_VERSION} failed"));
    }
    Ok(st)
}

/// An administrator's token, minted with go_ws_sh's `POST /tokens` (with curl).
fn mint_token(base: &str) -> Result<String, String> {
    let body = serde_json::json!({
        "authorization": { "type": "password", "username": "admin", "password": ADMIN_PASSWORD },
        "token": { "description": "schemathesis", "expires_in_days": 1 },
    });
    for _ in 0..50 {
        let output = Command::new("curl")
            .args(["-sS", "-X", "POST", "-H", "content-type: application/json", "--data-binary"])
            .arg(body.to_string())
            .arg(format!("{base}/tokens"))
            .output()
            .map_err(|error| format!("cannot run curl: {error}"))?;
        if let Ok(reply) = serde_json::from_slice::<serde_json::Value>(&output.stdout)
            && let Some(token) = reply["token"]["token"].as_str()
        {
            return Ok(token.to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("could not mint a token".into())
}
