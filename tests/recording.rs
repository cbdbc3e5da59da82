//! Shell recordings against the real binary: a recorded shell's file, fetched through the API
//! and read by the real asciinema CLI, equals byte for byte what the client received, with the
//! size it started at and the resize the client made; who may list, play and delete; the
//! audit trail of reads and deletions; retention removes the oldest.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Client, Reply, Server, default_config};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A connection to a new shell (a live shell with the native framing, or a go_ws_sh one), and
/// every data byte it received.
struct Conn {
    socket: tokio_tungstenite::WebSocketStream<TcpStream>,
    output: Vec<u8>,
    gows: bool,
}

async fn open(server: &Server, session: &str, authorization: &str, cols: u16, rows: u16) -> Conn {
    open_framed(server, session, authorization, cols, rows, false).await
}

async fn open_framed(server: &Server, session: &str, authorization: &str, cols: u16, rows: u16, gows: bool) -> Conn {
    let mut request = format!("ws://{}/{session}", server.addr).into_client_request().unwrap();
    if !gows {
        request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
    }
    request.headers_mut().insert("authorization", authorization.parse().unwrap());
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (socket, _) = tokio_tungstenite::client_async(request, stream).await.expect("upgrade");
    let mut conn = Conn { socket, output: Vec::new(), gows };
    conn.resize(cols, rows).await;
    conn
}

use support::gows::{FromServer, avro as avro_pair, decode_server, wsmsg as gows_message};

/// The stdout bytes of a go_ws_sh server frame, if it carries any.
fn gows_stdout(frame: &[u8]) -> Option<Vec<u8>> {
    match decode_server(frame) {
        FromServer::Stdout(bytes) => Some(bytes),
        FromServer::Text(_) => None,
    }
}

impl Conn {
    async fn resize(&mut self, cols: u16, rows: u16) {
        let frame = if self.gows {
            gows_message(1, format!("[\"resize\",{cols},{rows}]").as_bytes())
        } else {
            let mut frame = vec![1];
            frame.extend_from_slice(&cols.to_be_bytes());
            frame.extend_from_slice(&rows.to_be_bytes());
            frame
        };
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    async fn type_text(&mut self, text: &str) {
        let frame = if self.gows {
            gows_message(2, &avro_pair("stdin", text.as_bytes()))
        } else {
            let mut frame = vec![0];
            frame.extend_from_slice(text.as_bytes());
            frame
        };
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Reads frames until the output holds `needle` (or, with `None`, until the server closes).
    async fn read(&mut self, needle: Option<&str>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if needle.is_some_and(|needle| String::from_utf8_lossy(&self.output).contains(needle)) {
                return;
            }
            let next = tokio::time::timeout_at(deadline, self.socket.next()).await.expect("in time");
            match next {
                Some(Ok(Message::Binary(frame))) if self.gows => {
                    if let Some(bytes) = gows_stdout(&frame) {
                        self.output.extend_from_slice(&bytes);
                    }
                }
                Some(Ok(Message::Binary(frame))) if frame[0] == 0 => self.output.extend_from_slice(&frame[1..]),
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                _ => {
                    assert!(needle.is_none(), "closed before {needle:?}");
                    return;
                }
            }
        }
    }
}

async fn call(client: &Client, method: &str, path: &str, authorization: &str) -> Reply {
    client.raw(method, path, &[("authorization", authorization)], Vec::new()).await
}

/// The recordings `authorization` sees.
async fn list(client: &Client, authorization: &str, query: &str) -> Value {
    let reply = call(client, "GET", &format!("/api/recordings{query}"), authorization).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["data"].clone()
}

/// Waits until every recording `authorization` sees has ended; returns them.
async fn ended(client: &Client, authorization: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let content = list(client, authorization, "").await["content"].as_array().unwrap().clone();
        if content.len() == count && content.iter().all(|recording| !recording["ended_at"].is_null()) {
            return content;
        }
        assert!(tokio::time::Instant::now() < deadline, "recordings did not end: {content:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What `asciinema cat` prints for `path` (it needs a terminal: it runs under `script`).
fn asciinema_cat(path: &Path) -> Vec<u8> {
    let command = format!("stty raw -echo; asciinema cat '{}'", path.display());
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script and asciinema are installed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn config() -> Value {
    let mut config = default_config();
    config["initial_sessions"] = json!([
        { "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp", "record": true },
        { "name": "plain", "cmd": "sh", "args": [], "dir": "/tmp" }
    ]);
    config
}

/// Whether each shell start in the audit log (newest first) says the shell was recorded.
async fn started_recorded(client: &Client, admin: &str) -> Vec<bool> {
    let started = call(client, "GET", "/api/audit?kind=shell.started", admin).await;
    started.json["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["recorded"].as_bool().unwrap())
        .collect()
}

#[tokio::test]
async fn a_recorded_shell_plays_back_byte_for_byte_and_only_for_those_allowed() {
    let server = Server::start_with(config());
    let client = server.client();
    let (_, admin_token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    let admin = bearer(&admin_token);

    // A recorded shell: output with multi-byte characters and a lot of it, a resize, an exit.
    let mut shell = open(&server, "sh", &admin, 100, 30).await;
    shell
        .type_text("printf 'h\\303\\251llo w\\303\\266rld \\342\\202\\254\\n'; seq 1 3000; echo done-$((6*7))\n")
        .await;
    shell.read(Some("done-42")).await;
    shell.resize(120, 40).await;
    shell.type_text("stty size; exit 3\n").await;
    shell.read(None).await;
    // An unrecorded one.
    let mut plain = open(&server, "plain", &admin, 80, 24).await;
    plain.type_text("exit\n").await;
    plain.read(None).await;

    let recordings = ended(&client, &admin, 1).await;
    let recording = &recordings[0];
    assert_eq!((recording["session"].as_str(), recording["user"].as_str()), (Some("sh"), Some("admin")));
    assert_eq!((recording["cols"].as_u64(), recording["rows"].as_u64()), (Some(100), Some(30)));
    assert_eq!(recording["exit_status"], 3);
    assert_eq!(recording["dropped_bytes"], 0);
    let id = recording["id"].as_str().unwrap();

    let cast = call(&client, "GET", &format!("/api/recordings/{id}"), &admin).await;
    assert_eq!(cast.status, 200);
    assert_eq!(cast.header("content-type"), "application/x-asciicast");
    assert_eq!(cast.header("content-length"), cast.text.len().to_string(), "streamed with its length");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("played.cast");
    std::fs::write(&path, cast.text.as_bytes()).unwrap();
    let played = asciinema_cat(&path);
    assert!(String::from_utf8_lossy(&shell.output).contains("héllo wörld €"));
    assert!(String::from_utf8_lossy(&shell.output).contains("40 120"), "the program saw the resize");
    assert_eq!(played, shell.output, "asciinema cat prints exactly what the client received");
    let events: Vec<Value> = cast.text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!((events[0]["width"].as_u64(), events[0]["height"].as_u64()), (Some(100), Some(30)));
    let resizes: Vec<&Value> = events.iter().filter(|event| event[1] == "r").collect();
    assert_eq!(resizes.len(), 1, "{resizes:?}");
    assert_eq!(resizes[0][2], "120x40");
    assert_eq!((events.last().unwrap()[1].as_str(), events.last().unwrap()[2].as_str()), (Some("x"), Some("3")));
    let file = std::fs::read_dir(server.root.join("data/recordings")).unwrap().next().unwrap().unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions()) & 0o777, 0o600);

    // Bob (no recordings:read) sees only his own; the admin's is "not found"; he may not delete.
    support::create_user(&client, "bob", "bob-password-1").await;
    let (_, bob_token) = support::login(&client, "bob", "bob-password-1").await;
    let bob = bearer(&bob_token);
    assert_eq!(list(&client, &bob, "").await["total"], 0);
    let refused = call(&client, "GET", "/api/recordings?user=admin", &bob).await;
    assert_eq!((refused.status, refused.json["code"].as_u64()), (403, Some(403)));
    assert_eq!(call(&client, "GET", &format!("/api/recordings/{id}"), &bob).await.status, 404);
    assert_eq!(call(&client, "DELETE", &format!("/api/recordings/{id}"), &bob).await.status, 403);
    let mut own = open(&server, "sh", &bob, 80, 24).await;
    own.type_text("echo mine; exit\n").await;
    own.read(None).await;
    let bobs = ended(&client, &bob, 1).await;
    let bobs_id = bobs[0]["id"].as_str().unwrap();
    assert_eq!(call(&client, "GET", &format!("/api/recordings/{bobs_id}"), &bob).await.status, 200);
    assert_eq!(call(&client, "DELETE", &format!("/api/recordings/{bobs_id}"), &bob).await.status, 403);
    assert_eq!(list(&client, &admin, "?user=bob").await["total"], 1);
    assert_eq!(list(&client, &admin, "?session=plain").await["total"], 0);
    assert_eq!(list(&client, &admin, "?since=4102444800").await["total"], 0);
    assert_eq!(call(&client, "GET", "/api/recordings?per_page=0", &admin).await.status, 400);
    assert_eq!(call(&client, "GET", "/api/recordings", "").await.status, 401);

    // The admin deletes the recording: gone from the list, the file and the API.
    let deleted = call(&client, "DELETE", &format!("/api/recordings/{id}"), &admin).await;
    assert_eq!((deleted.status, deleted.json["code"].as_u64()), (200, Some(200)), "{}", deleted.text);
    assert_eq!(call(&client, "GET", &format!("/api/recordings/{id}"), &admin).await.status, 404);
    assert_eq!(call(&client, "DELETE", &format!("/api/recordings/{id}"), &admin).await.status, 404);
    assert_eq!(list(&client, &admin, "").await["total"], 1);

    // Reads and the deletion are audited, with their actors.
    let audit = call(&client, "GET", "/api/audit?kind=recording", &admin).await;
    let events = audit.json["data"]["content"].as_array().unwrap();
    let of = |kind: &str, user: &str| {
        events.iter().filter(|event| event["kind"] == kind && event["actor"]["username"] == user).count()
    };
    assert_eq!(
        (of("recording.read", "admin"), of("recording.read", "bob"), of("recording.deleted", "admin")),
        (1, 1, 1)
    );
    let recorded = started_recorded(&client, &admin).await;
    assert_eq!(recorded, [true, false, true], "newest first: bob's, plain, the first");
}

#[tokio::test]
async fn retention_removes_the_oldest_recordings() {
    let mut config = default_config();
    config["initial_sessions"] = json!([{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp" }]);
    config["record_all_shells"] = json!(true);
    config["recording_max_total_bytes"] = json!(8000);
    let server = Server::start_with(config);
    let client = server.client();
    let (_, token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    let admin = bearer(&token);
    let mut ids = Vec::new();
    for round in 1..=3 {
        let mut shell = open(&server, "sh", &admin, 80, 24).await;
        shell.type_text("head -c 3000 /dev/zero | tr '\\0' x; exit\n").await;
        shell.read(None).await;
        let recordings = ended(&client, &admin, round.min(2)).await;
        ids.push(recordings[0]["id"].as_str().unwrap().to_owned());
    }
    let kept: Vec<String> =
        ended(&client, &admin, 2).await.iter().map(|recording| recording["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kept, [ids[2].clone(), ids[1].clone()], "the two newest stay");
    let files = std::fs::read_dir(server.root.join("data/recordings")).unwrap().count();
    assert_eq!(files, 2);
    let audit = call(&client, "GET", "/api/audit?kind=recording.deleted", &admin).await;
    let deleted = audit.json["data"]["content"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    assert_eq!(
        (deleted[0]["recording"].as_str(), deleted[0]["reason"].as_str()),
        (Some(ids[0].as_str()), Some("max_total_size"))
    );
    assert!(deleted[0]["actor"].is_null(), "the server removed it");
}

/// The asciicast events of recording `id`, as served.
async fn cast_events(client: &Client, authorization: &str, id: &str) -> (String, Vec<Value>) {
    let cast = call(client, "GET", &format!("/api/recordings/{id}"), authorization).await;
    assert_eq!(cast.status, 200, "{}", cast.text);
    let events = cast.text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    (cast.text, events)
}

/// The `/sessions` entry named `name`, as go_ws_sh's list shows it.
async fn template(client: &Client, name: &str) -> Value {
    let listed =
        client.list("/sessions", &json!({ "authorization": support::admin(), "session": { "name": name } })).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    listed.json["sessions"][0].clone()
}

/// Marking a template `record` through go_ws_sh's `/sessions` (create and update) records its
/// shells from then on, with either framing; unmarking stops it; the change is audited with the
/// old and new values; input is not recorded unless `record_input` says so.
#[tokio::test]
async fn a_template_marked_through_the_api_records_shells_of_both_framings() {
    let mut config = default_config();
    config["initial_sessions"] = json!([{ "name": "plain", "cmd": "sh", "args": [], "dir": "/tmp" }]);
    let server = Server::start_with(config);
    let client = server.client();
    let (_, token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    let admin = bearer(&token);

    // go_ws_sh's shape stays: no `record` on an unrecorded template.
    assert!(template(&client, "plain").await.get("record").is_none());
    let body = json!({ "authorization": support::admin(), "session": { "name": "plain", "record": true } });
    let updated = client.json("PUT", "/sessions", &[], &body).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["session"]["record"], true);
    assert_eq!(updated.json["session"]["cmd"], "sh", "fields left out keep their values");
    assert_eq!(template(&client, "plain").await["record"], true);
    let body = json!({ "authorization": support::admin(),
        "session": { "name": "made", "cmd": "sh", "dir": "/tmp", "record": true } });
    let created = client.create("/sessions", &body).await;
    assert_eq!((created.status, created.json["session"]["record"].as_bool()), (200, Some(true)), "{}", created.text);
    let body = json!({ "authorization": support::admin(), "session": { "name": "bad", "cmd": "sh", "record": "yes" } });
    assert_eq!(client.create("/sessions", &body).await.status, 400);

    // A native shell and a go_ws_sh shell on marked templates are both recorded.
    let mut native = open(&server, "plain", &admin, 90, 20).await;
    native.type_text("echo native-$((2*21)); exit 4\n").await;
    native.read(None).await;
    let mut gows = open_framed(&server, "made", &admin, 100, 30, true).await;
    gows.type_text("printf 'g\\303\\266ws '; seq 1 2000; echo gows-$((6*7))\n").await;
    gows.read(Some("gows-42")).await;
    gows.resize(120, 40).await;
    gows.type_text("stty size; exit 5\n").await;
    gows.read(None).await;
    let recordings = ended(&client, &admin, 2).await;
    let by_session = |name: &str| recordings.iter().find(|recording| recording["session"] == name).unwrap().clone();
    let (native_recording, gows_recording) = (by_session("plain"), by_session("made"));
    assert_eq!(native_recording["exit_status"], 4);
    assert_eq!(gows_recording["exit_status"], 5);
    assert_eq!((gows_recording["cols"].as_u64(), gows_recording["rows"].as_u64()), (Some(100), Some(30)));

    let (text, events) = cast_events(&client, &admin, gows_recording["id"].as_str().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gows.cast");
    std::fs::write(&path, text.as_bytes()).unwrap();
    assert!(String::from_utf8_lossy(&gows.output).contains("göws "));
    assert!(String::from_utf8_lossy(&gows.output).contains("40 120"), "the program saw the resize");
    assert_eq!(asciinema_cat(&path), gows.output, "asciinema cat prints what the go_ws_sh client received");
    let resizes: Vec<&Value> = events.iter().filter(|event| event[1] == "r").collect();
    assert_eq!(resizes.len(), 1, "{resizes:?}");
    assert_eq!(resizes[0][2], "120x40");
    assert_eq!(events.last().unwrap()[1], "x");
    assert!(events.iter().all(|event| event[1] != "i"), "input is off by default");
    let (_, native_events) = cast_events(&client, &admin, native_recording["id"].as_str().unwrap()).await;
    assert!(native_events.iter().all(|event| event[1] != "i"), "input is off by default");

    // Unmarked again: the next shell is not recorded.
    let body = json!({ "authorization": support::admin(), "session": { "name": "made", "record": false } });
    let updated = client.json("PUT", "/sessions", &[], &body).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert!(updated.json["session"].get("record").is_none());
    let mut unrecorded = open_framed(&server, "made", &admin, 80, 24, true).await;
    unrecorded.type_text("exit\n").await;
    unrecorded.read(None).await;
    let recorded = started_recorded(&client, &admin).await;
    assert_eq!(recorded, [false, true, true], "newest first");
    assert_eq!(list(&client, &admin, "").await["total"], 2);

    // Each change is audited once, with the old and new values.
    let changed = call(&client, "GET", "/api/audit?kind=session.changed", &admin).await;
    let changes = changed.json["data"]["content"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert_eq!((changes[0]["old"]["record"].as_bool(), changes[0]["new"].get("record")), (Some(true), None));
    assert_eq!((changes[1]["old"].get("record"), changes[1]["new"]["record"].as_bool()), (None, Some(true)));
    assert_eq!(changes[1]["actor"]["username"], "admin");
    let created = call(&client, "GET", "/api/audit?kind=session.created", &admin).await;
    assert_eq!(created.json["data"]["content"][0]["new"]["record"], true);
}

/// `record_input` adds the clients' keystrokes as asciicast "i" events, with either framing.
#[tokio::test]
async fn input_is_recorded_only_when_record_input_is_on() {
    let mut config = default_config();
    config["initial_sessions"] = json!([{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp", "record": true }]);
    config["record_input"] = json!(true);
    let server = Server::start_with(config);
    let client = server.client();
    let (_, token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    let admin = bearer(&token);
    for (count, gows) in [(1, false), (2, true)] {
        let mut shell = open_framed(&server, "sh", &admin, 80, 24, gows).await;
        shell.type_text("stty -echo; echo typed-$((3*3))\n").await;
        shell.read(Some("typed-9")).await;
        shell.type_text("exit\n").await;
        shell.read(None).await;
        let recordings = ended(&client, &admin, count).await;
        let (_, events) = cast_events(&client, &admin, recordings[0]["id"].as_str().unwrap()).await;
        let typed: String =
            events.iter().filter(|event| event[1] == "i").map(|event| event[2].as_str().unwrap()).collect();
        assert_eq!(typed, "stty -echo; echo typed-$((3*3))\nexit\n", "gows: {gows}");
    }
}

/// With `recording_gzip` the file is stored compressed (`.cast.gz`) and served as it is stored,
/// with `Content-Encoding: gzip`, to clients that accept gzip, and decompressed to others; an
/// uncompressed recording is streamed with its length.
#[tokio::test]
async fn compressed_recordings_are_served_compressed_or_plain_as_the_client_accepts() {
    let mut config = config();
    config["recording_gzip"] = json!(true);
    let server = Server::start_with(config);
    let client = server.client();
    let (_, token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    let admin = bearer(&token);
    let mut shell = open(&server, "sh", &admin, 80, 24).await;
    shell.type_text("seq 1 20000; echo end-$((5*5)); exit\n").await;
    shell.read(Some("end-25")).await;
    shell.read(None).await;
    let recordings = ended(&client, &admin, 1).await;
    let path = format!("/api/recordings/{}", recordings[0]["id"].as_str().unwrap());
    let stored: Vec<std::path::PathBuf> =
        std::fs::read_dir(server.root.join("data/recordings")).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].to_str().unwrap().ends_with(".cast.gz"), "{stored:?}");
    let file = std::fs::read(&stored[0]).unwrap();

    let (status, headers, gzipped) =
        client.raw_bytes("GET", &path, &[("authorization", &admin), ("accept-encoding", "br, gzip")], Vec::new()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["content-type"], "application/x-asciicast");
    assert_eq!(headers["content-length"], file.len().to_string().as_str());
    assert_eq!(gzipped, file, "served as stored");
    let mut cast = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gzipped.as_slice()), &mut cast).unwrap();

    let (status, headers, plain) = client.raw_bytes("GET", &path, &[("authorization", &admin)], Vec::new()).await;
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(String::from_utf8(plain).unwrap(), cast, "decompressed for a client that takes no gzip");
    let (status, headers, _) =
        client.raw_bytes("GET", &path, &[("authorization", &admin), ("accept-encoding", "gzip;q=0")], Vec::new()).await;
    assert_eq!((status, headers.get("content-encoding")), (200, None));

    let dir = tempfile::tempdir().unwrap();
    let played = dir.path().join("played.cast");
    std::fs::write(&played, cast.as_bytes()).unwrap();
    assert_eq!(asciinema_cat(&played), shell.output, "asciinema cat prints what the client received");
    let audit = call(&client, "GET", "/api/audit?kind=recording.read", &admin).await;
    assert_eq!(audit.json["data"]["total"], 3, "each read is audited");
}
