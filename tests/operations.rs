//! Operating wssh, against the real binary: the first start, the one-liner and its listen
#![allow(clippy::type_complexity)]
//! forms, strict configuration, signals, proxies, metrics.

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
#[allow(dead_code)]
struct Running {
    child: Child,
    /// Every address it announced.
    addrs: Vec<String>,
    /// What it printed before listening.
    head: Vec<String>,
    log: PathBuf,
}

#[allow(dead_code)]
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

/// A native-framing shell on `path` with Basic credentials.
struct Shell {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    output: Vec<u8>,
}

#[allow(dead_code)]
impl Shell {
    async fn open(url: &str, username: &str, password: &str) -> Shell {
        let mut request = url.into_client_request().unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        request.headers_mut().insert("authorization", format!("Basic {basic}").parse().unwrap());
        request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket handshake");
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
