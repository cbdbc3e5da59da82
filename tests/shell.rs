//! Shells over WebSocket against the real binary, with a real WebSocket client speaking both
//! framings. The go_ws_sh codec here is written independently of the server's, from the
//! protocol description, so that a mistake on either side shows.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::gows::{FromServer, avro, decode_server, gzip, wsmsg};
use support::{ADMIN_PASSWORD, Server, create_user, login};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

// go_ws_sh's framing, client side: tests/support/gows.rs.

// ---- a client ---------------------------------------------------------------------------------

struct Shell {
    socket: WebSocketStream<TcpStream>,
    native: bool,
    output: Vec<u8>,
    texts: Vec<serde_json::Value>,
    exit_code: Option<i32>,
}

/// The go_ws_sh_fe subprotocol credential for a token.
fn token_protocol(identifier: &str, token: &str) -> String {
    format!("token%3D{token}%26username%3Dadmin%26type%3Dtoken%26identifier%3D{identifier}")
}

async fn connect(server: &Server, path: &str, protocols: &[&str], authorization: Option<&str>) -> Result<Shell, u16> {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert("sec-websocket-protocol", protocols.join(", ").parse().unwrap());
    }
    if let Some(value) = authorization {
        request.headers_mut().insert("authorization", value.parse().unwrap());
    }
    let stream = TcpStream::connect(server.addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, response)) => {
            let native = protocols.contains(&"wssh.v1");
            let echoed =
                response.headers().get("sec-websocket-protocol").map(|value| value.to_str().unwrap().to_owned());
            if !protocols.is_empty() {
                assert!(protocols.contains(&echoed.as_deref().unwrap_or("")), "echo {echoed:?} of {protocols:?}");
            }
            Ok(Shell { socket, native, output: Vec::new(), texts: Vec::new(), exit_code: None })
        }
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

impl Shell {
    async fn resize(&mut self, cols: u16, rows: u16) {
        let frame = if self.native {
            let mut frame = vec![1];
            frame.extend_from_slice(&cols.to_be_bytes());
            frame.extend_from_slice(&rows.to_be_bytes());
            frame
        } else {
            wsmsg(1, format!("[\"resize\",{cols},{rows}]").as_bytes())
        };
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    async fn type_text(&mut self, text: &str) {
        let frame = if self.native {
            let mut frame = vec![0];
            frame.extend_from_slice(text.as_bytes());
            frame
        } else {
            wsmsg(2, &avro("stdin", text.as_bytes()))
        };
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Handles one frame; returns the close frame's code when the server closes.
    fn absorb(&mut self, message: Message) -> Option<u16> {
        match message {
            Message::Binary(frame) if self.native => match frame[0] {
                0 => self.output.extend_from_slice(&frame[1..]),
                2 => self.exit_code = Some(i32::from_be_bytes(frame[1..5].try_into().unwrap())),
                3 => self.texts.push(json!(["rejected", String::from_utf8_lossy(&frame[1..])])),
                // The live shell's messages (id and offset, gap, restore): see tests/live_shell.rs.
                4..=6 => {}
                other => panic!("unknown native frame {other}"),
            },
            Message::Binary(frame) => match decode_server(&frame) {
                FromServer::Stdout(bytes) => self.output.extend_from_slice(&bytes),
                FromServer::Text(value) => self.texts.push(value),
            },
            Message::Text(_) => panic!("the server must never send text frames"),
            Message::Close(frame) => return Some(frame.map_or(1005, |frame| u16::from(frame.code))),
            _ => {}
        }
        None
    }

    /// Reads until the output contains `needle`.
    async fn read_until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&self.output).contains(needle) {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {needle:?}; got {:?}", String::from_utf8_lossy(&self.output))
                })
                .expect("socket open")
                .expect("frame");
            if let Some(code) = self.absorb(message) {
                panic!("closed ({code}) before {needle:?}; got {:?}", String::from_utf8_lossy(&self.output));
            }
        }
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Reads until the server closes; returns the close code.
    async fn read_to_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await.expect("closed within 20 s") {
                Some(Ok(message)) => {
                    if let Some(code) = self.absorb(message) {
                        return code;
                    }
                }
                Some(Err(error)) => {
                    eprintln!("socket error before close: {error}");
                    return 1006;
                }
                None => return 1006,
            }
        }
    }
}

async fn token_shell(server: &Server, native: bool) -> Shell {
    let (identifier, token) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let protocol = token_protocol(&identifier, &token);
    let protocols: Vec<&str> = if native { vec!["wssh.v1", &protocol] } else { vec![&protocol] };
    connect(server, "/bash", &protocols, None).await.unwrap()
}

fn server_with_sh() -> Server {
    let mut config = support::default_config();
    config["initial_sessions"] = json!([
        { "name": "bash", "cmd": "bash", "args": ["--norc", "-i"], "dir": "/tmp" },
        { "name": "my sh", "cmd": "sh", "args": [], "dir": "" },
        { "name": "broken", "cmd": "/no/such/program", "args": [], "dir": "/" }
    ]);
    Server::start_with(config)
}

// ---- the tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn go_ws_sh_client_gets_a_real_terminal_of_the_size_it_asked_for() {
    let server = server_with_sh();
    let mut shell = token_shell(&server, false).await;
    shell.resize(97, 31).await;
    shell.type_text("tty; stty size; echo ok-$((6*7))\r").await;
    let output = shell.read_until("ok-42").await;
    assert!(output.contains("/dev/pts/"), "{output}");
    assert!(output.contains("31 97"), "{output}");
    assert_eq!(shell.texts.first(), Some(&json!(["resolved", "process bash started success"])));

    shell.resize(120, 40).await;
    shell.type_text("stty size; echo again-$((1+1))\r").await;
    let output = shell.read_until("again-2").await;
    assert!(output.contains("40 120"), "{output}");

    shell.type_text("exit 3\r").await;
    assert_eq!(shell.read_to_close().await, 1000);
}

#[tokio::test]
async fn native_framing_reports_the_exit_code() {
    let server = server_with_sh();
    let mut shell = token_shell(&server, true).await;
    shell.resize(80, 24).await;
    shell.type_text("echo native-$((2+3)); exit 5\r").await;
    shell.read_until("native-5").await;
    assert_eq!(shell.read_to_close().await, 1000);
    assert_eq!(shell.exit_code, Some(5));
}

/// Runs `seq FIRST LAST` in the shell and checks that every number arrives, in order.
async fn seq_arrives_complete_and_in_order(shell: &mut Shell, first: u32, last: u32, mark: &str) {
    shell.output.clear();
    shell.type_text(&format!("seq {first} {last}; echo {mark}-$((1+1))\r")).await;
    let output = shell.read_until(&format!("{mark}-2")).await;
    // The first number starts a line (after bash's prompt, echo and bracketed-paste codes).
    let pattern = format!("{first}\r\n{}\r\n", first + 1);
    let start = output
        .match_indices(&pattern)
        .map(|(index, _)| index)
        .find(|index| output[..*index].ends_with(['\r', '\n']))
        .unwrap_or_else(|| panic!("seq output starts: {:?}", &output[..output.len().min(300)]));
    let numbers: Vec<u32> = output[start..]
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .take_while(|line| !line.contains(mark))
        .map(|line| line.parse().unwrap_or_else(|_| panic!("not a number: {line:?}")))
        .collect();
    assert_eq!(numbers.len(), (last - first + 1) as usize);
    assert!(numbers.iter().zip(first..).all(|(number, expected)| *number == expected));
}

#[tokio::test]
async fn bulk_output_arrives_complete_and_in_order() {
    // Both framings; go_ws_sh's hands bulk output to a pump thread and back (see
    // `shell/output.rs`), so output, then keystrokes, then output again must all keep order.
    for native in [false, true] {
        let server = server_with_sh();
        let mut shell = token_shell(&server, native).await;
        shell.resize(80, 24).await;
        seq_arrives_complete_and_in_order(&mut shell, 1, 300_000, "END").await;
        // The pump stops once the terminal is quiet; keystrokes are echoed as before.
        tokio::time::sleep(Duration::from_millis(100)).await;
        shell.type_text("echo after-$((3+4))\r").await;
        shell.read_until("after-7").await;
        seq_arrives_complete_and_in_order(&mut shell, 500_000, 700_000, "AGAIN").await;
        shell.type_text("exit 4\r").await;
        assert_eq!(shell.read_to_close().await, 1000);
        let pumped = server.log().matches("output pump stopped").count();
        if native {
            assert_eq!(pumped, 0, "native frames are read on the worker");
        } else {
            // Two megabytes from `seq` come in reads of 16 KiB and more at least once.
            assert!(pumped >= 1, "bulk output went through a pump: {pumped}");
        }
    }
}

#[tokio::test]
async fn password_and_header_credentials_work_and_bad_ones_are_refused_before_upgrading() {
    let server = server_with_sh();
    let password_protocol = format!("username%3Dadmin%26password%3D{ADMIN_PASSWORD}%26type%3Dpassword");
    let mut shell = connect(&server, "/bash", &[&password_protocol], None).await.unwrap();
    shell.resize(80, 24).await;
    shell.type_text("echo pw-$((3*3))\r").await;
    shell.read_until("pw-9").await;

    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{ADMIN_PASSWORD}"))
    );
    let mut shell = connect(&server, "/my%20sh", &["wssh.v1"], Some(&basic)).await.unwrap();
    shell.resize(80, 24).await;
    shell.type_text("echo sp-$((4*4))\n").await;
    shell.read_until("sp-16").await;

    assert_eq!(connect(&server, "/bash", &[&token_protocol("1", "wssh_bad")], None).await.err(), Some(401));
    assert_eq!(connect(&server, "/bash", &[], None).await.err(), Some(401));
    let (identifier, token) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    assert_eq!(connect(&server, "/nope", &[&token_protocol(&identifier, &token)], None).await.err(), Some(404));
    create_user(&server.client(), "alice", "alice-pw").await;
    let alice = "username%3Dalice%26password%3Dalice-pw%26type%3Dpassword";
    assert!(connect(&server, "/bash", &[alice], None).await.is_ok(), "ordinary users may connect");
}

#[tokio::test]
async fn a_program_that_cannot_start_is_rejected_cleanly() {
    let server = server_with_sh();
    let (identifier, token) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let mut shell = connect(&server, "/broken", &[&token_protocol(&identifier, &token)], None).await.unwrap();
    shell.resize(80, 24).await;
    let code = shell.read_to_close().await;
    assert_ne!(code, 1000);
    assert_eq!(shell.texts.first().and_then(|text| text[0].as_str()), Some("rejected"));
}

#[tokio::test]
async fn garbage_frames_are_rejected_and_the_server_carries_on() {
    let server = server_with_sh();
    // Not a resize first.
    let mut shell = token_shell(&server, false).await;
    shell.type_text("ls\r").await;
    assert_eq!(shell.read_to_close().await, 1002);
    assert_eq!(shell.texts[0][0], "rejected");
    // Garbage after a good start.
    for garbage in
        [b"\x00\x01\x02garbage".to_vec(), gzip(b"\xff\xff"), wsmsg(2, &avro("stderr", b"x")), wsmsg(1, b"[1,2]")]
    {
        let mut shell = token_shell(&server, false).await;
        shell.resize(80, 24).await;
        shell.socket.send(Message::Binary(garbage.into())).await.unwrap();
        assert_eq!(shell.read_to_close().await, 1002);
    }
    // Still serving.
    let mut shell = token_shell(&server, false).await;
    shell.resize(80, 24).await;
    shell.type_text("echo alive-$((5+5))\r").await;
    shell.read_until("alive-10").await;
    assert_eq!(server.client().raw("GET", "/healthz", &[], Vec::new()).await.status, 200);
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[tokio::test]
async fn a_dropped_connection_leaves_no_process_behind() {
    let server = server_with_sh();
    let mut shell = token_shell(&server, false).await;
    shell.resize(80, 24).await;
    shell.type_text("sleep 1000 & echo bg=$!; echo shell=$$; echo mark-$((7*7))\r").await;
    let output = shell.read_until("mark-49").await;
    let pid_of = |key: &str| -> i32 {
        output.lines().find_map(|line| line.trim().strip_prefix(key)?.trim().parse().ok()).unwrap()
    };
    let (background, shell_pid) = (pid_of("bg="), pid_of("shell="));
    assert!(alive(background) && alive(shell_pid));
    drop(shell);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (alive(background) || alive(shell_pid)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(background), "the background job survived");
    assert!(!alive(shell_pid), "the shell survived");
}

/// A malformed frame from a client that is not reading the flood of output it started: the
/// program is ended (before the refusal is sent, which may have to wait for room).
#[tokio::test]
async fn a_malformed_frame_during_unread_bulk_output_ends_the_program() {
    let server = server_with_sh();
    let mut shell = token_shell(&server, false).await;
    shell.resize(80, 24).await;
    shell.type_text("echo shell=$$; echo mark-$((6*6))\r").await;
    let output = shell.read_until("mark-36").await;
    let shell_pid: i32 =
        output.lines().find_map(|line| line.split("shell=").nth(1)?.trim().parse().ok()).expect(&output);
    // Output the client does not read.
    shell.type_text("yes\r").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    shell.socket.send(Message::Binary(b"\x00\x01\x02garbage".to_vec().into())).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(shell_pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(shell_pid), "the program outlived its rejected connection");
    drop(shell);
}

#[tokio::test]
async fn fifty_concurrent_shells_all_answer() {
    let server = server_with_sh();
    let (identifier, token) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let protocol = token_protocol(&identifier, &token);
    let mut tasks = Vec::new();
    for index in 0..50 {
        let protocol = protocol.clone();
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut request = format!("ws://{addr}/my%20sh").into_client_request().unwrap();
            request.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
            let stream = TcpStream::connect(addr).await.unwrap();
            let (socket, _) = tokio_tungstenite::client_async(request, stream).await.unwrap();
            let mut shell = Shell { socket, native: false, output: Vec::new(), texts: Vec::new(), exit_code: None };
            shell.resize(80, 24).await;
            shell.type_text(&format!("echo shell-$(({index}*1000+1))\n")).await;
            shell.read_until(&format!("shell-{}", index * 1000 + 1)).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_grow_server_memory() {
    let server = server_with_sh();
    let mut shell = token_shell(&server, false).await;
    shell.resize(80, 24).await;
    shell.type_text("echo go-$((8*8))\r").await;
    shell.read_until("go-64").await;
    let before = rss_kib(server.pid());
    shell.type_text("yes\r").await;
    // Do not read. Give `yes` every chance to flood the server.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(server.pid());
    assert!(after < before + 4 * 1024, "server RSS grew from {before} KiB to {after} KiB");
    // Reading resumes the flow: output keeps coming, well past what was queued.
    let mut output = 0;
    while output < 4 * 1024 * 1024 {
        let frame = tokio::time::timeout(Duration::from_secs(10), shell.socket.next()).await.unwrap().unwrap().unwrap();
        if let Message::Binary(frame) = frame
            && let FromServer::Stdout(bytes) = decode_server(&frame)
        {
            output += bytes.len();
        }
    }
}

/// An OS account for demoted shells: created when missing (the tests run as root).
fn shell_account() -> &'static str {
    const NAME: &str = "wssh-test-shell";
    let exists = std::process::Command::new("id").arg(NAME).output().is_ok_and(|output| output.status.success());
    if !exists {
        // Racing tests may both try; either way the account exists afterwards.
        let _ = std::process::Command::new("useradd").args(["-M", "-r", "-s", "/bin/sh", NAME]).status();
    }
    NAME
}

#[tokio::test]
async fn a_template_with_run_as_runs_its_shell_as_that_account_and_needs_the_right() {
    assert!(nix::unistd::geteuid().is_root(), "this test switches accounts and so runs as root");
    let account = shell_account();
    let mut config = support::default_config();
    config["initial_sessions"] = json!([
        { "name": "demoted", "cmd": "sh", "args": [], "dir": "", "run_as": account },
        { "name": "plain", "cmd": "sh", "args": [], "dir": "/tmp" }
    ]);
    let server = Server::start_with(config);

    // An administrator (`shells:run_as_any`) gets a shell as the account, with its login environment.
    let (identifier, token) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let admin = token_protocol(&identifier, &token);
    let mut shell = connect(&server, "/demoted", &["wssh.v1", &admin], None).await.unwrap();
    shell.resize(80, 24).await;
    shell.type_text("echo who=$(id -un) user=$USER logname=$LOGNAME groups=$(id -G); echo done-$((5*5))\n").await;
    let output = shell.read_until("done-25").await;
    assert!(output.contains(&format!("who={account} user={account} logname={account}")), "{output}");
    assert!(!output.contains("groups=0"), "no root group left: {output}");
    shell.type_text("exit\n").await;
    assert_eq!(shell.read_to_close().await, 1000);

    // The template shows its account on go_ws_sh's /sessions; templates without one do not.
    let listed = server.client().list("/sessions", &json!({ "authorization": support::admin() })).await;
    let sessions = listed.json["sessions"].as_array().unwrap();
    let demoted = sessions.iter().find(|session| session["name"] == "demoted").unwrap();
    assert_eq!(demoted["run_as"], account);
    let plain = sessions.iter().find(|session| session["name"] == "plain").unwrap();
    assert!(plain.get("run_as").is_none(), "{plain}");

    // A plain user (sessions:connect only) may use templates without run_as, not this one.
    create_user(&server.client(), "alice", "alice-pw").await;
    let alice = "username%3Dalice%26password%3Dalice-pw%26type%3Dpassword";
    assert_eq!(connect(&server, "/demoted", &[alice], None).await.err(), Some(403));
    let mut plain_shell = connect(&server, "/plain", &[alice], None).await.unwrap();
    plain_shell.resize(80, 24).await;
    plain_shell.type_text("echo plain-$((2*4))\n").await;
    plain_shell.read_until("plain-8").await;

    // An unknown account is refused when the template is written, by name, not at attach time.
    let body = json!({ "authorization": support::admin(), "session": { "name": "bad", "cmd": "sh", "run_as": "-rf" } });
    assert_eq!(server.client().create("/sessions", &body).await.status, 400);
}

#[tokio::test]
async fn a_server_that_is_not_root_refuses_run_as_another_account_and_starts_nothing() {
    assert!(nix::unistd::geteuid().is_root(), "this test drops the server from root to another account");
    let account = shell_account();
    const SERVER_ACCOUNT: &str = "wssh-test-server";
    if nix::unistd::User::from_name(SERVER_ACCOUNT).unwrap().is_none() {
        let _ = std::process::Command::new("useradd").args(["-M", "-r", "-s", "/bin/sh", SERVER_ACCOUNT]).status();
    }
    let server_user = nix::unistd::User::from_name(SERVER_ACCOUNT).unwrap().expect("the server's account exists");
    let temp = tempfile::tempdir().unwrap();
    nix::unistd::chown(temp.path(), Some(server_user.uid), Some(server_user.gid)).unwrap();
    let marker = temp.path().join("the-program-started");
    let (uid, gid) = (server_user.uid.to_string(), server_user.gid.to_string());
    let wrapper = ["setpriv", "--reuid", &uid, "--regid", &gid, "--clear-groups"];

    // In the configuration: refused at start, by name and why, before the data directory exists.
    let mut config = support::default_config();
    config["initial_sessions"] = json!([{ "name": "demoted", "cmd": "sh", "args": [], "dir": "", "run_as": account }]);
    std::fs::write(temp.path().join("config.json"), config.to_string()).unwrap();
    let refused = std::process::Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(env!("CARGO_BIN_EXE_wssh"))
        .args(["serve", "--config", "config.json", "--data-dir", "data", "--listen", "127.0.0.1:0"])
        .current_dir(temp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains(account) && stderr.contains("needs the server to run as root"), "{stderr}");
    assert!(!temp.path().join("data").exists(), "the data directory was touched");

    // Through the API: the template is stored, but the shell is refused when it would start.
    std::fs::write(temp.path().join("config.json"), support::default_config().to_string()).unwrap();
    let server =
        Server::spawn_wrapped(temp.path(), &["--config", "config.json", "--data-dir", "data"], "127.0.0.1:0", &wrapper);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let real_uid = status.lines().find_map(|line| line.strip_prefix("Uid:")).unwrap().split_whitespace().next();
    assert_eq!(real_uid, Some(uid.as_str()), "the server runs as {SERVER_ACCOUNT}");
    let template = json!({ "authorization": support::admin(), "session": {
        "name": "demoted", "cmd": "sh", "args": ["-c", format!("touch {}; sleep 30", marker.display())],
        "run_as": account,
    } });
    let created = server.client().create("/sessions", &template).await;
    assert_eq!(created.status, 200, "{}", created.text);

    // An administrator may use the template, but this server cannot switch accounts: the
    // connection is rejected with the reason, and the program never runs.
    let (identifier, token) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let mut shell =
        connect(&server, "/demoted", &["wssh.v1", &token_protocol(&identifier, &token)], None).await.unwrap();
    shell.resize(80, 24).await;
    let code = shell.read_to_close().await;
    assert_eq!(code, 1011, "closed as a server-side error");
    let reason = shell.texts.first().and_then(|text| (text[0] == "rejected").then(|| text[1].clone()));
    let reason = reason.expect("a rejected message").to_string();
    assert!(reason.contains(account) && reason.contains("needs the server to run as root"), "a clear reason: {reason}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "the program ran although it could not run as {account}");
    // The server carries on.
    assert_eq!(server.client().raw("GET", "/healthz", &[], Vec::new()).await.status, 200);
}

#[test]
fn serve_refuses_an_initial_session_whose_account_does_not_exist() {
    let root = tempfile::tempdir().unwrap();
    let mut config = support::default_config();
    config["initial_sessions"] = json!([{ "name": "ghost", "cmd": "sh", "run_as": "wssh-no-such-account" }]);
    let path = root.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wssh"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--data-dir", "data", "--listen", "127.0.0.1:0"])
        .current_dir(root.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wssh-no-such-account"), "{stderr}");
}

/// go_ws_sh's framing has no reattach, so its shell ends with its connection; it must also end
/// when its owner's access does, as a live shell would.
#[tokio::test]
async fn a_go_ws_sh_shell_ends_within_a_second_when_its_access_ends() {
    let server = server_with_sh();
    let client = server.client();
    // A user disabled (seed 004's PUT /user/{id}) while the shell runs.
    let reply = client
        .json(
            "POST",
            "/user",
            &[("authorization", &basic("admin", ADMIN_PASSWORD))],
            &json!({ "username": "carol", "password": "carol-pw-1" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let carol_id = reply.json["data"]["id"].as_i64().unwrap();
    let mut carols = connect(&server, "/bash", &[], Some(&basic("carol", "carol-pw-1"))).await.unwrap();
    carols.resize(80, 24).await;
    carols.type_text("echo shell=$$; echo ready-$((5+5))\r").await;
    let output = carols.read_until("ready-10").await;
    let pid: i32 = output
        .lines()
        .find_map(|line| line.split("shell=").nth(1)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {output:?}"));
    let disable = json!({ "status": "1" });
    let admin = basic("admin", ADMIN_PASSWORD);
    let reply = client.json("PUT", &format!("/user/{carol_id}"), &[("authorization", &admin)], &disable).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let started = std::time::Instant::now();
    assert_eq!(carols.read_to_close().await, 1008);
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    assert!(carols.texts.contains(&json!(["rejected", "access ended"])), "{:?}", carols.texts);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "the disabled user's shell survived");

    // A token revoked while its shell runs.
    let (identifier, token) = login(&client, "admin", ADMIN_PASSWORD).await;
    let protocol = token_protocol(&identifier, &token);
    let mut by_token = connect(&server, "/bash", &[&protocol], None).await.unwrap();
    by_token.resize(80, 24).await;
    by_token.type_text("echo ready-$((5+5))\r").await;
    by_token.read_until("ready-10").await;
    let body = json!({ "authorization": support::admin(), "token": { "identifier": identifier } });
    let reply = client.json("DELETE", "/tokens", &[], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let started = std::time::Instant::now();
    assert_eq!(by_token.read_to_close().await, 1008);
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{password}"))
    )
}

/// RFC 6455 §5.5.1: a client that closes gets the server's close frame back, on both framings,
/// rather than a dropped connection (which browsers and `ws` report as 1006).
#[tokio::test]
async fn a_client_that_closes_gets_the_close_handshake_answered() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let server = server_with_sh();
    for native in [false, true] {
        let mut shell = token_shell(&server, native).await;
        shell.resize(80, 24).await;
        shell.type_text("echo ready-$((6*7))\r").await;
        shell.read_until("ready-42").await;
        let bye = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
        shell.socket.send(Message::Close(Some(bye))).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match shell.socket.next().await {
                    Some(Ok(Message::Close(frame))) => return Ok(frame),
                    Some(Ok(_)) => {}
                    other => return Err(format!("{other:?}")),
                }
            }
        })
        .await
        .expect("the close is answered within 5 s");
        let frame = answer.unwrap_or_else(|error| panic!("no close frame came back (native: {native}): {error}"));
        assert_eq!(frame.map(|frame| frame.code), Some(CloseCode::Normal), "native: {native}");
    }
}
