//! The `wssh` binary as an operator sees it: first start, restart persistence, shutdown,
//! what lands on disk and in the logs.

mod support;

use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use support::{ADMIN_PASSWORD, Server, admin, create_user, login, password_auth, token_auth};

#[tokio::test]
async fn health_check_answers() {
    let server = Server::start();
    let reply = server.client().raw("GET", "/healthz", &[], Vec::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["status"], "ok");
}

#[tokio::test]
async fn first_start_without_config_creates_an_admin_with_a_random_password() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::spawn(temp.path(), &["--data-dir", "data"]);
    let file = temp.path().join("data/initial-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let contents = std::fs::read_to_string(&file).unwrap();
    let password = contents.lines().find_map(|line| line.strip_prefix("password: ")).unwrap().to_owned();
    assert!(password.len() >= 20, "a generated password, not a well-known one");
    assert!(server.stdout_head.iter().any(|line| line.contains(&password)), "printed once on first start");
    let client = server.client();
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": password_auth("admin", &password) })).await.status,
        200
    );
    for well_known in ["pass", "admin", "password"] {
        assert_eq!(
            client.list("/sessions", &json!({ "authorization": password_auth("admin", well_known) })).await.status,
            401
        );
    }
    // A second start neither prints nor changes anything.
    let restarted = server.restart();
    assert!(restarted.stdout_head.iter().all(|line| !line.contains(&password)));
    let client = restarted.client();
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": password_auth("admin", &password) })).await.status,
        200
    );
}

#[tokio::test]
async fn everything_survives_a_restart_and_a_changed_password_stays_changed() {
    let server = Server::start();
    let client = server.client();
    create_user(&client, "alice", "alice-pw").await;
    let created = client
        .create("/sessions", &json!({ "authorization": admin(), "session": { "name": "top", "cmd": "top", "args": ["-b"], "dir": "/" } }))
        .await;
    assert_eq!(created.status, 200);
    let changed = client
        .json(
            "PUT",
            "/credentials",
            &[],
            &json!({ "authorization": admin(), "credential": { "username": "admin", "password": "changed-pw" } }),
        )
        .await;
    assert_eq!(changed.status, 200);
    let (identifier, secret) = login(&client, "alice", "alice-pw").await;

    let server = server.restart();
    let client = server.client();
    // The config still says ADMIN_PASSWORD, but the change made through the API wins.
    assert_eq!(client.list("/sessions", &json!({ "authorization": admin() })).await.status, 401);
    let admin_now = password_auth("admin", "changed-pw");
    let sessions = client.list("/sessions", &json!({ "authorization": admin_now })).await;
    let names: Vec<&str> =
        sessions.json["sessions"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["bash", "top"]);
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": token_auth(&identifier, &secret) })).await.status,
        200
    );
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": password_auth("alice", "alice-pw") })).await.status,
        200
    );
}

#[tokio::test]
async fn no_secret_reaches_the_disk_or_the_logs() {
    let mut server = Server::start();
    let client = server.client();
    create_user(&client, "alice", "plain-text-password-42").await;
    let (_, secret) = login(&client, "alice", "plain-text-password-42").await;
    let bearer = format!("Bearer {secret}");
    assert_eq!(client.json("GET", "/sessions", &[("authorization", &bearer)], &json!({})).await.status, 200);
    assert!(server.terminate().success());
    let server_root = server.root.clone();
    let log = server.log();

    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(server_root.join("data")).unwrap() {
        // SQLite may remove its -wal and -shm files while we look.
        if let Ok(bytes) = std::fs::read(entry.unwrap().path()) {
            on_disk.extend(bytes);
        }
    }
    // On PostgreSQL (WSSH_TEST_BACKEND=postgres) the rows live in the database instead.
    on_disk.extend(server.postgres_rows());
    assert!(!on_disk.is_empty());
    for needle in ["plain-text-password-42", ADMIN_PASSWORD, secret.as_str()] {
        assert!(!contains(&on_disk, needle.as_bytes()), "{needle} found in the data dir");
        assert!(!log.contains(needle), "{needle} found in the log");
    }
    assert!(contains(&on_disk, b"$argon2id$"), "passwords are stored as argon2id hashes");
    assert!(log.contains("path=\"/sessions\""), "requests are logged: {log}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let mut server = Server::start();
    assert_eq!(server.client().raw("GET", "/healthz", &[], Vec::new()).await.status, 200);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err(), "the port is closed");
}

/// A SIGTERM that arrives while the server is still starting (here: hashing the passwords of
/// twenty initial users) stops it cleanly at once, before it listens.
#[test]
fn sigterm_during_start_up_stops_the_server_cleanly() {
    use std::io::BufRead;
    let temp = tempfile::tempdir().unwrap();
    let users: Vec<_> = (0..20)
        .map(|index| serde_json::json!({ "username": format!("user{index}"), "password": format!("password-{index}-long") }))
        .collect();
    let config = serde_json::json!({ "initial_credentials": users, "servers": [{ "port": "0", "protocol": "http" }] });
    std::fs::write(temp.path().join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wssh"))
        .args(["serve", "--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0"])
        .current_dir(temp.path())
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The server logs `starting` once it listens for signals, long before twenty argon2 hashes.
    let mut log = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let starting = log.by_ref().map_while(Result::ok).any(|line| line.contains("starting"));
    assert!(starting, "the server logged no `starting` line");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    assert!(rest.iter().any(|line| line.contains("stopped while starting")), "{rest:#?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(!stdout.contains("listening on"), "it stopped before listening: {stdout}");
}

#[tokio::test]
async fn https_listener_serves_with_the_configured_certificate() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    let generated = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(root)
        .output()
        .expect("openssl is installed");
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let config = json!({
        "initial_credentials": [{ "username": "admin", "password": ADMIN_PASSWORD }],
        "servers": [{ "port": "0", "protocol": "https", "cert": "cert.pem", "key": "key.pem" }]
    });
    std::fs::write(root.join("config.json"), config.to_string()).unwrap();
    let server = Server::spawn(root, &["--config", "config.json", "--data-dir", "data"]);
    // The test harness's `listening on http://` prefix does not match, so it saw https.
    let output = std::process::Command::new("curl")
        .args(["-s", "--cacert", "cert.pem", "-u", &format!("admin:{ADMIN_PASSWORD}")])
        .arg(format!("https://127.0.0.1:{}/sessions", server.addr.port()))
        .current_dir(root)
        .output();
    let Ok(output) = output else { panic!("curl is needed for this test") };
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON over TLS");
    assert_eq!(body["message"], "List of Sessions ok");
}

#[tokio::test]
async fn head_is_get_without_a_body() {
    let server = Server::start();
    let client = server.client();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{ADMIN_PASSWORD}"))
    );
    let get = client.raw("GET", "/user/info", &[("authorization", &basic)], Vec::new()).await;
    assert_eq!(get.status, 200, "{}", get.text);
    let head = client.raw("HEAD", "/user/info", &[("authorization", &basic)], Vec::new()).await;
    assert_eq!(head.status, 200);
    assert!(head.text.is_empty());
    assert_eq!(head.header("content-length"), get.text.len().to_string());
    assert_eq!(client.raw("HEAD", "/user/info", &[], Vec::new()).await.status, 401);
}
