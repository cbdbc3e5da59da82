//! The audit log against the real binary: one action at a time, each followed by exactly the
//! events it must leave (kind, actor, subject), read back through `GET /api/audit`; the
//! permission `audit:read` refused and allowed; the JSON-lines stream (`audit_log` in the
//! configuration, `--audit-log -`) carries the same events; no secret in any of it.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Client, Reply, Server, default_config};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Hmac = hmac::Hmac<sha1::Sha1>;

async fn call(client: &Client, method: &str, path: &str, authorization: &str, body: Option<&Value>) -> Reply {
    let headers = [("authorization", authorization)];
    let headers: &[(&str, &str)] = if authorization.is_empty() { &[] } else { &headers };
    match body {
        Some(body) => client.json(method, path, headers, body).await,
        None => client.raw(method, path, headers, Vec::new()).await,
    }
}

/// The events after `last`, oldest first; moves `last` on.
async fn events_since(client: &Client, admin: &str, last: &mut i64) -> Vec<Value> {
    let reply = call(client, "GET", "/api/audit?per_page=500", admin, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let mut events: Vec<Value> = reply.json["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["id"].as_i64().unwrap() > *last)
        .cloned()
        .collect();
    events.reverse();
    if let Some(newest) = events.last() {
        *last = newest["id"].as_i64().unwrap();
    }
    events
}

/// Waits (at most 5 s) until the events after `last` are `kinds`, in any order, and returns
/// them; fails on any other or extra event.
async fn expect(client: &Client, admin: &str, last: &mut i64, kinds: &[&str]) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        seen.extend(events_since(client, admin, last).await);
        let mut got: Vec<&str> = seen.iter().map(|event| event["kind"].as_str().unwrap()).collect();
        let mut wanted = kinds.to_vec();
        got.sort_unstable();
        wanted.sort_unstable();
        if got == wanted {
            return seen;
        }
        assert!(got.len() < wanted.len(), "expected {kinds:?}, got {seen:#?}");
        assert!(tokio::time::Instant::now() < deadline, "expected {kinds:?}, got {seen:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn one<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|event| event["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "{kind} once in {events:#?}");
    found[0]
}

fn actor(event: &Value) -> (&str, &str) {
    (event["actor"]["username"].as_str().unwrap_or("-"), event["actor"]["method"].as_str().unwrap_or("-"))
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut buffer, mut out) = (0u32, 0u64, Vec::new());
    for byte in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&c| c == byte.to_ascii_uppercase()).expect("base32 digit");
        buffer = (buffer << 5) | value as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The RFC 6238 code of the base32 `secret` now (waiting out the end of a step).
fn totp_now(secret: &str) -> String {
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    if now() % 30 >= 25 {
        std::thread::sleep(Duration::from_secs(30 - now() % 30));
    }
    let mut mac = <Hmac as KeyInit>::new_from_slice(&base32_decode(secret)).unwrap();
    mac.update(&(now() / 30).to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let number = u32::from_be_bytes([hash[offset] & 0x7f, hash[offset + 1], hash[offset + 2], hash[offset + 3]]);
    format!("{:06}", number % 1_000_000)
}

/// A native shell connection.
struct Conn {
    socket: tokio_tungstenite::WebSocketStream<TcpStream>,
    /// The `0x04` message's JSON.
    hello: Value,
}

/// Opens `path` (a session, maybe with `?shell=…`) with `authorization`, sized 100x30; reads
/// the `0x04` message that comes first.
async fn open(server: &Server, path: &str, authorization: &str) -> Conn {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
    request.headers_mut().insert("authorization", authorization.parse().unwrap());
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await.expect("upgrade");
    let mut resize = vec![1];
    resize.extend_from_slice(&100u16.to_be_bytes());
    resize.extend_from_slice(&30u16.to_be_bytes());
    socket.send(Message::Binary(resize.into())).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("a first frame");
    let Some(Ok(Message::Binary(frame))) = first else { panic!("a binary first frame, got {first:?}") };
    assert_eq!(frame[0], 0x04, "the shell message first");
    Conn { socket, hello: serde_json::from_slice(&frame[1..]).unwrap() }
}

impl Conn {
    async fn type_text(&mut self, text: &str) {
        let mut stdin = vec![0];
        stdin.extend_from_slice(text.as_bytes());
        self.socket.send(Message::Binary(stdin.into())).await.unwrap();
    }

    async fn read_to_close(&mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(Ok(message)) = self.socket.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        });
        closed.await.expect("the connection ends");
    }
}

fn audit_config() -> Value {
    let mut config = default_config();
    config["audit_log"] = json!("audit.jsonl");
    config["lockout_max_failures"] = json!(2);
    config["initial_sessions"] = json!([{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp" }]);
    config
}

#[tokio::test]
async fn every_action_is_audited_once_with_its_actor_and_no_secret() {
    let server = Server::start_with(audit_config());
    let client = server.client();
    let mut last = 0;
    let mut secrets: Vec<String> = vec![ADMIN_PASSWORD.into()];

    // A password login on a login route, then a token minted with a password on go_ws_sh.
    let body = json!({ "username": "admin", "password": ADMIN_PASSWORD });
    let login = call(&client, "POST", "/auth/login", "", Some(&body)).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let (identifier, token) = support::login(&client, "admin", ADMIN_PASSWORD).await;
    secrets.push(token.clone());
    let admin = format!("Bearer {token}");
    let events = expect(&client, &admin, &mut last, &["login.succeeded", "login.succeeded", "token.minted"]).await;
    let surfaces: Vec<&str> = events.iter().filter_map(|event| event["surface"].as_str()).collect();
    assert_eq!(surfaces, ["login_api", "go_ws_sh"]);
    assert!(events.iter().all(|event| actor(event) == ("admin", "password")), "{events:#?}");
    assert_eq!(events[0]["client"], "127.0.0.1");
    assert_eq!(one(&events, "token.minted")["token"], identifier.as_str());
    // Reading the log with a token is no login, and records nothing.
    expect(&client, &admin, &mut last, &[]).await;

    // Failed logins: a name that is no user is kept as a marker, never as typed.
    let typed = "correct-horse-battery-staple";
    secrets.push(typed.into());
    let failed =
        call(&client, "POST", "/api/auth/login", "", Some(&json!({ "username": typed, "password": "x" }))).await;
    assert_eq!(failed.status, 401);
    let events = expect(&client, &admin, &mut last, &["login.failed"]).await;
    assert_eq!(events[0]["username"], "(no such user)");
    assert_eq!(
        (events[0]["surface"].as_str(), events[0]["reason"].as_str()),
        (Some("alist"), Some("invalid_credentials"))
    );
    assert!(events[0]["actor"].is_null());

    // Users: created, changed, password set, roles bound, deleted.
    let create = json!({ "username": "bob", "password": "bob-password-1" });
    secrets.push("bob-password-1".into());
    assert_eq!(call(&client, "POST", "/api/admin/user/create", &admin, Some(&create)).await.status, 200);
    let events = expect(&client, &admin, &mut last, &["user.created"]).await;
    assert_eq!(actor(&events[0]), ("admin", "token"));
    assert_eq!(events[0]["actor"]["token"], identifier.as_str());
    assert_eq!(events[0]["new"]["username"], "bob");
    let bob = events[0]["new"]["id"].as_i64().unwrap();

    let update = json!({ "id": bob, "username": "bob", "base_path": "/home/bob" });
    assert_eq!(call(&client, "POST", "/api/admin/user/update", &admin, Some(&update)).await.status, 200);
    let events = expect(&client, &admin, &mut last, &["user.changed"]).await;
    let (old, new) = (&events[0]["old"]["profile"]["base_path"], &events[0]["new"]["profile"]["base_path"]);
    assert_ne!(old, new);
    assert_eq!(new, "/home/bob");

    let password = json!({ "id": bob, "password": "bob-password-2" });
    secrets.push("bob-password-2".into());
    assert_eq!(call(&client, "POST", "/api/admin/user/update", &admin, Some(&password)).await.status, 200);
    let events = expect(&client, &admin, &mut last, &["password.changed"]).await;
    assert_eq!((events[0]["user"].as_str(), actor(&events[0]).0), (Some("bob"), "admin"));

    // A wrong password for a real user names it; then the lockout (two failures allowed).
    let bob_client = server.client_from("127.0.0.7".parse().unwrap());
    for _ in 0..2 {
        let wrong = json!({ "username": "bob", "password": "not-bobs" });
        assert_eq!(call(&bob_client, "POST", "/auth/login", "", Some(&wrong)).await.status, 401);
    }
    let events = expect(&client, &admin, &mut last, &["login.failed", "login.failed"]).await;
    assert!(events.iter().all(|event| event["username"] == "bob" && event["client"] == "127.0.0.7"), "{events:#?}");
    let locked = json!({ "username": "bob", "password": "bob-password-2" });
    assert_eq!(call(&bob_client, "POST", "/auth/login", "", Some(&locked)).await.status, 429);
    let events = expect(&client, &admin, &mut last, &["login.locked_out"]).await;
    assert_eq!(events[0]["username"], "bob");
    assert!(events[0]["retry_after_seconds"].as_u64().unwrap() > 0);

    // Roles and permissions.
    let role = json!({ "role_name": "Auditors", "role_key": "auditors", "permissions": ["audit:read"] });
    let created = call(&client, "POST", "/role", &admin, Some(&role)).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let role_id = created.json["data"]["roleId"].as_i64().unwrap();
    let events = expect(&client, &admin, &mut last, &["role.created"]).await;
    assert_eq!(events[0]["new"]["permissions"], json!(["audit:read"]));
    let perm = format!("/perm?roleId={role_id}&permissions=audit:read,sessions:read");
    assert_eq!(call(&client, "PUT", &perm, &admin, None).await.status, 200);
    let events = expect(&client, &admin, &mut last, &["role.changed"]).await;
    assert_eq!(events[0]["old"]["permissions"], json!(["audit:read"]));
    assert_eq!(events[0]["new"]["permissions"], json!(["sessions:read", "audit:read"]));

    // Permission: bob may not read the log until a role grants audit:read.
    let bob_basic = format!("Basic {}", base64_encode("bob:bob-password-2"));
    let refused = call(&client, "GET", "/api/audit", &bob_basic, None).await;
    assert_eq!((refused.status, refused.json["code"].as_u64()), (403, Some(403)), "{}", refused.text);
    assert!(refused.json["data"].is_null());
    assert_eq!(call(&client, "GET", "/api/audit", "", None).await.status, 401);
    let bind = call(&client, "POST", &format!("/user/{bob}/bind"), &admin, Some(&json!([role_id]))).await;
    assert_eq!(bind.status, 200, "{}", bind.text);
    let allowed = call(&client, "GET", "/api/audit?kind=user&per_page=2", &bob_basic, None).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(allowed.json["code"], 200);
    assert_eq!(allowed.json["data"]["content"].as_array().unwrap().len(), 2);
    assert!(allowed.json["data"]["total"].as_u64().unwrap() >= 3);
    // The refused read, the allowed one: two password logins of bob, the bind by admin.
    let events = expect(&client, &admin, &mut last, &["login.succeeded", "user.changed", "login.succeeded"]).await;
    assert_eq!(one(&events, "user.changed")["new"]["roles"], json!(["auditors"]));
    assert_eq!(actor(one(&events, "user.changed")), ("admin", "token"));

    // Filters and their refusals.
    let by_bob = call(&client, "GET", "/api/audit?user=bob&kind=login.failed", &admin, None).await;
    assert_eq!(by_bob.json["data"]["total"], 2, "{}", by_bob.text);
    let future = call(&client, "GET", "/api/audit?since=4102444800", &admin, None).await;
    assert_eq!(future.json["data"]["total"], 0);
    for bad in ["kind=nonsense", "since=yesterday", "per_page=0", "per_page=501", "page=-1"] {
        let reply = call(&client, "GET", &format!("/api/audit?{bad}"), &admin, None).await;
        assert_eq!((reply.status, reply.json["code"].as_u64()), (400, Some(400)), "{bad}: {}", reply.text);
    }
    assert_eq!(call(&client, "DELETE", "/api/audit", &admin, None).await.status, 405);
    expect(&client, &admin, &mut last, &[]).await;

    // Two-factor authentication on and off.
    let bob_jwt = {
        let login = json!({ "username": "bob", "password": "bob-password-2" });
        let reply = call(&client, "POST", "/api/auth/login", "", Some(&login)).await;
        reply.json["data"]["token"].as_str().unwrap().to_owned()
    };
    let generated = call(&client, "POST", "/api/auth/2fa/generate", &bob_jwt, None).await;
    let otp_secret = generated.json["data"]["secret"].as_str().unwrap().to_owned();
    secrets.push(otp_secret.clone());
    let code = totp_now(&otp_secret);
    let verify = json!({ "code": code, "secret": otp_secret });
    let verified = call(&client, "POST", "/api/auth/2fa/verify", &bob_jwt, Some(&verify)).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let events = expect(&client, &admin, &mut last, &["login.succeeded", "two_factor.enabled"]).await;
    assert_eq!(actor(one(&events, "two_factor.enabled")), ("bob", "login"));
    let cancel = call(&client, "POST", &format!("/api/admin/user/cancel_2fa?id={bob}"), &admin, None).await;
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    let events = expect(&client, &admin, &mut last, &["two_factor.disabled"]).await;
    assert_eq!((events[0]["user"].as_str(), actor(&events[0]).0), (Some("bob"), "admin"));

    // Tokens: minted and revoked on seed 002's surface; a failed token login.
    let minted = call(&client, "POST", "/AccessToken/app1", &admin, Some(&json!({ "title": "ci" }))).await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let events = expect(&client, &admin, &mut last, &["token.minted"]).await;
    let second = events[0]["token"].as_str().unwrap().to_owned();
    assert_eq!(events[0]["title"], "ci");
    let revoked = call(&client, "DELETE", &format!("/AccessToken/app1/{second}"), &admin, None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let events = expect(&client, &admin, &mut last, &["token.revoked"]).await;
    assert_eq!(events[0]["token"], second.as_str());
    let bogus = "Bearer wssh_0000000000000000000000000000000000000000000";
    assert_eq!(call(&client, "GET", "/api/me", bogus, None).await.status, 401);
    let events = expect(&client, &admin, &mut last, &["login.failed"]).await;
    assert_eq!((events[0]["method"].as_str(), events[0]["surface"].as_str()), (Some("token"), Some("alist")));
    assert!(events[0]["username"].is_null());

    // Session templates: created, changed, renamed, deleted.
    let session =
        |fields: Value| json!({ "authorization": support::token_auth(&identifier, &token), "session": fields });
    assert_eq!(client.create("/sessions", &session(json!({ "name": "s1", "cmd": "sh" }))).await.status, 200);
    let events = expect(&client, &admin, &mut last, &["session.created"]).await;
    assert_eq!((events[0]["new"]["name"].as_str(), actor(&events[0])), (Some("s1"), ("admin", "token")));
    let changed = client.json("PUT", "/sessions", &[], &session(json!({ "name": "s1", "dir": "/" }))).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let events = expect(&client, &admin, &mut last, &["session.changed"]).await;
    assert_eq!((events[0]["old"]["dir"].as_str(), events[0]["new"]["dir"].as_str()), (Some(""), Some("/")));
    let deleted = client.json("DELETE", "/sessions", &[], &session(json!({ "name": "s1" }))).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let events = expect(&client, &admin, &mut last, &["session.deleted"]).await;
    assert_eq!(events[0]["old"]["cmd"], "sh");

    // A live shell opened with a token: a token login, started, attached.
    let mut owner = open(&server, "/sh", &admin).await;
    let shell = owner.hello["shell"].as_str().unwrap().to_owned();
    let events = expect(&client, &admin, &mut last, &["login.succeeded", "shell.started", "shell.attached"]).await;
    let login = one(&events, "login.succeeded");
    assert_eq!((login["method"].as_str(), login["surface"].as_str()), (Some("token"), Some("shell")));
    let started = one(&events, "shell.started");
    let size = (started["session"].as_str(), started["cols"].as_u64(), started["rows"].as_u64());
    assert_eq!(size, (Some("sh"), Some(100), Some(30)));
    assert_eq!((started["shell"].as_str(), actor(started)), (Some(shell.as_str()), ("admin", "token")));
    assert_eq!(one(&events, "shell.attached")["mode"], "control");

    // A share link: created, used to attach in its mode, the holder detaches, revoked.
    let body = json!({ "mode": "observe", "expires_in": 600 });
    let shared = client.json("POST", &format!("/api/shells/{shell}/shares"), &[("authorization", &admin)], &body).await;
    assert_eq!(shared.status, 201, "{}", shared.text);
    let (share, share_token) = (shared.json["id"].as_str().unwrap(), shared.json["token"].as_str().unwrap());
    secrets.push(share_token.to_owned());
    let events = expect(&client, &admin, &mut last, &["share.created"]).await;
    assert_eq!((events[0]["share"].as_str(), events[0]["mode"].as_str()), (Some(share), Some("observe")));
    assert_eq!(actor(&events[0]), ("admin", "token"));
    let mut guest = open(&server, &format!("/sh?shell={shell}"), &format!("Bearer {share_token}")).await;
    let events = expect(&client, &admin, &mut last, &["share.used", "shell.attached"]).await;
    assert_eq!(
        (one(&events, "share.used")["share"].as_str(), one(&events, "share.used")["client"].as_str()),
        (Some(share), Some("127.0.0.1"))
    );
    let attached = one(&events, "shell.attached");
    assert_eq!((attached["mode"].as_str(), &attached["actor"]), (Some("observe"), &Value::Null));
    guest.socket.close(None).await.unwrap();
    let events = expect(&client, &admin, &mut last, &["shell.detached"]).await;
    assert_eq!(events[0]["mode"], "observe");
    let revoked = client
        .raw("DELETE", &format!("/api/shells/{shell}/shares/{share}"), &[("authorization", &admin)], Vec::new())
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let events = expect(&client, &admin, &mut last, &["share.revoked"]).await;
    assert_eq!((events[0]["share"].as_str(), actor(&events[0]).0), (Some(share), "admin"));

    // The program exits: the owner's client detaches, the shell ends with the status.
    owner.type_text("exit 3\n").await;
    owner.read_to_close().await;
    let events = expect(&client, &admin, &mut last, &["shell.detached", "shell.ended"]).await;
    assert_eq!(one(&events, "shell.ended")["exit_status"], 3);
    assert!(one(&events, "shell.ended")["actor"].is_null());
    assert!(events.iter().all(|event| event["shell"] == shell.as_str()));

    // The user deleted.
    assert_eq!(call(&client, "POST", &format!("/api/admin/user/delete?id={bob}"), &admin, None).await.status, 200);
    let events = expect(&client, &admin, &mut last, &["user.deleted"]).await;
    assert_eq!((events[0]["old"]["username"].as_str(), actor(&events[0]).0), (Some("bob"), "admin"));
    assert!(events[0]["old"].get("password_hash").is_none());

    // The role deleted.
    assert_eq!(call(&client, "DELETE", &format!("/role/{role_id}"), &admin, None).await.status, 200);
    expect(&client, &admin, &mut last, &["role.deleted"]).await;

    // The stream holds the same events, one JSON object a line, and no secret.
    let stream = std::fs::read_to_string(server.root.join("audit.jsonl")).unwrap();
    let streamed: Vec<Value> = stream.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let stored = call(&client, "GET", "/api/audit?per_page=500", &admin, None).await;
    let mut stored: Vec<Value> = stored.json["data"]["content"].as_array().unwrap().clone();
    stored.reverse();
    assert_eq!(streamed, stored);
    assert_eq!(streamed.last().unwrap()["id"].as_i64(), Some(last));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(server.root.join("audit.jsonl")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    for secret in &secrets {
        assert!(!stream.contains(secret.as_str()), "a secret in the audit log");
    }
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn the_stream_goes_to_standard_error_with_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&default_config()).unwrap()).unwrap();
    let server = Server::spawn(dir.path(), &["--config", "config.json", "--data-dir", "data", "--audit-log", "-"]);
    let client = server.client();
    let wrong = json!({ "username": "admin", "password": "wrong-password" });
    assert_eq!(call(&client, "POST", "/auth/login", "", Some(&wrong)).await.status, 401);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let line = loop {
        let log = server.log();
        if let Some(line) = log.lines().find(|line| line.starts_with('{') && line.contains("login.failed")) {
            break line.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no audit line on standard error: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((event["kind"].as_str(), event["username"].as_str()), (Some("login.failed"), Some("admin")));
    assert_eq!(event["reason"], "invalid_credentials");
    assert!(event["id"].as_i64().unwrap() > 0 && event["at_ms"].as_i64().unwrap() > 0);
    assert!(!server.log().contains("wrong-password"));
}
