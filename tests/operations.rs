//! Operating wssh, against the real binary: the first start, the one-liner and its listen
//! forms, strict configuration, signals, proxies (real nginx and Caddy with the snippets of
//! docs/deploy.md), metrics.

#![allow(clippy::type_complexity)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Client, password_auth};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WSSH: &str = env!("CARGO_BIN_EXE_wssh");

/// A `wssh serve ARGS…` started exactly as given (no `--listen` appended), killed on drop.
struct Running {
    child: Child,
    /// Every address it announced.
    addrs: Vec<String>,
    /// What it printed before listening.
    head: Vec<String>,
    log: PathBuf,
}

impl Running {
    fn start(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(WSSH)
            .arg("serve")
            .args(args)
            .current_dir(root)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wssh");
        let log = root.join(format!("stderr-{}.log", child.id()));
        let stderr = child.stderr.take().unwrap();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log_path).unwrap();
            let _ = std::io::copy(&mut BufReader::new(stderr), &mut file);
        });
        let (sender, receiver) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut addrs = Vec::new();
        let mut head = Vec::new();
        // Every listener announces itself at once; the first one, then a moment for the rest.
        let mut wait = Duration::from_secs(60);
        while let Ok(line) = receiver.recv_timeout(wait) {
            match line.strip_prefix("listening on ").and_then(|url| url.split_once("://")) {
                Some((_, address)) => {
                    addrs.push(address.to_owned());
                    wait = Duration::from_millis(300);
                }
                None => head.push(line),
            }
        }
        assert!(!addrs.is_empty(), "wssh did not listen; log: {}", std::fs::read_to_string(&log).unwrap_or_default());
        Running { child, addrs, head, log }
    }

    fn addr(&self) -> SocketAddr {
        self.addrs[0].parse().unwrap()
    }

    fn client(&self) -> Client {
        Client { addr: self.addr(), source: None }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        assert!(
            Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap().success()
        );
    }

    /// Waits up to `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `wssh ARGS…` to completion: (exit code, stdout, stderr).
fn run(root: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(WSSH).args(args).current_dir(root).envs(env.iter().copied()).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The generated admin password of a first start.
fn generated_password(data_dir: &Path) -> String {
    let contents = std::fs::read_to_string(data_dir.join("initial-admin-password")).unwrap();
    contents.lines().find_map(|line| line.strip_prefix("password: ")).unwrap().to_owned()
}

async fn session_names(client: &Client, username: &str, password: &str) -> Vec<(String, String)> {
    let reply = client.list("/sessions", &json!({ "authorization": password_auth(username, password) })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| (session["name"].as_str().unwrap().to_owned(), session["cmd"].as_str().unwrap().to_owned()))
        .collect()
}

/// Any byte stream a shell can run over (plain TCP, TLS).
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// A native-framing shell on `path` with Basic credentials.
struct Shell {
    socket: tokio_tungstenite::WebSocketStream<Box<dyn Stream>>,
    output: Vec<u8>,
}

impl Shell {
    async fn open(url: &str, username: &str, password: &str) -> Shell {
        let request = url.into_client_request().unwrap();
        let host = request.uri().authority().unwrap().as_str().to_owned();
        let stream = TcpStream::connect(host).await.unwrap();
        Shell::open_over(Box::new(stream), url, username, password).await
    }

    async fn open_over(stream: Box<dyn Stream>, url: &str, username: &str, password: &str) -> Shell {
        let mut request = url.into_client_request().unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        request.headers_mut().insert("authorization", format!("Basic {basic}").parse().unwrap());
        request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await.expect("websocket handshake");
        socket.send(Message::Binary(vec![1, 0, 80, 0, 24].into())).await.unwrap();
        Shell { socket, output: Vec::new() }
    }

    async fn type_text(&mut self, text: &str) {
        let mut frame = vec![0];
        frame.extend_from_slice(text.as_bytes());
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    async fn read_until(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&self.output).contains(needle) {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&self.output)))
                .expect("open")
                .expect("frame");
            if let Message::Binary(frame) = message
                && frame.first() == Some(&0)
            {
                self.output.extend_from_slice(&frame[1..]);
            }
        }
    }

    /// Reads until the close frame: its code and reason (1006 when the connection just broke).
    async fn read_close(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await.expect("closed within 20 s") {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map_or((1005, String::new()), |frame| (frame.code.into(), frame.reason.to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (1006, String::new()),
            }
        }
    }
}

// ---- first start ----------------------------------------------------------------------------

#[tokio::test]
async fn a_first_start_without_configuration_serves_the_login_shell() {
    let temp = tempfile::tempdir().unwrap();
    let server = Running::start(temp.path(), &["--data-dir", "data", "--listen", "127.0.0.1:0"], &[]);
    let password = generated_password(&temp.path().join("data"));
    assert!(server.head.iter().any(|line| line.contains(&password)), "{:?}", server.head);
    let sessions = session_names(&server.client(), "admin", &password).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let (name, cmd) = &sessions[0];
    assert_eq!(Path::new(cmd).file_name().unwrap().to_str().unwrap(), name, "named after the shell");
    assert!(Path::new(cmd).is_absolute() && Path::new(cmd).exists(), "{cmd}");
    // The README's connect line works at once: a shell that runs a command.
    let mut shell = Shell::open(&format!("ws://{}/{name}", server.addr()), "admin", &password).await;
    shell.type_text("echo first-$((6*7))-start\n").await;
    shell.read_until("first-42-start").await;
    drop(shell);

    // Deleted, it stays deleted: only a first start creates it.
    let deleted = server
        .client()
        .json(
            "DELETE",
            "/sessions",
            &[],
            &json!({ "authorization": password_auth("admin", &password), "session": { "name": name } }),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    drop(server);
    let server = Running::start(temp.path(), &["--data-dir", "data", "--listen", "127.0.0.1:0"], &[]);
    assert!(session_names(&server.client(), "admin", &password).await.is_empty());
}

// ---- the one-liner ----------------------------------------------------------------------------

#[tokio::test]
async fn the_one_liner_serves_a_command_to_the_given_administrator() {
    let temp = tempfile::tempdir().unwrap();
    let args =
        ["--data-dir", "data", "-p", "0", "-c", "ops:one-liner-pw", "sh", "-c", "echo served-$((6*7)); sleep 30"];
    let server = Running::start(temp.path(), &args, &[]);
    assert!(server.addr().ip().is_loopback(), "-p PORT listens on loopback");
    assert!(!temp.path().join("data/initial-admin-password").exists(), "no generated admin beside the credential");
    let sessions = session_names(&server.client(), "ops", "one-liner-pw").await;
    assert_eq!(sessions, vec![("sh".to_owned(), "sh".to_owned())]);
    let mut shell = Shell::open(&format!("ws://{}/sh", server.addr()), "ops", "one-liner-pw").await;
    shell.read_until("served-42").await;
    // The credential is an administrator.
    let users =
        server.client().list("/credentials", &json!({ "authorization": password_auth("ops", "one-liner-pw") })).await;
    assert_eq!(users.status, 200);
    assert_eq!(users.json["credentials"][0]["roles"], json!(["admin"]), "{}", users.text);

    // `--` and a different command on the next start: the session follows the command line.
    drop(shell);
    drop(server);
    let server = Running::start(temp.path(), &["--data-dir", "data", "-p", "0", "--", "sh", "-c", "echo again"], &[]);
    let reply =
        server.client().list("/sessions", &json!({ "authorization": password_auth("ops", "one-liner-pw") })).await;
    assert_eq!(reply.json["sessions"][0]["args"], json!(["-c", "echo again"]), "{}", reply.text);
}

#[tokio::test]
async fn listen_takes_a_port_a_colon_port_a_host_name_and_ipv6() {
    let temp = tempfile::tempdir().unwrap();
    let cases: [(&str, fn(&SocketAddr) -> bool); 4] = [
        ("0", |address| address.ip().to_string() == "127.0.0.1"),
        (":0", |address| address.ip().is_unspecified()),
        ("localhost:0", |address| address.ip().is_loopback()),
        ("127.0.0.1:0", |address| address.ip().to_string() == "127.0.0.1"),
    ];
    for (form, expected) in cases {
        let server = Running::start(temp.path(), &["--data-dir", "data", "--listen", form], &[]);
        assert!(expected(&server.addr()), "{form} -> {:?}", server.addrs);
        let port = server.addr().port();
        let reply = Client { addr: SocketAddr::from(([127, 0, 0, 1], port)), source: None }
            .raw("GET", "/healthz", &[], Vec::new())
            .await;
        if !(form == "localhost:0" && server.addr().is_ipv6()) {
            assert_eq!(reply.status, 200, "{form}");
        }
        let warned = server.log().contains("PLAIN HTTP");
        assert_eq!(warned, form == ":0", "{form}: a loud warning only on a non-loopback plain listener");
    }
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let server = Running::start(temp.path(), &["--data-dir", "data", "--listen", "[::1]:0"], &[]);
        assert!(server.addr().is_ipv6(), "{:?}", server.addrs);
        assert_eq!(server.client().raw("GET", "/healthz", &[], Vec::new()).await.status, 200);
    }
    let (code, _, stderr) = run(temp.path(), &["serve", "--data-dir", "data", "--listen", "nowhere"], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("PORT, :PORT, HOST:PORT or [IPV6]:PORT"), "{stderr}");
}

// ---- strict configuration ------------------------------------------------------------------

#[test]
fn bad_configurations_are_refused_before_the_data_directory_is_touched() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    let cases: &[(Value, &[(&str, &str)], &[&str])] = &[
        (json!({ "initial_session": [] }), &[], &["unknown key `initial_session`", "did you mean `initial_sessions`"]),
        (json!({ "server": [] }), &[], &["unknown key `server`", "did you mean `servers`"]),
        (json!({ "servers": [{ "port": "70000" }] }), &[], &["server 0", "invalid port \"70000\""]),
        (
            json!({ "servers": [{ "port": 1, "protocol": "https", "cert": "missing.pem", "key": "missing.pem" }] }),
            &[],
            &["missing.pem"],
        ),
        (json!({ "initial_credentials": [{ "username": "a:b", "password": "x" }] }), &[], &["initial_credentials"]),
        (json!({ "lockout_max_failures": 0 }), &[], &["lockout_max_failures"]),
        (
            json!({}),
            &[("WSSH_LOCKOUT_WINDOW_SECONDS", "soon")],
            &["WSSH_LOCKOUT_WINDOW_SECONDS", "lockout_window_seconds"],
        ),
        (
            json!({}),
            &[("WSSH_SERVERS", r#"[{"port":1,"hots":"x"}]"#)],
            &["WSSH_SERVERS", "servers[0].hots", "servers[0].host"],
        ),
        (json!({ "node_url": "ws://10.0.0.1:28080" }), &[], &["node_url", "http://HOST:PORT"]),
        (json!({}), &[("WSSH_NODE_URL", "10.0.0.1:28080")], &["node_url", "http://HOST:PORT"]),
    ];
    for (config, env, expected) in cases {
        std::fs::write(root.join("config.json"), config.to_string()).unwrap();
        for check in [false, true] {
            let mut args = vec!["serve", "--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0"];
            if check {
                args.push("--check");
            }
            let (code, _, stderr) = run(root, &args, env);
            assert_eq!(code, 1, "{config} {env:?}: {stderr}");
            for needle in *expected {
                assert!(stderr.contains(needle), "{config} {env:?}: {needle:?} not in {stderr}");
            }
            assert!(!root.join("data").exists(), "{config}: the data directory was created");
        }
    }
}

#[test]
fn check_validates_a_good_configuration_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    let config = json!({
        "initial_credentials": [{ "username": "admin", "password": "pw" }],
        "initial_sessions": [{ "name": "bash", "cmd": "bash" }],
        "servers": [{ "port": 28999, "host": "localhost" }]
    });
    std::fs::write(root.join("config.json"), config.to_string()).unwrap();
    let (code, stdout, stderr) =
        run(root, &["serve", "--config", "config.json", "--check"], &[("WSSH_DATA_DIR", "from-env")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(stdout.contains("from-env") && stdout.contains(":28999"), "{stdout}");
    assert!(!root.join("from-env").exists());
}

// ---- signals ------------------------------------------------------------------------------------

fn sh_config() -> Value {
    json!({
        "initial_credentials": [{ "username": "admin", "password": "admin-pw" }],
        "initial_sessions": [{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp" }],
    })
}

#[tokio::test]
async fn sigterm_closes_shells_with_1001_and_a_reason() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("config.json"), sh_config().to_string()).unwrap();
    let mut server =
        Running::start(temp.path(), &["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0"], &[]);
    let mut shells = Vec::new();
    for index in 0..2 {
        let mut shell = Shell::open(&format!("ws://{}/sh", server.addr()), "admin", "admin-pw").await;
        shell.type_text(&format!("echo ready-{index}-$((1+1))\n")).await;
        shell.read_until(&format!("ready-{index}-2")).await;
        shells.push(shell);
    }
    server.signal("TERM");
    for shell in &mut shells {
        let (code, reason) = shell.read_close().await;
        assert_eq!(code, 1001, "going away");
        assert!(reason.contains("shutting down"), "{reason}");
    }
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// A self-signed certificate for 127.0.0.1 as `NAME.pem` and `NAME.key` in `dir`.
fn make_certificate(dir: &Path, name: &str) {
    let generated = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}"), "-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.pem")])
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
}

/// A TLS connection to `addr` that trusts only the certificate in `trusted`.
async fn tls_connect(addr: SocketAddr, trusted: &Path) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_file(trusted).unwrap()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let stream = TcpStream::connect(addr).await?;
    connector.connect(rustls::pki_types::ServerName::from(addr.ip()), stream).await
}

#[tokio::test]
async fn sighup_swaps_the_certificate_while_a_shell_stays_open() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    make_certificate(root, "old");
    make_certificate(root, "new");
    std::fs::copy(root.join("old.pem"), root.join("cert.pem")).unwrap();
    std::fs::copy(root.join("old.key"), root.join("key.pem")).unwrap();
    let mut config = sh_config();
    config["servers"] =
        json!([{ "port": 0, "protocol": "https", "cert": "cert.pem", "key": "key.pem", "host": "127.0.0.1" }]);
    std::fs::write(root.join("config.json"), config.to_string()).unwrap();
    let mut server = Running::start(root, &["--config", "config.json", "--data-dir", "data"], &[]);
    let addr = server.addr();
    assert!(tls_connect(addr, &root.join("new.pem")).await.is_err(), "the new certificate is not served yet");
    let stream = tls_connect(addr, &root.join("old.pem")).await.unwrap();
    let mut shell = Shell::open_over(Box::new(stream), &format!("wss://{addr}/sh"), "admin", "admin-pw").await;
    shell.type_text("echo before-$((2+3))\n").await;
    shell.read_until("before-5").await;

    // A broken pair is refused and the old one stays.
    std::fs::write(root.join("cert.pem"), "not a certificate").unwrap();
    server.signal("HUP");
    let log_mentions = |needle: &str| server.log().contains(needle);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !log_mentions("certificate not reloaded") {
        assert!(std::time::Instant::now() < deadline, "the failed reload was not logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tls_connect(addr, &root.join("old.pem")).await.is_ok(), "old pair kept after a failed reload");

    // Only now the good new pair, so the failed reload cannot have read it.
    std::fs::copy(root.join("new.pem"), root.join("cert.pem")).unwrap();
    std::fs::copy(root.join("new.key"), root.join("key.pem")).unwrap();
    server.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tls_connect(addr, &root.join("new.pem")).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the new certificate was not served after SIGHUP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tls_connect(addr, &root.join("old.pem")).await.is_err(), "the old certificate is gone");
    assert!(server.wait_exit(Duration::from_millis(100)).is_none(), "SIGHUP does not end the server");
    // The shell opened before the swap carries on.
    shell.type_text("echo after-$((3+4))\n").await;
    shell.read_until("after-7").await;
}

// ---- behind a proxy -----------------------------------------------------------------------------

async fn login_from(client: &Client, forwarded: &[(&str, &str)], username: &str, password: &str) -> support::Reply {
    let body = serde_json::to_vec(&json!({ "username": username, "password": password })).unwrap();
    let mut headers = vec![("content-type", "application/json")];
    headers.extend_from_slice(forwarded);
    client.raw("POST", "/auth/login", &headers, body).await
}

fn proxy_config() -> Value {
    let mut config = sh_config();
    config["lockout_max_failures"] = json!(3);
    config
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("config.json"), proxy_config().to_string()).unwrap();
    let args = ["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0"];
    let attacker = [("x-forwarded-for", "198.51.100.66")];
    let user = [("forwarded", "for=203.0.113.7;proto=https")];

    // Trusted: the attacker's failures lock out the attacker's address only.
    let mut trusted_args = args.to_vec();
    trusted_args.extend(["--trusted-proxy", "127.0.0.1,10.0.0.0/8"]);
    let server = Running::start(temp.path(), &trusted_args, &[]);
    let client = server.client();
    for attempt in 0..3 {
        let reply = login_from(&client, &attacker, "admin", &format!("guess{attempt}")).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    assert_eq!(login_from(&client, &attacker, "admin", "admin-pw").await.status, 429, "the attacker is locked out");
    let reply = login_from(&client, &user, "admin", "admin-pw").await;
    assert_eq!(reply.status, 200, "another client behind the same proxy is not: {}", reply.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(server.log().contains("client=198.51.100.66") && server.log().contains("client=203.0.113.7")) {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);

    // Untrusted: the headers are ignored, every client is the proxy's address, and the
    // attacker's failures lock everyone behind it out.
    let server = Running::start(temp.path(), &args, &[]);
    let client = server.client();
    for attempt in 0..3 {
        assert_eq!(login_from(&client, &attacker, "admin", &format!("guess{attempt}")).await.status, 401);
    }
    assert_eq!(login_from(&client, &user, "admin", "admin-pw").await.status, 429);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.log().contains("client=127.0.0.1") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.log();
    assert!(!log.contains("198.51.100.66") && !log.contains("203.0.113.7"), "{log}");
}

#[tokio::test]
async fn the_refresh_cookie_is_secure_when_the_client_came_over_tls() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    std::fs::write(root.join("config.json"), sh_config().to_string()).unwrap();
    let server = Running::start(
        root,
        &["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1"],
        &[],
    );
    let client = server.client();
    let cookie = |reply: &support::Reply| reply.header("set-cookie").to_owned();
    let plain = login_from(&client, &[], "admin", "admin-pw").await;
    assert_eq!(plain.status, 200);
    assert!(!cookie(&plain).contains("Secure"), "{}", cookie(&plain));
    for proto in [
        [("x-forwarded-proto", "https"), ("x-forwarded-for", "203.0.113.1")],
        [("forwarded", "for=203.0.113.1;proto=https"), ("x-other", "1")],
    ] {
        let reply = login_from(&client, &proto, "admin", "admin-pw").await;
        assert!(
            cookie(&reply).contains("HttpOnly") && cookie(&reply).ends_with("; Secure"),
            "{proto:?}: {}",
            cookie(&reply)
        );
    }
    drop(server);

    // Directly over TLS.
    make_certificate(root, "direct");
    let mut config = sh_config();
    config["servers"] =
        json!([{ "port": 0, "protocol": "https", "cert": "direct.pem", "key": "direct.key", "host": "127.0.0.1" }]);
    std::fs::write(root.join("config.json"), config.to_string()).unwrap();
    let server = Running::start(root, &["--config", "config.json", "--data-dir", "data"], &[]);
    let stream = tls_connect(server.addr(), &root.join("direct.pem")).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::post("/auth/login")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            json!({ "username": "admin", "password": "admin-pw" }).to_string(),
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
}

#[tokio::test]
async fn everything_works_under_a_base_path() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("config.json"), sh_config().to_string()).unwrap();
    let server = Running::start(
        temp.path(),
        &["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0", "--base-path", "/tools/wssh/"],
        &[],
    );
    let client = server.client();
    let page = client.raw("GET", "/tools/wssh/", &[], Vec::new()).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(r#"src="assets/app.js?v="#), "relative asset URLs");
    assert_eq!(client.raw("GET", "/tools/wssh/assets/app.js", &[], Vec::new()).await.status, 200);
    let bare = client.raw("GET", "/tools/wssh", &[], Vec::new()).await;
    assert_eq!((bare.status, bare.header("location")), (308, "/tools/wssh/"));
    assert_eq!(client.raw("GET", "/tools/wssh/healthz", &[], Vec::new()).await.status, 200);
    for outside in ["/", "/healthz", "/assets/app.js", "/tools/wsshx/healthz"] {
        assert_eq!(client.raw("GET", outside, &[], Vec::new()).await.status, 404, "{outside}");
    }
    let sessions =
        client.list("/tools/wssh/sessions", &json!({ "authorization": password_auth("admin", "admin-pw") })).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    let login = login_from(&client, &[], "admin", "admin-pw").await;
    assert_eq!(login.status, 404, "the API answers only under the base path");
    let body = serde_json::to_vec(&json!({ "username": "admin", "password": "admin-pw" })).unwrap();
    let login = client.raw("POST", "/tools/wssh/auth/login", &[("content-type", "application/json")], body).await;
    assert_eq!(login.status, 200);
    assert!(login.header("set-cookie").contains("Path=/tools/wssh/auth;"), "{}", login.header("set-cookie"));
    let mut shell = Shell::open(&format!("ws://{}/tools/wssh/sh", server.addr()), "admin", "admin-pw").await;
    shell.type_text("echo under-$((40+2))\n").await;
    shell.read_until("under-42").await;
}

// ---- metrics --------------------------------------------------------------------------------------

/// A Python with the Prometheus project's `prometheus_client` (its OpenMetrics parser), in a
/// venv under `target/`, made on first use.
fn prometheus_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prometheus-venv");
    let python = venv.join("bin/python");
    let ready = || Command::new(&python).args(["-c", "import prometheus_client"]).status().is_ok_and(|s| s.success());
    if !ready() {
        let lock = std::fs::File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("prometheus-venv.lock")).unwrap();
        nix_lock(&lock);
        if !ready() {
            assert!(Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap().success());
            let pip = Command::new(venv.join("bin/pip")).args(["install", "-q", "prometheus_client"]).status().unwrap();
            assert!(pip.success(), "pip install prometheus_client");
        }
    }
    python
}

/// Holds an exclusive lock on `file` until it is closed (tests run in parallel).
fn nix_lock(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
}

/// Every sample of a scrape, parsed by the Prometheus parser: `name{labels}` → value.
fn scrape(python: &Path, url: &str) -> std::collections::BTreeMap<String, f64> {
    let script = r#"
import json, sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
with urllib.request.urlopen(sys.argv[1]) as reply:
    assert reply.headers['Content-Type'].startswith('application/openmetrics-text'), reply.headers['Content-Type']
    text = reply.read().decode()
samples = {}
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        labels = ','.join(f'{k}={v}' for k, v in sorted(sample.labels.items()))
        samples[f'{sample.name}{{{labels}}}'] = sample.value
print(json.dumps(samples))
"#;
    let output = Command::new(python).args(["-c", script, url]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move() {
    let python = prometheus_python();
    let temp = tempfile::tempdir().unwrap();
    let mut config = sh_config();
    config["lockout_max_failures"] = json!(2);
    std::fs::write(temp.path().join("config.json"), config.to_string()).unwrap();
    let args =
        ["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"];
    let server = Running::start(temp.path(), &args, &[]);
    let url =
        server.head.iter().find_map(|line| line.strip_prefix("metrics on ")).expect("metrics announced").to_owned();
    let before = scrape(&python, &url);
    let value = |samples: &std::collections::BTreeMap<String, f64>, key: &str| samples.get(key).copied().unwrap_or(0.0);

    let client = server.client();
    assert_eq!(login_from(&client, &[], "admin", "admin-pw").await.status, 200);
    for _ in 0..2 {
        assert_eq!(login_from(&client, &[], "mallory", "wrong").await.status, 401);
    }
    assert_eq!(login_from(&client, &[], "mallory", "wrong").await.status, 429);
    let mut shell = Shell::open(&format!("ws://{}/sh", server.addr()), "admin", "admin-pw").await;
    shell.type_text("echo metrics-$((5*5))\n").await;
    shell.read_until("metrics-25").await;
    let during = scrape(&python, &url);
    for (key, at_least) in [
        ("wssh_http_requests_total{route=/auth/login,status=200}", 1.0),
        ("wssh_http_requests_total{route=/auth/login,status=401}", 2.0),
        ("wssh_http_requests_total{route=shell,status=101}", 1.0),
        ("wssh_http_request_duration_seconds_count{route=/auth/login}", 4.0),
        ("wssh_logins_total{outcome=success}", 1.0),
        ("wssh_logins_total{outcome=failure}", 2.0),
        ("wssh_logins_total{outcome=locked}", 1.0),
        ("wssh_lockouts_total{}", 1.0),
        ("wssh_shell_received_bytes_total{}", 10.0),
        ("wssh_shell_sent_bytes_total{}", 10.0),
    ] {
        let moved = value(&during, key) - value(&before, key);
        assert!(moved >= at_least, "{key}: {} -> {}", value(&before, key), value(&during, key));
    }
    assert!(value(&during, "wssh_shells{}") >= 1.0 && value(&during, "wssh_shell_clients{}") >= 1.0, "{during:?}");
    assert!(value(&during, "wssh_db_pool_connections{}") >= 1.0, "{during:?}");
    assert!(value(&during, "wssh_password_hashing_capacity{}") >= 1.0, "{during:?}");
    assert!(during.contains_key("wssh_password_hashing_queue{}"), "{during:?}");
    assert!(during.contains_key("wssh_http_request_duration_seconds_bucket{le=+Inf,route=/auth/login}"), "{during:?}");
    drop(shell);
    // The shell went: the gauges come down.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while value(&scrape(&python, &url), "wssh_shell_clients{}") != 0.0 {
        assert!(std::time::Instant::now() < deadline, "shell_clients did not come down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The metrics listener serves nothing else, and the API has no /metrics.
    let metrics_addr: SocketAddr = url.trim_start_matches("http://").trim_end_matches("/metrics").parse().unwrap();
    assert_eq!(Client { addr: metrics_addr, source: None }.raw("GET", "/sessions", &[], Vec::new()).await.status, 404);
    assert_eq!(client.raw("GET", "/metrics", &[], Vec::new()).await.status, 404);
}

#[tokio::test]
async fn json_logs_carry_the_client_address() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("config.json"), sh_config().to_string()).unwrap();
    let args = ["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0", "--log-format", "json"];
    let server = Running::start(temp.path(), &args, &[]);
    assert_eq!(server.client().raw("GET", "/healthz", &[], Vec::new()).await.status, 200);
    let mut shell = Shell::open(&format!("ws://{}/sh", server.addr()), "admin", "admin-pw").await;
    shell.type_text("echo json-$((2*4))\n").await;
    shell.read_until("json-8").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines: Vec<Value> =
            server.log().lines().map(|line| serde_json::from_str(line).expect("every line is JSON")).collect();
        if lines.iter().any(|line| line["fields"]["message"] == "shell started") || std::time::Instant::now() > deadline
        {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let request = lines
        .iter()
        .find(|line| line["fields"]["message"] == "request" && line["fields"]["path"] == "/healthz")
        .expect("request line");
    assert_eq!(request["fields"]["client"], "127.0.0.1");
    let started = lines.iter().find(|line| line["fields"]["message"] == "shell started").expect("shell line");
    assert_eq!(started["span"]["client"], "127.0.0.1", "{started}");
}

// ---- packaging ------------------------------------------------------------------------------------

#[test]
fn completions_and_the_man_page_are_generated_from_the_command_line() {
    let temp = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_wssh()"),
        ("zsh", "#compdef wssh"),
        ("fish", "complete -c wssh"),
        ("elvish", "wssh"),
        ("powershell", "wssh"),
    ] {
        let (code, stdout, stderr) = run(temp.path(), &["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        for word in ["serve", "connect", "metrics-listen", "trusted-proxy", "base-path"] {
            assert!(stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, _, stderr) = run(temp.path(), &["completions", "tcsh"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, man, stderr) = run(temp.path(), &["man"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(man.contains(".TH wssh 1"), "{man}");
    assert!(man.contains("wssh\\-serve") || man.contains("serve"), "{man}");
    // Help is written for users.
    let (_, help, _) = run(temp.path(), &["--help"], &[]);
    assert!(help.starts_with("wssh: shells in the browser"), "{help}");
    assert!(!help.contains("composes the crates"));
    let (_, serve_help, _) = run(temp.path(), &["serve", "--help"], &[]);
    for flag in [
        "--port",
        "--credential",
        "--listen",
        "--check",
        "--trusted-proxy",
        "--base-path",
        "--metrics-listen",
        "--log-format",
        "[COMMAND]...",
    ] {
        assert!(serve_help.contains(flag), "serve --help lacks {flag}: {serve_help}");
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/wssh.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "{unit}");
    let Ok(analyze) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is not installed (apt-get install systemd; .ci/run installs it)");
    };
    assert!(analyze.status.success());
    let temp = tempfile::tempdir().unwrap();
    // The unit as installed, with this build's binary, and the man page it names generated.
    let mut unit = unit.replace("/usr/local/bin/wssh", WSSH);
    let man_dir = temp.path().join("man/man1");
    std::fs::create_dir_all(&man_dir).unwrap();
    let (code, man, _) = run(temp.path(), &["man"], &[]);
    assert_eq!(code, 0);
    std::fs::write(man_dir.join("wssh.1"), man).unwrap();
    if Command::new("man").arg("--version").output().is_err() {
        unit = unit.lines().filter(|line| !line.starts_with("Documentation=")).collect::<Vec<_>>().join("\n");
    }
    let path = temp.path().join("wssh.service");
    std::fs::write(&path, unit).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", temp.path().join("man"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&verified.stdout), String::from_utf8_lossy(&verified.stderr));
    assert!(verified.status.success() && !report.contains("wssh.service:"), "{report}");
}

#[tokio::test]
async fn a_notify_socket_hears_ready_and_stopping() {
    // What systemd's Type=notify listens for: READY=1 once the listeners are up.
    let temp = tempfile::tempdir().unwrap();
    let socket_path = temp.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let notify = socket_path.to_str().unwrap().to_owned();
    let mut server =
        Running::start(temp.path(), &["--data-dir", "data", "--listen", "127.0.0.1:0"], &[("NOTIFY_SOCKET", &notify)]);
    let mut buffer = [0_u8; 256];
    let length = socket.recv(&mut buffer).expect("READY=1 within 30 s");
    assert_eq!(&buffer[..length], b"READY=1\n");
    assert_eq!(server.client().raw("GET", "/healthz", &[], Vec::new()).await.status, 200, "ready means serving");
    server.signal("TERM");
    let length = socket.recv(&mut buffer).expect("STOPPING=1");
    assert_eq!(&buffer[..length], b"STOPPING=1\n");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some_and(|status| status.success()));
}

// ---- the client's trust ---------------------------------------------------------------------------

#[tokio::test]
async fn connect_trusts_the_systems_roots_by_default() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    make_certificate(root, "server");
    let mut config = sh_config();
    config["servers"] =
        json!([{ "port": 0, "protocol": "https", "cert": "server.pem", "key": "server.key", "host": "127.0.0.1" }]);
    std::fs::write(root.join("config.json"), config.to_string()).unwrap();
    let server = Running::start(root, &["--config", "config.json", "--data-dir", "data"], &[]);
    let url = format!("https://{}/sh", server.addr());
    let connect = |env: &[(&str, &str)]| {
        let output = Command::new(WSSH)
            .args(["connect", &url, "--user", "admin"])
            .env("WSSH_PASSWORD", "admin-pw")
            .envs(env.iter().copied())
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"echo trusted-$((3*3))\nexit 7\n")?;
                child.wait_with_output()
            })
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // The system's store, as rustls-native-certs reads it, with SSL_CERT_FILE pointing at a
    // bundle that holds this server's certificate: trusted without --ca.
    let server_pem = root.join("server.pem");
    let (code, stdout, stderr) = connect(&[("SSL_CERT_FILE", server_pem.to_str().unwrap())]);
    assert_eq!(code, Some(7), "{stdout} {stderr}");
    assert!(stdout.contains("trusted-9"), "{stdout}");
    // A bundle without it: refused, with advice.
    make_certificate(root, "other");
    let other_pem = root.join("other.pem");
    let (code, _, stderr) = connect(&[("SSL_CERT_FILE", other_pem.to_str().unwrap())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--ca FILE"), "{stderr}");
}

// ---- the page's assets ----------------------------------------------------------------------------

#[tokio::test]
async fn assets_are_served_precompressed_with_caching_headers_and_the_openapi_document_too() {
    use std::io::Read;
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("config.json"), sh_config().to_string()).unwrap();
    let server =
        Running::start(temp.path(), &["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0"], &[]);
    let client = server.client();
    let page = client.raw("GET", "/", &[], Vec::new()).await;
    let versioned =
        page.text.split('"').find(|part| part.starts_with("assets/app.js?v=")).expect("a versioned URL").to_owned();
    let plain = client.raw("GET", "/assets/app.js", &[], Vec::new()).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), "");
    assert_eq!(plain.header("cache-control"), "no-cache");
    assert_eq!(plain.header("vary"), "Accept-Encoding");

    let brotli =
        client.raw("GET", &format!("/{versioned}"), &[("accept-encoding", "gzip, deflate, br")], Vec::new()).await;
    assert_eq!(brotli.header("content-encoding"), "br");
    assert_eq!(brotli.header("cache-control"), "public, max-age=31536000, immutable");
    let raw_brotli = brotli_bytes(&client, &format!("/{versioned}"), "br").await;
    let mut decoded = Vec::new();
    brotli::Decompressor::new(raw_brotli.as_slice(), 4096).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, plain.text.as_bytes());
    assert!(raw_brotli.len() < plain.text.len() / 2, "{} of {}", raw_brotli.len(), plain.text.len());

    let raw_gzip = brotli_bytes(&client, "/assets/app.js", "gzip;q=1.0, br;q=0").await;
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(raw_gzip.as_slice()).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, plain.text.as_bytes());
    let refused = client.raw("GET", "/assets/app.js", &[("accept-encoding", "gzip;q=0, br;q=0")], Vec::new()).await;
    assert_eq!(refused.header("content-encoding"), "");
    let stale = client.raw("GET", "/assets/app.js?v=0000", &[], Vec::new()).await;
    assert_eq!(stale.header("cache-control"), "no-cache", "only the current version is immutable");

    // One entity tag per representation; each revalidates on its own.
    let gz = client.raw("GET", "/assets/app.js", &[("accept-encoding", "gzip")], Vec::new()).await;
    assert_ne!(gz.header("etag"), plain.header("etag"));
    assert_ne!(gz.header("etag"), brotli.header("etag"));
    let etag = gz.header("etag").to_owned();
    let again =
        client.raw("GET", "/assets/app.js", &[("accept-encoding", "gzip"), ("if-none-match", &etag)], Vec::new()).await;
    assert_eq!(again.status, 304);
    let other =
        client.raw("GET", "/assets/app.js", &[("accept-encoding", "br"), ("if-none-match", &etag)], Vec::new()).await;
    assert_eq!(other.status, 200, "a gzip tag does not validate the brotli copy");

    let openapi = client.raw("GET", "/api/openapi.json", &[], Vec::new()).await;
    assert_eq!(openapi.status, 200);
    assert!(openapi.header("content-type").starts_with("application/json"));
    assert_eq!(openapi.json["openapi"], "3.1.0");
    assert!(openapi.json["paths"]["/api/openapi.json"].is_object());
}

/// The raw (still encoded) body of `GET path` with `Accept-Encoding: accept`.
async fn brotli_bytes(client: &Client, path: &str, accept: &str) -> Vec<u8> {
    use http_body_util::BodyExt;
    let stream = TcpStream::connect(client.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", client.addr.to_string())
        .header("accept-encoding", accept)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert!(!response.headers()["content-encoding"].is_empty());
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

// ---- behind nginx and Caddy, with the snippets of docs/deploy.md ---------------------------

/// The fenced block of `language` in docs/deploy.md, and the `wssh serve …` line after it.
fn deploy_snippet(language: &str) -> (String, Vec<String>) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/deploy.md")).unwrap();
    let fence = format!("```{language}\n");
    let start = doc.find(&fence).unwrap_or_else(|| panic!("docs/deploy.md has a {language} block")) + fence.len();
    let end = start + doc[start..].find("```").unwrap();
    let serve = doc.find("with `wssh serve ").expect("docs/deploy.md names the serve command for the proxies");
    let serve = &doc[serve + "with `wssh serve ".len()..];
    let args = serve[..serve.find('`').unwrap()].split_whitespace().map(str::to_owned).collect();
    (doc[start..end].to_owned(), args)
}

/// Replaces `from` in `text`, which must be there.
fn must_replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the documented snippet no longer contains {from:?}:\n{text}");
    text.replace(from, to)
}

/// A free port on every address (bound, then released) for a proxy to listen on.
fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768 and up on Linux): a port the kernel hands out
    // (to the other tests' listeners and connections, run in parallel) could be taken again
    // between this look and the proxy's bind, which is on every address.
    use std::hash::{BuildHasher, Hasher};
    for _ in 0..1000 {
        // A random number: the hasher's keys are.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = 20_000 + (random % 12_000) as u16;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000")
}

/// A program the proxy tests need; missing, the test fails with the way to install it.
fn proxy_binary(name: &str, candidates: &[&str]) -> PathBuf {
    candidates.iter().map(PathBuf::from).find(|path| path.is_file()).unwrap_or_else(|| {
        panic!("this test needs {name}: `apt-get install -y {name}` (as root; `.ci/run` installs it)")
    })
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on `port`, or fails with `log`.
async fn wait_listening(port: u16, child: &mut Killed, log: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the proxy exited ({status}): {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy does not listen: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// wssh started with the documented `serve` arguments (its port made free) behind a proxy.
fn wssh_behind_a_proxy(root: &Path, documented: &[String]) -> Running {
    std::fs::write(root.join("config.json"), sh_config().to_string()).unwrap();
    let mut args: Vec<String> = ["--config", "config.json", "--data-dir", "data"].map(str::to_owned).to_vec();
    args.extend(
        documented.iter().map(|arg| if arg == "127.0.0.1:28080" { "127.0.0.1:0".to_owned() } else { arg.clone() }),
    );
    assert!(args.iter().any(|arg| arg == "--trusted-proxy") && args.iter().any(|arg| arg == "--base-path"), "{args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Running::start(root, &args, &[])
}

/// Through the proxy at `port` (TLS, the certificate `cert.pem` in `root`), from the client
/// address 127.0.0.2, which is no trusted proxy: the page, a login whose refresh cookie is
/// `Secure`, and a shell over WebSocket; wssh logs the client's address, not the proxy's, and
/// believes no address the client made up.
async fn use_through_the_proxy(root: &Path, port: u16, server: &Running) {
    let connect = || async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        roots.add(rustls::pki_types::CertificateDer::from_pem_file(root.join("cert.pem")).unwrap()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let server_name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
        connector.connect(server_name, stream).await.expect("TLS to the proxy")
    };
    let request = |method: &str, path: &str, body: String| {
        let (method, path) = (method.to_owned(), path.to_owned());
        async move {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(connect().await)).await.unwrap();
            tokio::spawn(connection);
            let request = http::Request::builder()
                .method(method.as_str())
                .uri(path)
                .header("host", "127.0.0.1")
                .header("content-type", "application/json")
                .header("x-forwarded-for", "203.0.113.99")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap();
            sender.send_request(request).await.unwrap()
        }
    };
    let page = request("GET", "/wssh/", String::new()).await;
    assert_eq!(page.status(), 200, "the page through the proxy");
    let login =
        request("POST", "/wssh/auth/login", json!({ "username": "admin", "password": "admin-pw" }).to_string()).await;
    assert_eq!(login.status(), 200, "a login through the proxy");
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure") && cookie.contains("Path=/wssh"), "{cookie}");

    let url = format!("wss://127.0.0.1:{port}/wssh/sh");
    let mut shell = Shell::open_over(Box::new(connect().await), &url, "admin", "admin-pw").await;
    shell.type_text("echo through-$((6*7))\n").await;
    shell.read_until("through-42").await;
    drop(shell);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.log().contains("client=127.0.0.2") {
        assert!(std::time::Instant::now() < deadline, "wssh never logged the client's address: {}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!server.log().contains("203.0.113.99"), "an address the client made up was believed: {}", server.log());
}

#[tokio::test]
async fn the_documented_nginx_snippet_proxies_page_api_and_shells_under_a_base_path() {
    let nginx = proxy_binary("nginx", &["/usr/sbin/nginx", "/usr/bin/nginx"]);
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    make_certificate(root, "cert");
    let (snippet, serve) = deploy_snippet("nginx");
    let server = wssh_behind_a_proxy(root, &serve);
    let port = free_port();
    // Only what a deployment changes: the address, the certificate, the upstream's port.
    let site = must_replace(&snippet, "listen 443 ssl", &format!("listen 127.0.0.1:{port} ssl"));
    let site = must_replace(&site, "/etc/ssl/wssh/fullchain.pem", &root.join("cert.pem").display().to_string());
    let site = must_replace(&site, "/etc/ssl/wssh/privkey.pem", &root.join("cert.key").display().to_string());
    let site = must_replace(&site, "127.0.0.1:28080", &server.addr().to_string());
    let dir = root.display();
    let config = format!(
        "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log info;\n\
         events {{ worker_connections 128; }}\n\
         http {{\n  access_log {dir}/nginx-access.log;\n  client_body_temp_path {dir}/nginx-body;\n  \
         proxy_temp_path {dir}/nginx-proxy;\n  fastcgi_temp_path {dir}/nginx-fastcgi;\n  \
         uwsgi_temp_path {dir}/nginx-uwsgi;\n  scgi_temp_path {dir}/nginx-scgi;\n{site}\n}}\n"
    );
    std::fs::write(root.join("nginx.conf"), &config).unwrap();
    let log = root.join("nginx-error.log");
    let child = Command::new(&nginx)
        .args([
            "-p",
            &dir.to_string(),
            "-e",
            &log.display().to_string(),
            "-c",
            &root.join("nginx.conf").display().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("nginx-stderr.log")).unwrap())
        .spawn()
        .expect("start nginx");
    let mut child = Killed(child);
    wait_listening(port, &mut child, &root.join("nginx-stderr.log")).await;
    use_through_the_proxy(root, port, &server).await;
}

#[tokio::test]
async fn the_documented_caddy_snippet_proxies_page_api_and_shells_under_a_base_path() {
    let caddy = proxy_binary("caddy", &["/usr/bin/caddy", "/usr/local/bin/caddy"]);
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    make_certificate(root, "cert");
    let (snippet, serve) = deploy_snippet("caddyfile");
    let server = wssh_behind_a_proxy(root, &serve);
    let port = free_port();
    // Only what a deployment changes: the site's address, a certificate of our own instead
    // of one from an ACME CA, the upstream's port; no admin endpoint in the test.
    let site = must_replace(
        &snippet,
        "wssh.example.org {",
        &format!(
            "https://127.0.0.1:{port} {{\n    tls {} {}",
            root.join("cert.pem").display(),
            root.join("cert.key").display()
        ),
    );
    let site = must_replace(&site, "127.0.0.1:28080", &server.addr().to_string());
    let config = format!("{{\n    admin off\n    auto_https disable_redirects\n    skip_install_trust\n}}\n{site}");
    std::fs::write(root.join("Caddyfile"), &config).unwrap();
    let log = root.join("caddy.log");
    let child = Command::new(&caddy)
        .args(["run", "--adapter", "caddyfile", "--config", &root.join("Caddyfile").display().to_string()])
        .env("XDG_DATA_HOME", root.join("caddy-data"))
        .env("XDG_CONFIG_HOME", root.join("caddy-config"))
        .env("HOME", root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start caddy");
    let mut child = Killed(child);
    wait_listening(port, &mut child, &log).await;
    use_through_the_proxy(root, port, &server).await;
}

// ---- a release build without the terminal assets ---------------------------------------------

/// wssh-http's compiled build script (the newest, should older builds lie around).
fn wssh_http_build_script() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    std::fs::read_dir(profile_dir.join("build"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("wssh-http-"))
        .map(|entry| entry.path().join("build-script-build"))
        .filter(|path| path.is_file())
        .max_by_key(|path| path.metadata().and_then(|meta| meta.modified()).ok())
        .expect("cargo built wssh-http's build script")
}

/// Runs the build script for a copy of the crate at `root/crates/wssh-http` (whose page is
/// `root/web`), as cargo would for `profile`: (success, stdout + stderr, the generated vendor.rs).
fn run_build_script(root: &Path, profile: &str, without_terminal: Option<&str>) -> (bool, String, String) {
    let out = root.join(format!("out-{profile}-{}", without_terminal.unwrap_or("unset")));
    std::fs::create_dir_all(&out).unwrap();
    let mut command = Command::new(wssh_http_build_script());
    command
        .env("CARGO_MANIFEST_DIR", root.join("crates/wssh-http"))
        .env("OUT_DIR", &out)
        .env("PROFILE", profile)
        .env("WSSH_WEB_NPM", "0")
        .env_remove("WSSH_WITHOUT_TERMINAL")
        .current_dir(root);
    if let Some(value) = without_terminal {
        command.env("WSSH_WITHOUT_TERMINAL", value);
    }
    let output = command.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text, std::fs::read_to_string(out.join("vendor.rs")).unwrap_or_default())
}

#[test]
fn a_release_build_without_the_terminal_fails_unless_asked_for() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    std::fs::create_dir_all(root.join("crates/wssh-http")).unwrap();
    std::fs::create_dir_all(root.join("web")).unwrap();

    // No xterm.js: a release build stops and says how to get it or how to do without.
    let (ok, text, _) = run_build_script(root, "release", None);
    assert!(!ok, "a release build without the terminal succeeded: {text}");
    assert!(text.contains("no xterm.js") && text.contains("WSSH_WITHOUT_TERMINAL=1"), "{text}");
    let (ok, text, _) = run_build_script(root, "release", Some("0"));
    assert!(!ok, "WSSH_WITHOUT_TERMINAL=0 does not ask for it: {text}");
    // Asked for on purpose, or a debug build: built, without the terminal, with a warning.
    for (profile, without) in [("release", Some("1")), ("debug", None)] {
        let (ok, text, vendor) = run_build_script(root, profile, without);
        assert!(ok, "{profile} {without:?}: {text}");
        assert!(vendor.contains("VENDOR_BUILT: bool = false"), "{vendor}");
        assert!(text.contains("cargo::warning=") && text.contains("without its terminal"), "{text}");
    }

    // With the files in web/node_modules a release build takes them (source maps dropped).
    for from in [
        "@xterm/xterm/lib/xterm.js",
        "@xterm/xterm/css/xterm.css",
        "@xterm/addon-fit/lib/addon-fit.js",
        "asciinema-player/dist/bundle/asciinema-player.min.js",
        "asciinema-player/dist/bundle/asciinema-player.css",
    ] {
        let path = root.join("web/node_modules").join(from);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("/* {from} */\n//# sourceMappingURL=x.map\n")).unwrap();
    }
    let (ok, text, vendor) = run_build_script(root, "release", None);
    assert!(ok, "{text}");
    assert!(vendor.contains("VENDOR_BUILT: bool = true"), "{vendor}");
    let xterm = std::fs::read_to_string(root.join("out-release-unset/xterm.js")).unwrap();
    assert_eq!(xterm, "/* @xterm/xterm/lib/xterm.js */");
}

#[tokio::test]
async fn sighup_reopens_the_audit_log_for_log_rotation() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    std::fs::write(root.join("config.json"), sh_config().to_string()).unwrap();
    let args =
        ["--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0", "--audit-log", "audit.jsonl"];
    let mut server = Running::start(root, &args, &[]);
    let client = server.client();
    let logins_in = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("login.succeeded"))
            .count()
    };
    assert_eq!(login_from(&client, &[], "admin", "admin-pw").await.status, 200);
    assert_eq!(
        logins_in(&root.join("audit.jsonl")),
        1,
        "{}",
        std::fs::read_to_string(root.join("audit.jsonl")).unwrap()
    );

    // logrotate's way: move the file, then SIGHUP.
    std::fs::rename(root.join("audit.jsonl"), root.join("audit.jsonl.1")).unwrap();
    server.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.log().contains("audit log reopened") {
        assert!(std::time::Instant::now() < deadline, "the reopen was not logged: {}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(login_from(&client, &[], "admin", "admin-pw").await.status, 200);
    assert_eq!(logins_in(&root.join("audit.jsonl")), 1, "the new file has the new login");
    assert_eq!(logins_in(&root.join("audit.jsonl.1")), 1, "the moved file has only the old one");
    let mode = std::fs::metadata(root.join("audit.jsonl")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(server.wait_exit(Duration::from_millis(100)).is_none(), "SIGHUP does not end the server");
}
