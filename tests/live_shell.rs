//! Live shells against the real binary: shells that outlive their connection, reattached by
//! id with exact resume, gap notices and screen restores, detach timeouts, and the
//! `/api/shells` listing. The native framing's client here is written from
//! `docs/protocol.md`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, create_user};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A native connection to a live shell.
struct Conn {
    socket: WebSocketStream<TcpStream>,
    /// The `0x04` message.
    hello: Value,
    /// Data bytes received on this connection.
    output: Vec<u8>,
    /// `0x05` messages.
    gaps: Vec<Value>,
    /// `0x06` bodies.
    restores: Vec<Vec<u8>>,
    exit_code: Option<i32>,
    /// `0x03` texts.
    errors: Vec<String>,
    closed: Option<u16>,
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{password}"))
    )
}

fn admin_basic() -> String {
    basic("admin", ADMIN_PASSWORD)
}

/// Opens `path` (with its query) in the native framing; the HTTP status on refusal.
async fn open(server: &Server, path: &str, authorization: &str) -> Result<Conn, u16> {
    open_on(TcpStream::connect(server.addr).await.unwrap(), server, path, authorization).await
}

/// As [`open`], with a small fixed receive buffer: the kernel's autotuning may otherwise let
/// a client that reads nothing absorb tens of megabytes, and so never fall behind.
async fn open_small(server: &Server, path: &str, authorization: &str) -> Result<Conn, u16> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    open_on(socket.connect(server.addr).await.unwrap(), server, path, authorization).await
}

async fn open_on(stream: TcpStream, server: &Server, path: &str, authorization: &str) -> Result<Conn, u16> {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
    request.headers_mut().insert("authorization", authorization.parse().unwrap());
    let socket = match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => socket,
        Err(WsError::Http(response)) => return Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    };
    let conn = Conn {
        socket,
        hello: Value::Null,
        output: Vec::new(),
        gaps: Vec::new(),
        restores: Vec::new(),
        exit_code: None,
        errors: Vec::new(),
        closed: None,
    };
    Ok(conn.start().await)
}

impl Conn {
    /// Sends the size; reads the `0x04` message that comes first.
    async fn start(mut self) -> Conn {
        self.resize(80, 24).await;
        let frame = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
            .await
            .expect("shell message within 20 s")
            .expect("open")
            .expect("frame");
        let Message::Binary(frame) = frame else { panic!("binary frame first, got {frame:?}") };
        assert_eq!(frame[0], 0x04, "the shell message comes first");
        self.hello = serde_json::from_slice(&frame[1..]).unwrap();
        self
    }

    fn id(&self) -> String {
        self.hello["shell"].as_str().unwrap().to_owned()
    }

    fn first_offset(&self) -> u64 {
        self.hello["offset"].as_u64().unwrap()
    }

    async fn resize(&mut self, cols: u16, rows: u16) {
        let mut frame = vec![1];
        frame.extend_from_slice(&cols.to_be_bytes());
        frame.extend_from_slice(&rows.to_be_bytes());
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    async fn type_text(&mut self, text: &str) {
        let mut frame = vec![0];
        frame.extend_from_slice(text.as_bytes());
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Reads one frame; false once the connection is over.
    async fn pump(&mut self, deadline: tokio::time::Instant) -> bool {
        let next = tokio::time::timeout_at(deadline, self.socket.next()).await.unwrap_or_else(|_| {
            panic!("timed out; output so far ends {:?}", String::from_utf8_lossy(tail(&self.output, 300)))
        });
        match next {
            Some(Ok(Message::Binary(frame))) => match frame[0] {
                0x00 => self.output.extend_from_slice(&frame[1..]),
                0x02 => self.exit_code = Some(i32::from_be_bytes(frame[1..5].try_into().unwrap())),
                0x03 => self.errors.push(String::from_utf8_lossy(&frame[1..]).into_owned()),
                0x05 => self.gaps.push(serde_json::from_slice(&frame[1..]).unwrap()),
                0x06 => self.restores.push(frame[1..].to_vec()),
                other => panic!("unexpected frame type {other}"),
            },
            Some(Ok(Message::Close(frame))) => {
                self.closed = Some(frame.map_or(1005, |frame| u16::from(frame.code)));
                return false;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                self.closed.get_or_insert(1006);
                return false;
            }
        }
        true
    }

    /// Reads until the output holds `needle`.
    async fn read_until(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // Only what is new is searched (and what a needle may straddle).
        let mut searched = 0;
        while !contains(&self.output[searched..], needle.as_bytes()) {
            searched = self.output.len().saturating_sub(needle.len());
            assert!(self.pump(deadline).await, "closed before {needle:?}");
        }
    }

    async fn read_to_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.pump(deadline).await {}
        self.closed.unwrap()
    }
}

fn tail(bytes: &[u8], count: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(count)..]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn server_with(settings: Value) -> Server {
    let mut config = support::default_config();
    config["initial_sessions"] = json!([
        { "name": "bash", "cmd": "bash", "args": ["--norc", "--noprofile", "-i"], "dir": "/tmp" },
    ]);
    for (key, value) in settings.as_object().unwrap() {
        config[key] = value.clone();
    }
    Server::start_with(config)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// A number from `$NAME=` in the output.
fn number_after(output: &[u8], key: &str) -> i32 {
    let text = String::from_utf8_lossy(output);
    text.lines()
        .find_map(|line| line.split(key).nth(1)?.trim().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

/// A small deterministic generator, seeded from the clock (the seed is printed).
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
        eprintln!("random seed {seed}");
        Random(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// The `seq` part of a run: from the first number to the marker.
fn seq_part<'a>(output: &'a [u8], marker: &str) -> &'a [u8] {
    let start = find(output, b"\r1\r\n2\r\n")
        .unwrap_or_else(|| panic!("seq output in {:?}", String::from_utf8_lossy(&output[..output.len().min(400)])))
        + 1;
    let end = find(output, marker.as_bytes()).expect("marker");
    &output[start..end]
}

#[tokio::test]
async fn resume_is_exact_under_bulk_output() {
    let server = server_with(json!({ "shell_history_bytes": 64 * 1024 * 1024 }));
    const COMMAND: &str = "seq 1 2000000; echo DONE-$((40+2))\r";

    // One uninterrupted run.
    let mut whole = open(&server, "/bash", &admin_basic()).await.unwrap();
    whole.type_text(COMMAND).await;
    whole.read_until("DONE-42").await;
    let reference = seq_part(&whole.output, "DONE-42").to_vec();
    drop(whole);

    // The same, dropped and reattached at random points.
    let mut random = Random::new();
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    let id = conn.id();
    assert_eq!(id.len(), 22, "128 bits in URL-safe base64");
    assert_eq!(conn.first_offset(), 0);
    conn.type_text(COMMAND).await;
    let mut received = Vec::new();
    let mut reattached = 0;
    loop {
        // Read a random amount, then drop the connection (politely or not).
        let want = 1 + random.below(1_500_000) as usize;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let done = |received: &[u8], output: &[u8]| {
            let mut end = tail(received, 300).to_vec();
            end.extend_from_slice(tail(output, 300));
            contains(&end, b"DONE-42")
        };
        while conn.output.len() < want && !done(&received, &conn.output) {
            assert!(conn.pump(deadline).await, "closed early");
        }
        received.extend_from_slice(&conn.output);
        if contains(tail(&received, 200), b"DONE-42") {
            break;
        }
        if random.below(2) == 0 {
            let _ = conn.socket.close(None).await;
        }
        drop(conn);
        if random.below(3) == 0 {
            tokio::time::sleep(Duration::from_millis(random.below(200))).await;
        }
        let offset = received.len();
        eprintln!("reattaching at {offset}");
        conn = open(&server, &format!("/bash?shell={id}&offset={offset}"), &admin_basic()).await.unwrap();
        assert_eq!(conn.id(), id);
        assert_eq!(conn.first_offset(), offset as u64, "the first data byte is the one asked for");
        reattached += 1;
    }
    assert!(conn.gaps.is_empty(), "no gap with the history big enough");
    assert!(reattached >= 5, "reattached {reattached} times");
    assert_eq!(seq_part(&received, "DONE-42"), reference, "the resumed stream equals the uninterrupted one");

    // And the shell is still the same one.
    conn.type_text("echo still-$((6*7))\r").await;
    conn.read_until("still-42").await;
}

#[tokio::test]
async fn a_detached_shell_lives_until_its_timeout_and_leaves_no_process() {
    // (Five seconds: a password check alone can take one on a loaded machine.)
    let server = server_with(json!({ "shell_detach_timeout_seconds": 5 }));
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    conn.type_text("sleep 1000 & echo bg=$!; echo shell=$$; echo mark-$((7*7))\r").await;
    conn.read_until("mark-49").await;
    let (background, shell_pid) = (number_after(&conn.output, "bg="), number_after(&conn.output, "shell="));
    let id = conn.id();
    drop(conn);

    // Still there a second later: reattach and find the same shell.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(alive(shell_pid) && alive(background));
    let mut conn = open(&server, &format!("/bash?shell={id}"), &admin_basic()).await.unwrap();
    assert_eq!(conn.first_offset(), 0, "without an offset, everything held");
    conn.read_until("mark-49").await;
    conn.type_text("echo again=$$\r").await;
    conn.read_until(&format!("again={shell_pid}")).await;
    drop(conn);

    // Gone after the timeout, with everything it started.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while (alive(background) || alive(shell_pid)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(shell_pid), "the shell outlived its detach timeout");
    assert!(!alive(background), "the background job survived");
    assert_eq!(open(&server, &format!("/bash?shell={id}"), &admin_basic()).await.err(), Some(404));
}

#[tokio::test]
async fn a_session_template_sets_its_own_detach_timeout() {
    // The server keeps detached shells five minutes; this template, one second.
    let server = server_with(json!({}));
    let client = server.client();
    let template = json!({ "name": "brief", "cmd": "bash", "args": ["--norc", "--noprofile", "-i"], "dir": "/tmp",
        "detach_timeout_seconds": 1 });
    let reply = client.create("/sessions", &json!({ "authorization": support::admin(), "session": template })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["session"]["detach_timeout_seconds"], 1);
    let listed = client.list("/sessions", &json!({ "authorization": support::admin() })).await;
    let brief = listed.json["sessions"].as_array().unwrap().iter().find(|session| session["name"] == "brief").cloned();
    assert_eq!(brief.unwrap()["detach_timeout_seconds"], 1);
    let bash = listed.json["sessions"].as_array().unwrap().iter().find(|session| session["name"] == "bash").cloned();
    assert!(bash.unwrap().get("detach_timeout_seconds").is_none(), "a template without one shows none");

    let mut brief = open(&server, "/brief", &admin_basic()).await.unwrap();
    brief.type_text("echo shell=$$; echo mark-$((7*7))\r").await;
    brief.read_until("mark-49").await;
    let brief_pid = number_after(&brief.output, "shell=");
    let mut lasting = open(&server, "/bash", &admin_basic()).await.unwrap();
    lasting.type_text("echo shell=$$; echo mark-$((7*7))\r").await;
    lasting.read_until("mark-49").await;
    let lasting_pid = number_after(&lasting.output, "shell=");
    drop(brief);
    drop(lasting);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(brief_pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(brief_pid), "the template's one second did not apply");
    assert!(alive(lasting_pid), "the server's default applies to the other template");

    // Changed through the API: left out keeps it, null returns to the server's default.
    let change = |session: Value| json!({ "authorization": support::admin(), "session": session });
    let reply = client.json("PUT", "/sessions", &[], &change(json!({ "name": "brief", "dir": "/" }))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["session"]["detach_timeout_seconds"], 1);
    let reply =
        client.json("PUT", "/sessions", &[], &change(json!({ "name": "brief", "detach_timeout_seconds": null }))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.json["session"].get("detach_timeout_seconds").is_none(), "{}", reply.text);
    // Refused with a clear 400: too long, negative, not a number.
    for bad in [json!(31 * 86_400), json!(-1), json!("soon")] {
        let reply = client
            .json("PUT", "/sessions", &[], &change(json!({ "name": "brief", "detach_timeout_seconds": bad })))
            .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_zero_timeout_ends_the_shell_with_its_connection() {
    let server = server_with(json!({ "shell_detach_timeout_seconds": 0 }));
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    conn.type_text("echo shell=$$; echo mark-$((8*8))\r").await;
    conn.read_until("mark-64").await;
    let shell_pid = number_after(&conn.output, "shell=");
    let id = conn.id();
    drop(conn);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(shell_pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(shell_pid));
    assert_eq!(open(&server, &format!("/bash?shell={id}"), &admin_basic()).await.err(), Some(404));
}

#[tokio::test]
async fn the_program_exiting_reaches_every_client_and_ends_the_shell() {
    let server = server_with(json!({}));
    let mut first = open(&server, "/bash", &admin_basic()).await.unwrap();
    first.type_text("echo ready-$((1+1))\r").await;
    first.read_until("ready-2").await;
    let mut second = open(&server, &format!("/bash?shell={}", first.id()), &admin_basic()).await.unwrap();
    second.read_until("ready-2").await;
    second.type_text("exit 7\r").await;
    assert_eq!(first.read_to_close().await, 1000);
    assert_eq!(second.read_to_close().await, 1000);
    assert_eq!((first.exit_code, second.exit_code), (Some(7), Some(7)));
}

#[tokio::test]
async fn attaching_is_refused_clearly() {
    let server = server_with(json!({}));
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    conn.type_text("echo hi-$((2+2))\r").await;
    conn.read_until("hi-4").await;
    let id = conn.id();
    let auth = admin_basic();
    assert_eq!(open(&server, "/bash?shell=AAAAAAAAAAAAAAAAAAAAAA", &auth).await.err(), Some(404));
    assert_eq!(open(&server, &format!("/bash?shell={id}&offset=99999999"), &auth).await.err(), Some(400));
    for offset in ["x", "%2B5", "-1", "", "5.0"] {
        assert_eq!(
            open(&server, &format!("/bash?shell={id}&offset={offset}"), &auth).await.err(),
            Some(400),
            "{offset}"
        );
    }
    assert_eq!(open(&server, &format!("/bash?shell={id}&mode=boss"), &auth).await.err(), Some(400));
    // Each parameter once: a proxy that checks the first `mode` must not be bypassed by a second.
    for twice in [
        format!("/bash?shell={id}&mode=observe&mode=control"),
        format!("/bash?shell=AAAAAAAAAAAAAAAAAAAAAA&shell={id}"),
        format!("/bash?shell={id}&offset=0&offset=1"),
    ] {
        assert_eq!(open(&server, &twice, &auth).await.err(), Some(400), "{twice}");
    }
    assert!(open(&server, &format!("/bash?shell={id}&mode=observe&offset=0"), &auth).await.is_ok());
    create_user(&server.client(), "mallory", "mallory-pw").await;
    assert_eq!(
        open(&server, &format!("/bash?shell={id}"), &basic("mallory", "mallory-pw")).await.err(),
        Some(404),
        "another user's shell is not there for them"
    );
    // go_ws_sh's framing cannot attach.
    let mut request = format!("ws://{}/bash?shell={id}", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("authorization", auth.parse().unwrap());
    let stream = TcpStream::connect(server.addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        other => panic!("expected 400, got {:?}", other.map(|_| ())),
    }
}

/// A new native shell that the server refuses before the upgrade: its status and body.
async fn refused_start(server: &Server, authorization: &str) -> (u16, String) {
    let mut request = format!("ws://{}/bash", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
    request.headers_mut().insert("authorization", authorization.parse().unwrap());
    match tokio_tungstenite::client_async(request, TcpStream::connect(server.addr).await.unwrap()).await {
        Err(WsError::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn live_shells_beyond_a_limit_are_refused_naming_the_limit() {
    let server = server_with(json!({ "shell_limit_per_user": 2, "shell_limit_total": 3 }));
    create_user(&server.client(), "alice", "alice-pw-1").await;
    let alice = basic("alice", "alice-pw-1");
    // Two of alice's shells, one attached and one detached: both count.
    let first = open(&server, "/bash", &alice).await.unwrap();
    drop(open(&server, "/bash", &alice).await.unwrap());
    let (status, body) = refused_start(&server, &alice).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Live shell limit per user reached (2)"), "{body}");
    // The administrator takes the server's last one.
    let _admins = open(&server, "/bash", &admin_basic()).await.unwrap();
    let (status, body) = refused_start(&server, &admin_basic()).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Live shell limit of the server reached (3)"), "{body}");
    // A shell being ended no longer counts.
    let path = format!("/api/shells/{}", first.id());
    let reply = server.client().raw("DELETE", &path, &[("authorization", &admin_basic())], Vec::new()).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let mut again = open(&server, "/bash", &alice).await.expect("a place again");
    again.type_text("echo again-$((4+4))\r").await;
    again.read_until("again-8").await;
}

#[tokio::test]
async fn shells_are_listed_and_ended_through_the_api() {
    let server = server_with(json!({}));
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    conn.resize(100, 30).await;
    // The shell ignores SIGHUP, so it takes the whole grace (2 s) to go once ended.
    conn.type_text("trap '' HUP; echo shell=$$; echo listed-$((3+3))\r").await;
    conn.read_until("listed-6").await;
    let shell_pid = number_after(&conn.output, "shell=");
    let client = server.client();
    let auth = admin_basic();
    let reply = client.raw("GET", "/api/shells", &[("authorization", &auth)], Vec::new()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let shells = reply.json["shells"].as_array().unwrap();
    assert_eq!(shells.len(), 1);
    let shell = &shells[0];
    assert_eq!(shell["id"], conn.id());
    assert_eq!((shell["session"].as_str(), shell["owner"].as_str()), (Some("bash"), Some("admin")));
    assert!(shell["node"].as_str().is_some_and(|node| !node.is_empty()), "{shell}");
    assert_eq!((shell["cols"].as_u64(), shell["rows"].as_u64()), (Some(100), Some(30)));
    assert!(shell["output_bytes"].as_u64().unwrap() >= conn.output.len() as u64);
    assert_eq!(shell["clients"], json!([{ "user": "admin", "mode": "control" }]));
    assert!(shell["detached_since"].is_null());
    assert!(shell["created_at"].as_str().unwrap().ends_with('Z'));

    // Someone else sees none of it, and cannot end it.
    create_user(&client, "bob", "bob-password").await;
    let bob = basic("bob", "bob-password");
    let reply = client.raw("GET", "/api/shells", &[("authorization", &bob)], Vec::new()).await;
    assert_eq!(reply.json["shells"], json!([]));
    let path = format!("/api/shells/{}", conn.id());
    assert_eq!(client.raw("DELETE", &path, &[("authorization", &bob)], Vec::new()).await.status, 404);
    assert_eq!(client.raw("GET", "/api/shells", &[], Vec::new()).await.status, 401);

    // Detached, it says since when; deleted, it ends.
    let id = conn.id();
    drop(conn);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reply = client.raw("GET", "/api/shells", &[("authorization", &auth)], Vec::new()).await;
        if reply.json["shells"][0]["detached_since"].is_string() {
            assert_eq!(reply.json["shells"][0]["clients"], json!([]));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never detached: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client.raw("DELETE", &path, &[("authorization", &auth)], Vec::new()).await.status, 204);
    // Gone at once from what anyone sees, while its process still takes its grace to go.
    let reply = client.raw("GET", "/api/shells", &[("authorization", &auth)], Vec::new()).await;
    assert_eq!(reply.json["shells"], json!([]), "an ended shell is not listed");
    assert!(alive(shell_pid), "the grace has not passed yet");
    assert_eq!(open(&server, &format!("/bash?shell={id}"), &auth).await.err(), Some(404));
    assert_eq!(client.raw("DELETE", &path, &[("authorization", &auth)], Vec::new()).await.status, 404);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(shell_pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(shell_pid));
    let reply = client.raw("GET", "/api/shells", &[("authorization", &auth)], Vec::new()).await;
    assert_eq!(reply.json["shells"], json!([]));
    assert_eq!(open(&server, &format!("/bash?shell={id}"), &auth).await.err(), Some(404));
}

/// What `seq 1 COUNT` prints on a terminal.
fn seq_text(count: u32) -> Vec<u8> {
    (1..=count).flat_map(|number| format!("{number}\r\n").into_bytes()).collect()
}

/// `conn` fell behind the history (`why` says how): at least one gap notice, each skipping
/// forward, and a restore after each.
fn assert_fell_behind(conn: &Conn, why: &str) {
    assert!(!conn.gaps.is_empty(), "{why}");
    for gap in &conn.gaps {
        assert!(gap["from"].as_u64().unwrap() > gap["requested"].as_u64().unwrap(), "{gap}");
    }
    assert_eq!(conn.restores.len(), conn.gaps.len(), "a restore after every gap notice");
}

/// The shell's output so far, as listed (`output_bytes`).
async fn listed_output(server: &Server, id: &str) -> u64 {
    let reply = server.client().raw("GET", "/api/shells", &[("authorization", &admin_basic())], Vec::new()).await;
    let shells = reply.json["shells"].as_array().unwrap().clone();
    let shell = shells.iter().find(|shell| shell["id"] == id).expect("the shell is listed");
    shell["output_bytes"].as_u64().unwrap()
}

#[tokio::test]
async fn a_slow_controller_falls_behind_and_never_slows_the_program() {
    // The only client takes one message (64 KiB at most) every 20 ms, at most 3.2 MB/s, while
    // `seq` writes 71 MB: the program runs at its own pace and reaches its end while that
    // client has taken only a small part (a program paced by it, even one released for a
    // while, ends with the client far on: 40 % with round 2's first rule).
    let server = server_with(json!({ "shell_history_bytes": 64 * 1024 }));
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    let id = conn.id();
    conn.type_text("seq 1 8000000; echo DONE-$((40+2))\r").await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let trickle = tokio::spawn({
        let (stop, received) = (stop.clone(), received.clone());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            loop {
                tokio::select! {
                    () = stop.notified() => return conn,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {
                        assert!(conn.pump(deadline).await);
                        received.store(conn.output.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
    });
    let whole = seq_text(8_000_000).len() as u64;
    let started = std::time::Instant::now();
    while listed_output(&server, &id).await <= whole {
        assert!(started.elapsed() < Duration::from_secs(60), "the program never reached its end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = received.load(std::sync::atomic::Ordering::Relaxed) as u64;
    assert!(taken < whole / 10, "the program was paced by its slow client: it had taken {taken} of {whole} bytes");
    stop.notify_one();
    let mut conn = trickle.await.unwrap();
    // Taking output at full speed again, the client finds the gap notice and the screen.
    conn.read_until("DONE-42").await;
    assert_fell_behind(&conn, "the slow client fell behind the history");
    assert!(conn.gaps[0]["requested"].as_u64().unwrap() > 0, "{:?}", conn.gaps);
}

#[tokio::test]
async fn clients_joining_and_leaving_mid_flood_each_get_every_byte_in_order() {
    // A shell's only controlling client reads the terminal itself; a second client attaching
    // takes that turn back to the shell's task, and its leaving lets the first take it again,
    // all while output pours: neither stream may lose, double or reorder a byte.
    let server = server_with(json!({ "shell_history_bytes": 16 * 1024 * 1024 }));
    let mut owner = open(&server, "/bash", &admin_basic()).await.unwrap();
    let id = owner.id();
    owner.type_text("seq 1 1000000; echo DONE-$((40+2))\r").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut joined = 0;
    for threshold in [200_000, 1_500_000, 3_000_000, 4_500_000] {
        while owner.output.len() < threshold {
            assert!(owner.pump(deadline).await, "closed early");
        }
        // Another client, from the shell's first byte, reads a while and leaves.
        let url = format!("/bash?shell={id}&mode=observe&offset=0");
        let mut observer = open(&server, &url, &admin_basic()).await.unwrap();
        while observer.output.len() < threshold / 2 {
            assert!(observer.pump(deadline).await, "observer closed early");
        }
        assert!(owner.output.starts_with(&observer.output) || observer.output.starts_with(&owner.output));
        assert_eq!(observer.gaps, Vec::<Value>::new());
        joined += 1;
    }
    owner.read_until("DONE-42").await;
    assert_eq!(joined, 4);
    assert_eq!(owner.gaps, Vec::<Value>::new());
    assert!(seq_part(&owner.output, "DONE-42") == seq_text(1_000_000), "the controller got every byte, once, in order");
    // A last observer from offset 0 gets the very same stream.
    let mut last = open(&server, &format!("/bash?shell={id}&mode=observe&offset=0"), &admin_basic()).await.unwrap();
    last.read_until("DONE-42").await;
    assert!(seq_part(&last.output, "DONE-42") == seq_text(1_000_000), "the history holds the same bytes");
}

#[tokio::test]
async fn an_observer_that_takes_nothing_holds_neither_the_program_nor_the_controller() {
    // 39 MB of output: far more than an observer that takes nothing can have buffered in its
    // sockets, so a program or controller it could hold would stop long before the end. The
    // history holds it all, so no client can fall behind it, however slowly a loaded machine
    // runs this test's controller (the program sets the pace: a controller slower than the
    // program for longer than the history would get a gap, which is not what is tested here).
    let server = server_with(json!({ "shell_history_bytes": 64 * 1024 * 1024 }));
    let mut owner = open(&server, "/bash", &admin_basic()).await.unwrap();
    let id = owner.id();
    let mut observer = open_small(&server, &format!("/bash?shell={id}&mode=observe"), &admin_basic()).await.unwrap();
    owner.type_text("seq 1 5000000; echo DONE-$((40+2))\r").await;
    // The observer reads nothing meanwhile; the program runs to its end and the controller gets
    // all of it.
    owner.read_until("DONE-42").await;
    let whole = seq_text(5_000_000).len() as u64;
    assert!(listed_output(&server, &id).await > whole, "the program reached its end");
    assert_eq!(owner.gaps, Vec::<Value>::new());
    assert!(seq_part(&owner.output, "DONE-42") == seq_text(5_000_000), "the controller got every byte");
    // The observer, reading at last, gets the very same stream from where it was.
    observer.read_until("DONE-42").await;
    assert_eq!(observer.gaps, Vec::<Value>::new());
    assert!(seq_part(&observer.output, "DONE-42") == seq_text(5_000_000), "the observer got every byte");
}

#[tokio::test]
async fn a_controller_that_stops_taking_output_does_not_hold_the_program() {
    let server = server_with(json!({ "shell_history_bytes": 1024 * 1024 }));
    let mut conn = open_small(&server, "/bash", &admin_basic()).await.unwrap();
    let id = conn.id();
    conn.type_text("seq 1 2000000; echo DONE-$((40+2))\r").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while conn.output.len() < 1 << 20 {
        assert!(conn.pump(deadline).await);
    }
    // The client now takes nothing; the program runs on to its end while the client sleeps.
    let whole = seq_text(2_000_000).len() as u64;
    let waited = std::time::Instant::now();
    while listed_output(&server, &id).await <= whole {
        assert!(waited.elapsed() < Duration::from_secs(60), "the program waited for a client that took nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reading again, the client finds a gap notice and the screen, then the rest.
    conn.read_until("DONE-42").await;
    assert_fell_behind(&conn, "the stalled client fell behind");
}

#[tokio::test]
async fn a_client_behind_the_history_gets_a_gap_notice_and_the_screen_of_a_full_screen_program() {
    let server = server_with(json!({ "shell_history_bytes": 64 * 1024 }));
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    conn.type_text("echo start-$((9*9))\r").await;
    conn.read_until("start-81").await;
    let id = conn.id();
    // A full-screen program: the alternate screen, a title line, a status at row 5, redrawn
    // 3000 times in colour (far more than the history holds), then waiting.
    let program = "printf '\\e[?1049h'; for i in $(seq 1 3000); do printf '\\e[H\\e[2J\\e[1;31mframe %d\\e[0m\\e[5;10Hstatus-%d' $i $i; done; sleep 1000\r";
    conn.type_text(program).await;
    conn.read_until("status-3000").await;
    drop(conn);

    let mut conn = open(&server, &format!("/bash?shell={id}&offset=0"), &admin_basic()).await.unwrap();
    let from = conn.first_offset();
    assert!(from > 0, "the history no longer starts at 0");
    // The notice, the restore, then the data from `from`.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while conn.restores.is_empty() {
        assert!(conn.pump(deadline).await);
    }
    assert_eq!(conn.gaps, vec![json!({ "requested": 0, "from": from })]);
    assert!(conn.output.is_empty(), "the restore comes before any data");
    conn.read_until("status-3000").await;

    // A fresh terminal of the shell's size, given the restore and then the data, shows what
    // the program drew.
    let mut terminal = vt100::Parser::new(24, 80, 0);
    terminal.process(&conn.restores[0]);
    terminal.process(&conn.output);
    let screen = terminal.screen();
    assert!(screen.alternate_screen(), "the alternate screen is on");
    let rows: Vec<String> = screen.rows(0, 80).collect();
    assert_eq!(rows[0].trim_end(), "frame 3000", "{rows:#?}");
    assert_eq!(rows[4].trim_end(), format!("{}status-3000", " ".repeat(9)), "{rows:#?}");
    assert_eq!(screen.cell(0, 0).unwrap().fgcolor(), vt100::Color::Idx(1), "colours are restored");

    // The restore alone puts a fresh terminal on the alternate screen, as it was at `from`.
    let mut at_from = vt100::Parser::new(24, 80, 0);
    at_from.process(&conn.restores[0]);
    assert!(at_from.screen().alternate_screen());
}

#[tokio::test]
async fn modes_set_before_a_long_flood_are_in_the_restore() {
    // The modes are set once, then far more output than the history and the megabyte the
    // screen is redrawn from: the restore still has them.
    let server = server_with(json!({ "shell_history_bytes": 64 * 1024 }));
    let mut conn = open(&server, "/bash", &admin_basic()).await.unwrap();
    conn.type_text("echo start-$((9*9))\r").await;
    conn.read_until("start-81").await;
    let id = conn.id();
    let program = "printf '\\e[?1049h\\e[?25l\\e[?2004h\\e[?1h'; seq 1 600000; printf '\\e[H\\e[2Jflood-%d' $((6*7)); sleep 1000\r";
    conn.type_text(program).await;
    conn.read_until("flood-42").await;
    drop(conn);

    let mut conn = open(&server, &format!("/bash?shell={id}&offset=0"), &admin_basic()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while conn.restores.is_empty() {
        assert!(conn.pump(deadline).await);
    }
    assert!(conn.first_offset() > 4_000_000, "the flood went far past the history");
    let mut at_from = vt100::Parser::new(24, 80, 0);
    at_from.process(&conn.restores[0]);
    let screen = at_from.screen();
    assert!(screen.alternate_screen(), "the alternate screen is on");
    assert!(screen.hide_cursor(), "the cursor is hidden");
    assert!(screen.bracketed_paste(), "bracketed paste is on");
    assert!(screen.application_cursor(), "cursor keys are in application mode");
    // Its contents come from the flood's end before the history.
    let rows: Vec<String> = screen.rows(0, 80).collect();
    let numbers: Vec<u64> = rows.iter().filter_map(|row| row.trim().parse().ok()).collect();
    let consecutive = numbers.windows(2).filter(|pair| pair[1] == pair[0] + 1).count();
    assert!(consecutive >= 20, "{rows:#?}");
    conn.read_until("flood-42").await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_its_connection_with_1009_and_the_shell_goes_on() {
    let server = server_with(json!({}));
    let mut owner = open(&server, "/bash", &admin_basic()).await.unwrap();
    owner.type_text("echo ready-$((5+5))\r").await;
    owner.read_until("ready-10").await;
    let id = owner.id();
    let mut other = open(&server, &format!("/bash?shell={id}"), &admin_basic()).await.unwrap();
    // The header of a masked binary frame announcing 3 MiB, written as it is.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(3u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    tokio::io::AsyncWriteExt::write_all(other.socket.get_mut(), &header).await.unwrap();
    assert_eq!(other.read_to_close().await, 1009);
    assert!(other.errors.iter().any(|error| error.contains("larger than")), "{:?}", other.errors);
    owner.type_text("echo still-$((3+3))\r").await;
    owner.read_until("still-6").await;
}

/// Creates a user through `POST /user` (seed 004) and returns its id.
async fn new_user(server: &Server, username: &str, password: &str) -> i64 {
    let body = json!({ "username": username, "password": password });
    let reply = server.client().json("POST", "/user", &[("authorization", &admin_basic())], &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json["data"]["id"].as_i64().unwrap()
}

/// Reads until the server closes; how long that took.
async fn closed_within(conn: &mut Conn) -> Duration {
    let started = std::time::Instant::now();
    conn.read_to_close().await;
    started.elapsed()
}

#[tokio::test]
async fn observers_receive_everything_and_cannot_type() {
    let server = server_with(json!({}));
    new_user(&server, "alice", "alice-pw-1").await;
    new_user(&server, "bob", "bob-pw-1").await;
    let alice = basic("alice", "alice-pw-1");
    let mut owner = open(&server, "/bash", &alice).await.unwrap();
    owner.type_text("echo ready-$((5+5))\r").await;
    owner.read_until("ready-10").await;
    let id = owner.id();

    // An administrator holds shells:observe and shells:control; bob holds neither.
    let path = format!("/bash?shell={id}&mode=observe");
    assert_eq!(open(&server, &path, &basic("bob", "bob-pw-1")).await.err(), Some(404));
    let mut observer = open(&server, &path, &admin_basic()).await.unwrap();
    assert_eq!(observer.hello["mode"], "observe");
    observer.read_until("ready-10").await;
    // The owner may watch too.
    let mut watching_owner = open(&server, &path, &alice).await.unwrap();
    watching_owner.read_until("ready-10").await;

    observer.type_text("echo observer-$((1+1))\r").await;
    watching_owner.type_text("echo watcher-$((2+1))\r").await;
    observer.resize(40, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    owner.type_text("stty size; echo owner-$((2+2))\r").await;
    for conn in [&mut owner, &mut observer, &mut watching_owner] {
        conn.read_until("owner-4").await;
        let text = String::from_utf8_lossy(&conn.output).into_owned();
        assert!(
            !text.contains("observer-2") && !text.contains("watcher-3"),
            "observer input reached the shell: {text}"
        );
        assert!(text.contains("24 80"), "an observer's resize is dropped: {text}");
    }
    assert_eq!(observer.output, owner.output, "observers receive every byte");

    // The listing shows all three clients.
    let reply = server.client().raw("GET", "/api/shells", &[("authorization", &alice)], Vec::new()).await;
    let mut clients: Vec<String> = reply.json["shells"][0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|client| format!("{}/{}", client["user"].as_str().unwrap(), client["mode"].as_str().unwrap()))
        .collect();
    clients.sort();
    assert_eq!(clients, ["admin/observe", "alice/control", "alice/observe"]);

    // An administrator may also take control.
    let mut controller = open(&server, &format!("/bash?shell={id}&mode=control"), &admin_basic()).await.unwrap();
    controller.type_text("echo admin-$((3+4))\r").await;
    owner.read_until("admin-7").await;
    controller.read_until("admin-7").await;
}

/// Makes a share link as `auth`.
async fn share(server: &Server, auth: &str, id: &str, body: Value) -> Value {
    let reply =
        server.client().json("POST", &format!("/api/shells/{id}/shares"), &[("authorization", auth)], &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json
}

#[tokio::test]
async fn share_links_open_their_shell_in_their_mode_until_revoked_or_expired() {
    let server = server_with(json!({}));
    new_user(&server, "alice", "alice-pw-1").await;
    let alice = basic("alice", "alice-pw-1");
    let mut owner = open(&server, "/bash", &alice).await.unwrap();
    owner.type_text("echo ready-$((5+5))\r").await;
    owner.read_until("ready-10").await;
    let id = owner.id();

    let observe = share(&server, &alice, &id, json!({ "mode": "observe", "expires_in": 600 })).await;
    let token = observe["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("wsshs_"));
    let link = observe["link"].as_str().unwrap();
    assert!(link.contains(&format!("shell={id}")) && link.ends_with(&format!("#share={token}")), "{link}");
    assert_eq!(observe["mode"], "observe");
    let bearer = format!("Bearer {token}");

    // The token opens its shell, in its mode, and nothing else.
    let mut guest = open(&server, &format!("/bash?shell={id}"), &bearer).await.unwrap();
    assert_eq!(guest.hello["mode"], "observe");
    guest.read_until("ready-10").await;
    guest.type_text("echo guest-$((1+1))\r").await;
    owner.type_text("echo owner-$((2+2))\r").await;
    guest.read_until("owner-4").await;
    assert!(!String::from_utf8_lossy(&guest.output).contains("guest-2"));
    assert_eq!(open(&server, &format!("/bash?shell={id}&mode=control"), &bearer).await.err(), Some(403));
    assert_eq!(open(&server, "/bash", &bearer).await.err(), Some(401));
    // Asked for another shell, or one that does not exist, it opens nothing (not its own).
    let other = open(&server, "/bash", &alice).await.unwrap();
    assert_eq!(open(&server, &format!("/bash?shell={}", other.id()), &bearer).await.err(), Some(401));
    assert_eq!(open(&server, "/bash?shell=AAAAAAAAAAAAAAAAAAAAAA", &bearer).await.err(), Some(401));
    drop(other);
    let client = server.client();
    assert_eq!(client.raw("GET", "/api/shells", &[("authorization", &bearer)], Vec::new()).await.status, 401);

    // Listed without its token; a control link lets its holder type.
    let control = share(&server, &alice, &id, json!({ "mode": "control" })).await;
    let reply = client.raw("GET", &format!("/api/shells/{id}/shares"), &[("authorization", &alice)], Vec::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["shares"].as_array().unwrap().len(), 2);
    assert!(!reply.text.contains(&token), "a token is shown once");
    let mut helper =
        open(&server, &format!("/bash?shell={id}"), &format!("Bearer {}", control["token"].as_str().unwrap()))
            .await
            .unwrap();
    helper.type_text("echo helper-$((4+4))\r").await;
    owner.read_until("helper-8").await;

    // Revoked: its client is gone within a second, and it opens nothing more.
    let share_id = observe["id"].as_str().unwrap();
    let revoke = format!("/api/shells/{id}/shares/{share_id}");
    assert_eq!(client.raw("DELETE", &revoke, &[("authorization", &alice)], Vec::new()).await.status, 204);
    assert!(closed_within(&mut guest).await < Duration::from_millis(1500));
    assert_eq!(guest.closed, Some(1008));
    assert_eq!(open(&server, &format!("/bash?shell={id}"), &bearer).await.err(), Some(401));
    assert_eq!(client.raw("DELETE", &revoke, &[("authorization", &alice)], Vec::new()).await.status, 404);

    // Expired: the same.
    // (Three seconds, so that a loaded machine still attaches before the expiry; the client
    // must be gone within a second of it.)
    let short = share(&server, &alice, &id, json!({ "mode": "observe", "expires_in": 3 })).await;
    let short_bearer = format!("Bearer {}", short["token"].as_str().unwrap());
    let mut brief = open(&server, &format!("/bash?shell={id}"), &short_bearer).await.unwrap();
    assert!(closed_within(&mut brief).await < Duration::from_millis(4500));
    assert_eq!(open(&server, &format!("/bash?shell={id}"), &short_bearer).await.err(), Some(401));

    // Bad requests, and other people's shells.
    for body in [
        json!({ "mode": "boss" }),
        json!({ "expires_in": 0 }),
        json!({ "expires_in": "soon" }),
        json!({ "expires_in": "60" }),
        json!({ "expires_in": 60.5 }),
    ] {
        let reply = client.json("POST", &format!("/api/shells/{id}/shares"), &[("authorization", &alice)], &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
    }
    // A null expiry is the default one.
    let defaulted = share(&server, &alice, &id, json!({ "expires_in": null })).await;
    assert_eq!(defaulted["mode"], "observe");
    new_user(&server, "bob", "bob-pw-1").await;
    let bob = basic("bob", "bob-pw-1");
    let reply = client.json("POST", &format!("/api/shells/{id}/shares"), &[("authorization", &bob)], &json!({})).await;
    assert_eq!(reply.status, 404);
    // The owner still has the shell.
    owner.type_text("echo still-$((3+3))\r").await;
    owner.read_until("still-6").await;
}

#[tokio::test]
async fn a_disabled_or_deleted_user_loses_their_shells_within_a_second() {
    let server = server_with(json!({}));
    let alice_id = new_user(&server, "alice", "alice-pw-1").await;
    let alice = basic("alice", "alice-pw-1");
    let mut attached = open(&server, "/bash", &alice).await.unwrap();
    attached.type_text("echo shell=$$; echo ready-$((5+5))\r").await;
    attached.read_until("ready-10").await;
    let attached_pid = number_after(&attached.output, "shell=");
    let mut detached = open(&server, "/bash", &alice).await.unwrap();
    detached.type_text("echo shell=$$; echo ready-$((5+5))\r").await;
    detached.read_until("ready-10").await;
    let detached_pid = number_after(&detached.output, "shell=");
    drop(detached);
    // An administrator watching one of them.
    let mut watcher =
        open(&server, &format!("/bash?shell={}&mode=observe", attached.id()), &admin_basic()).await.unwrap();

    let client = server.client();
    let disable = json!({ "status": "1" });
    let reply = client.json("PUT", &format!("/user/{alice_id}"), &[("authorization", &admin_basic())], &disable).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let started = std::time::Instant::now();
    attached.read_to_close().await;
    watcher.read_to_close().await;
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while (alive(attached_pid) || alive(detached_pid)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(attached_pid) && !alive(detached_pid), "a disabled user's shells survived");
    let reply = client.raw("GET", "/api/shells", &[("authorization", &admin_basic())], Vec::new()).await;
    assert_eq!(reply.json["shells"], json!([]));

    // Deleted: the same.
    let bob_id = new_user(&server, "bob", "bob-pw-1").await;
    let mut bobs = open(&server, "/bash", &basic("bob", "bob-pw-1")).await.unwrap();
    bobs.type_text("echo shell=$$; echo ready-$((5+5))\r").await;
    bobs.read_until("ready-10").await;
    let bob_pid = number_after(&bobs.output, "shell=");
    let reply =
        client.raw("DELETE", &format!("/user/{bob_id}"), &[("authorization", &admin_basic())], Vec::new()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(closed_within(&mut bobs).await < Duration::from_millis(1500));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(bob_pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(bob_pid));
}

#[tokio::test]
async fn an_owner_who_loses_sessions_connect_loses_their_shells_within_a_second() {
    let server = server_with(json!({}));
    let client = server.client();
    let alice_id = new_user(&server, "alice", "alice-pw-1").await;
    let mut attached = open(&server, "/bash", &basic("alice", "alice-pw-1")).await.unwrap();
    attached.type_text("echo shell=$$; echo ready-$((5+5))\r").await;
    attached.read_until("ready-10").await;
    let pid = number_after(&attached.output, "shell=");
    // Bound to `guest` only: no `sessions:connect` any more.
    let roles = client
        .raw("GET", "/role/list?roleKey=guest&pageSize=100", &[("authorization", &admin_basic())], Vec::new())
        .await;
    assert_eq!(roles.status, 200, "{}", roles.text);
    let guest = roles.json["data"]["list"].as_array().unwrap().iter().find(|role| role["roleKey"] == "guest").unwrap()
        ["roleId"]
        .clone();
    let bind = format!("/user/{alice_id}/bind");
    let reply = client.json("POST", &bind, &[("authorization", &admin_basic())], &json!([guest])).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(closed_within(&mut attached).await < Duration::from_millis(1500));
    assert_eq!(attached.closed, Some(1001), "the shell ended");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "the shell of an owner without sessions:connect survived");
}

#[tokio::test]
async fn a_login_that_ends_disconnects_its_client_within_a_second() {
    let server = server_with(json!({}));
    let client = server.client();
    let login = json!({ "username": "admin", "password": ADMIN_PASSWORD });
    let reply = client.json("POST", "/auth/login", &[], &login).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let (access, refresh) = (reply.header("authorization").to_owned(), reply.header("x-refresh-token").to_owned());
    let mut owner = ready_shell(&server).await;
    let mut by_login = open(&server, &format!("/bash?shell={}", owner.id()), &access).await.unwrap();
    by_login.read_until("ready-10").await;
    let headers = [("authorization", access.as_str()), ("x-refresh-token", refresh.as_str())];
    let reply = client.raw("POST", "/auth/logout", &headers, Vec::new()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(closed_within(&mut by_login).await < Duration::from_millis(1500));
    access_ended(&by_login, &mut owner).await;
}

/// `client` was told `access ended` and closed with 1008, while the shell and its owner's
/// connection carry on.
async fn access_ended(client: &Conn, owner: &mut Conn) {
    assert_eq!(client.closed, Some(1008));
    assert_eq!(client.errors, ["access ended"]);
    owner.type_text("echo still-$((3+3))\r").await;
    owner.read_until("still-6").await;
}

/// The administrator's new shell, once its shell answers.
async fn ready_shell(server: &Server) -> Conn {
    let mut owner = open(server, "/bash", &admin_basic()).await.unwrap();
    owner.type_text("echo ready-$((5+5))\r").await;
    owner.read_until("ready-10").await;
    owner
}

#[tokio::test]
async fn a_revoked_token_disconnects_its_client_within_a_second() {
    let server = server_with(json!({}));
    let client = server.client();
    let (identifier, token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    let mut owner = ready_shell(&server).await;
    let mut by_token = open(&server, &format!("/bash?shell={}", owner.id()), &format!("Bearer {token}")).await.unwrap();
    by_token.read_until("ready-10").await;
    let body = json!({ "authorization": support::admin(), "token": { "identifier": identifier } });
    let reply = client.json("DELETE", "/tokens", &[], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(closed_within(&mut by_token).await < Duration::from_millis(1500));
    access_ended(&by_token, &mut owner).await;
}

#[tokio::test]
async fn a_token_that_expires_disconnects_its_client_within_a_second_of_its_expiry() {
    let server = server_with(json!({}));
    let client = server.client();
    let (identifier, token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    let mut owner = ready_shell(&server).await;
    // The token expires in about three seconds: the clock moves, nothing stored changes.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let changed = server.execute_sql(
        "UPDATE access_tokens SET expires_at = strftime('%s', 'now') + 3 WHERE identifier = ?1",
        "UPDATE access_tokens SET expires_at = extract(epoch FROM now())::BIGINT + 3 WHERE identifier = $1",
        &identifier,
    );
    assert_eq!(changed, 1);
    // Past the server's one-second memory of resolved tokens, so the attach sees the expiry.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut by_token = open(&server, &format!("/bash?shell={}", owner.id()), &format!("Bearer {token}")).await.unwrap();
    by_token.read_until("ready-10").await;
    by_token.read_to_close().await;
    let closed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    // The expiry is at most the next whole second after `now` plus three; a second more is
    // allowed (the full re-check of every credential comes only every ten).
    let expiry = Duration::from_secs(now.as_secs() + 4);
    assert!(closed_at < expiry + Duration::from_millis(1000), "closed {:?} after the expiry", closed_at - expiry);
    assert!(closed_at + Duration::from_secs(1) >= expiry, "closed before the token expired");
    access_ended(&by_token, &mut owner).await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:")).unwrap();
    line.trim().trim_end_matches(" kB").trim().parse().unwrap()
}

/// Opens `count` shells of `cat` and leaves them detached.
async fn idle_shells(server: &Server, count: usize) {
    for _ in 0..count {
        let conn = open(server, "/cat", &admin_basic()).await.unwrap();
        drop(conn);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = server.client().raw("GET", "/api/shells", &[("authorization", &admin_basic())], Vec::new()).await;
        let shells = reply.json["shells"].as_array().unwrap();
        if shells.iter().all(|shell| shell["detached_since"].is_string()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "shells never detached");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_hundred_idle_detached_shells_stay_small() {
    let server = server_with(json!({
        "initial_sessions": [{ "name": "cat", "cmd": "cat", "args": [], "dir": "/tmp" }],
        "shell_limit_per_user": 300,
    }));
    // Warm up (thread pools, allocator arenas, caches), then measure 200 more.
    idle_shells(&server, 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid());
    idle_shells(&server, 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib(server.pid());
    let reply = server.client().raw("GET", "/api/shells", &[("authorization", &admin_basic())], Vec::new()).await;
    assert_eq!(reply.json["shells"].as_array().unwrap().len(), 230);
    let per_shell = after.saturating_sub(before) as f64 / 200.0;
    eprintln!("server RSS {before} KiB then {after} KiB: {per_shell:.1} KiB per idle detached shell");
    assert!(per_shell <= 16.0, "{per_shell:.1} KiB per idle detached shell");
}

#[tokio::test]
async fn a_shells_memory_stays_within_its_history_whatever_its_clients_do() {
    // An 8 MiB history, a controller and six observers that take nothing, and ~100 MB of
    // output: the server may hold the history, the screen's pending output and a bounded batch
    // per client, never the flood.
    const HISTORY: u64 = 8 * 1024 * 1024;
    let server = server_with(json!({ "shell_history_bytes": HISTORY }));
    let mut owner = open_small(&server, "/bash", &admin_basic()).await.unwrap();
    let id = owner.id();
    let mut stalled = Vec::new();
    for _ in 0..6 {
        stalled.push(
            open_small(&server, &format!("/bash?shell={id}&mode=observe&offset=0"), &admin_basic()).await.unwrap(),
        );
    }
    owner.type_text("echo ready-$((6*7))\r").await;
    owner.read_until("ready-42").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid());
    owner.type_text("seq 1 12000000; echo DONE-$((40+2))\r").await;
    // Nobody reads while the program writes; the server's memory is sampled until it ends.
    let whole = seq_text(12_000_000).len() as u64;
    let mut peak = before;
    let started = std::time::Instant::now();
    while listed_output(&server, &id).await <= whole {
        assert!(started.elapsed() < Duration::from_secs(120), "the program never reached its end");
        peak = peak.max(rss_kib(server.pid()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peak = peak.max(rss_kib(server.pid()));
    let grown = peak.saturating_sub(before);
    eprintln!("server RSS {before} KiB, peak {peak} KiB: grew {grown} KiB for {whole} bytes of output");
    assert!(grown * 1024 <= HISTORY + 8 * 1024 * 1024, "the server grew {grown} KiB");
    // Every client, reading at last, is told what it missed and goes on to the end.
    owner.read_until("DONE-42").await;
    for observer in &mut stalled {
        observer.read_until("DONE-42").await;
        // Once or more: a batch that was already on its way can let it look again meanwhile.
        assert_fell_behind(observer, "the observer fell behind the history");
    }
}
