//! The web page end to end: headless Chromium (Debian's `chromium`, driven by node's
//! playwright-core from `web/e2e/terminal.mjs`) against the real binary — sign in, open a shell,
//! type and read back, resize and see `stty size` follow, reload and find the same live shell
//! (same `$$`, earlier output on screen), the window title following OSC 0, a share link
//! opened in a second browser context that sees the output but cannot type, lose the
//! connection to a server restart and reconnect, the live shells listed (one attached to from
//! the list, then ended there), sign out and find the old access token refused. Screenshots go
//! to `target/e2e/`; any browser console error fails the test.
//!
//! Needs `/usr/bin/chromium` (or `WSSH_CHROMIUM`) and Node.js with npm; `.ci/run` installs
//! them. `web/node_modules` is filled with `npm ci` when playwright-core is missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::{ADMIN_PASSWORD, Server, login};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Seconds since the epoch of an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS…`; fractions and
/// the zone suffix, which the server writes as UTC, are ignored).
fn unix_seconds(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().expect("a number in the time");
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    days * 86_400 + number(11..13) * 3600 + number(14..16) * 60 + number(17..19)
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("project root")
}

/// The Chromium to drive; a missing one fails the test with the way to install it.
fn chromium() -> PathBuf {
    let path = PathBuf::from(std::env::var("WSSH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.is_file(),
        "the browser test needs Chromium at {}: install it with `apt-get install -y chromium chromium-driver` \
         (as root; `.ci/run` does this), or point WSSH_CHROMIUM at a Chromium binary",
        path.display()
    );
    path
}

/// Makes sure node runs and `web/node_modules` has playwright-core.
async fn node_modules(web: &Path) {
    let node = tokio::process::Command::new("node").arg("--version").output().await;
    assert!(
        node.is_ok_and(|output| output.status.success()),
        "the browser test needs Node.js and npm: install them with `apt-get install -y nodejs npm` (`.ci/run` does this)"
    );
    if web.join("node_modules/playwright-core/package.json").is_file() {
        return;
    }
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(web)
        .stdin(Stdio::null())
        .status()
        .await
        .expect("run npm (install Node.js and npm: `apt-get install -y nodejs npm`)");
    assert!(status.success(), "`npm ci` in web/ failed ({status})");
}

/// Runs `web/e2e/NAME.mjs` in chromium against the page at `url` as the admin on session `sh`
/// (screenshots in `target/e2e`), with `extra` environment; prints its output and returns it
/// with its stdout.
async fn run_script(web: &Path, name: &str, url: String, extra: &[(&str, &str)]) -> (std::process::Output, String) {
    let screenshots = project_root().join("target/e2e");
    let output = tokio::process::Command::new("node")
        .arg(web.join(format!("e2e/{name}.mjs")))
        .current_dir(web)
        .env("WSSH_URL", url)
        .env("WSSH_USER", "admin")
        .env("WSSH_PASSWORD", ADMIN_PASSWORD)
        .env("WSSH_SESSION", "sh")
        .env("WSSH_SCREENSHOTS", &screenshots)
        .env("WSSH_CHROMIUM", chromium())
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("the browser script finishes within 180 s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("--- web/e2e/{name}.mjs stdout\n{stdout}--- stderr\n{stderr}");
    (output, stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_type_resize_sign_out_in_chromium() {
    let browser = chromium();
    let root = project_root();
    let web = root.join("web");
    node_modules(&web).await;

    let server = Server::start();
    let client = server.client();

    // The page and its terminal library are served.
    let page = client.raw("GET", "/", &[], Vec::new()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(
        page.header("content-security-policy").contains("script-src 'self' 'wasm-unsafe-eval';"),
        "{:?}",
        page.headers
    );
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    let xterm = client.raw("GET", "/assets/xterm.js", &[], Vec::new()).await;
    assert_eq!(xterm.status, 200);
    assert!(
        xterm.text.len() > 10_000,
        "xterm.js was not built into the server: run `npm ci` in web/ (needs Node.js with npm) and rebuild"
    );
    // An upgrade still reaches the shell endpoint, and other unknown paths keep the API's 404.
    assert_eq!(client.raw("GET", "/nope", &[], Vec::new()).await.json["message"], "Error: Not found");
    assert_eq!(client.raw("GET", "/assets/nope.js", &[], Vec::new()).await.status, 404);

    // An access token to sign in with as well.
    let (_identifier, token) = login(&client, "admin", ADMIN_PASSWORD).await;

    let screenshots = root.join("target/e2e");
    let mut script = tokio::process::Command::new("node")
        .arg(web.join("e2e/terminal.mjs"))
        .current_dir(&web)
        .env("WSSH_URL", server.base())
        .env("WSSH_USER", "admin")
        .env("WSSH_PASSWORD", ADMIN_PASSWORD)
        .env("WSSH_SESSION", "bash")
        .env("WSSH_ACCESS_TOKEN", &token)
        .env("WSSH_SCREENSHOTS", &screenshots)
        .env("WSSH_CHROMIUM", &browser)
        .env("WSSH_DROP", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let mut answer = script.stdin.take().expect("piped stdin");
    let mut errors = script.stderr.take().expect("piped stderr");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = errors.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(script.stdout.take().expect("piped stdout")).lines();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut stdout = String::new();
    let mut server = Some(server);
    let mut restarted = false;
    while let Some(line) = tokio::time::timeout_at(deadline, lines.next_line())
        .await
        .expect("the browser script finishes within 180 s")
        .expect("read the script's output")
    {
        stdout.push_str(&line);
        stdout.push('\n');
        if line == "e2e: drop the connection now" {
            // A real drop: the server goes away with the shell open, and comes back.
            let running = server.take().expect("a server");
            server = Some(tokio::task::spawn_blocking(move || running.restart_at_the_same_address()).await.unwrap());
            answer.write_all(b"restarted\n").await.expect("answer the script");
            restarted = true;
        }
    }
    let server = server.expect("a server");
    let status = tokio::time::timeout_at(deadline, script.wait()).await.expect("the script exits").expect("wait");
    let stderr = errors.await.unwrap();
    eprintln!(
        "--- web/e2e/terminal.mjs stdout\n{stdout}--- stderr\n{stderr}--- screenshots in {}",
        screenshots.display()
    );
    assert!(restarted, "the script never asked for the connection to drop");
    assert!(status.success(), "the browser test failed ({status}); server log:\n{}", server.log());
    assert!(stdout.contains("e2e: all steps passed"));
    assert!(screenshots.join("03-hello.png").is_file() && screenshots.join("04-resized.png").is_file());
    assert!(screenshots.join("05b-connection-lost.png").is_file());
    assert!(screenshots.join("05c-reloaded.png").is_file() && screenshots.join("05d-guest.png").is_file());

    // After the page signed out, its access JWT is refused everywhere.
    let jwt = stdout
        .lines()
        .find_map(|line| line.strip_prefix("revoked-jwt: "))
        .expect("the script names the signed-out access token");
    let bearer = format!("Bearer {jwt}");
    assert_eq!(client.json("GET", "/sessions", &[("authorization", &bearer)], &json!({})).await.status, 401);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &bearer)], Vec::new()).await.status, 401);
}

/// The account view and the terminal settings, with the page served under a base path
/// (`web/e2e/account.mjs`): password change, a setting that survives a reload and reaches the
/// terminal, two-factor authentication turned on with a code computed from the shown secret and
/// off again with a code, own tokens with an expiry made (secret shown once), listed and revoked.
#[tokio::test]
async fn account_page_and_settings_under_a_base_path_in_chromium() {
    chromium(); // Fails at once, before a server starts, when Chromium is missing.
    let root = project_root();
    let web = root.join("web");
    node_modules(&web).await;

    let temp = tempfile::tempdir().unwrap();
    let config = json!({
        "initial_credentials": [{ "username": "admin", "password": ADMIN_PASSWORD }],
        "initial_sessions": [{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp" }],
    });
    std::fs::write(temp.path().join("config.json"), config.to_string()).unwrap();
    let server =
        Server::spawn(temp.path(), &["--config", "config.json", "--data-dir", "data", "--base-path", "/tools/wssh"]);
    let extra = [("WSSH_NEW_PASSWORD", "a-new-password-9")];
    let (output, stdout) = run_script(&web, "account", format!("{}/tools/wssh/", server.base()), &extra).await;
    assert!(output.status.success(), "the account browser test failed; server log:\n{}", server.log());
    assert!(stdout.contains("e2e: account steps passed"));

    // What the page did is real: the new password works without a code (2FA was turned off
    // again), the old one does not; the kept token works and expires in 7 days, the revoked
    // one is refused.
    let client = server.client();
    let body = serde_json::to_vec(&json!({ "username": "admin", "password": "a-new-password-9" })).unwrap();
    let reply = client.raw("POST", "/tools/wssh/auth/login", &[("content-type", "application/json")], body).await;
    assert_eq!(reply.status, 200, "2FA is off again: no code is needed: {}", reply.text);
    let body = serde_json::to_vec(&json!({ "username": "admin", "password": ADMIN_PASSWORD })).unwrap();
    let reply = client.raw("POST", "/tools/wssh/auth/login", &[("content-type", "application/json")], body).await;
    assert_eq!(reply.status, 401);
    let secret_of = |name: &str| {
        let prefix = format!("{name}: ");
        stdout.lines().find_map(|line| line.strip_prefix(&prefix)).map(str::to_owned).expect("the script names it")
    };
    let kept = format!("Bearer {}", secret_of("kept-token"));
    let listed = client.raw("GET", "/tools/wssh/tokens", &[("authorization", &kept)], Vec::new()).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let tokens = listed.json["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "one token left: {}", listed.text);
    let expires = unix_seconds(tokens[0]["expires_at"].as_str().expect("an expiry"));
    let made = unix_seconds(tokens[0]["created_at"].as_str().unwrap());
    assert!(
        (expires - made - 7 * 86_400).abs() <= 2,
        "the kept token expires 7 days after it was made: {}",
        listed.text
    );
    let revoked = format!("Bearer {}", secret_of("revoked-token"));
    let refused = client.raw("GET", "/tools/wssh/tokens", &[("authorization", &revoked)], Vec::new()).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
}

/// The Recordings and Audit views (`web/e2e/recordings.mjs`): a shell of a recorded session
/// template prints a line and exits, the page plays its recording with asciinema-player under
/// the page's Content-Security-Policy and shows the line, the audit view lists the recording's
/// read and the shell's end and filters by kind, and the page deletes the recording; then a
/// live recorded shell is watched from the Recordings view in observe mode.
#[tokio::test]
async fn recordings_play_and_audit_in_chromium() {
    chromium(); // Fails at once, before a server starts, when Chromium is missing.
    let root = project_root();
    let web = root.join("web");
    node_modules(&web).await;

    let temp = tempfile::tempdir().unwrap();
    let config = json!({
        "initial_credentials": [{ "username": "admin", "password": ADMIN_PASSWORD }],
        "initial_sessions": [{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp", "record": true }],
    });
    std::fs::write(temp.path().join("config.json"), config.to_string()).unwrap();
    let server = Server::spawn(temp.path(), &["--config", "config.json", "--data-dir", "data"]);
    let client = server.client();
    let player = client.raw("GET", "/assets/asciinema-player.js", &[], Vec::new()).await;
    assert_eq!(player.status, 200);
    assert!(
        player.text.len() > 10_000,
        "asciinema-player was not built into the server: run `npm ci` in web/ and rebuild"
    );

    let screenshots = root.join("target/e2e");
    let (output, stdout) = run_script(&web, "recordings", server.base(), &[]).await;
    assert!(output.status.success(), "the recordings browser test failed; server log:\n{}", server.log());
    assert!(stdout.contains("e2e: recordings steps passed"));
    assert!(screenshots.join("recordings-01-played.png").is_file());

    // What the page did is real: the recording is gone, its file too, and the deletion and the
    // read are in the audit log with the admin as the actor.
    let (_identifier, token) = login(&client, "admin", ADMIN_PASSWORD).await;
    let bearer = format!("Bearer {token}");
    let recordings = client.raw("GET", "/api/recordings", &[("authorization", &bearer)], Vec::new()).await;
    assert_eq!(recordings.status, 200, "{}", recordings.text);
    // What stays is the live shell the page watched, still being recorded.
    assert_eq!(recordings.json["data"]["total"], 1, "{}", recordings.text);
    assert!(recordings.json["data"]["content"][0]["ended_at"].is_null(), "{}", recordings.text);
    assert_eq!(std::fs::read_dir(temp.path().join("data/recordings")).unwrap().count(), 1);
    assert!(screenshots.join("recordings-03-watching.png").is_file());
    let attached = client.raw("GET", "/api/audit?kind=shell.attached", &[("authorization", &bearer)], Vec::new()).await;
    assert_eq!(attached.json["data"]["content"][0]["mode"], "observe", "the page watched: {}", attached.text);
    for kind in ["recording.read", "recording.deleted"] {
        let audit =
            client.raw("GET", &format!("/api/audit?kind={kind}"), &[("authorization", &bearer)], Vec::new()).await;
        assert_eq!(audit.status, 200, "{}", audit.text);
        let events = audit.json["data"]["content"].as_array().unwrap().clone();
        assert!(!events.is_empty(), "no {kind} event: {}", audit.text);
        assert!(events.iter().all(|event| event["actor"]["username"] == "admin"), "{}", audit.text);
    }
}
