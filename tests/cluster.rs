//! Many nodes on one PostgreSQL database (issue 16): three real `wssh serve` processes share a
//! fresh database on the server named by `WSSH_TEST_DATABASE_URL` (these tests say so and pass
//! when it is not set; `.ci/run` sets it). A user created on one node signs in on another, a
//! token revoked on one is refused on another within a second, and failed logins counted on
//! every node lock out at the count one node allows. A live shell opened on one node is listed
//! on the others and ended through them; a node killed with SIGKILL leaves the registry within
//! a few heartbeats; disabling a user on one node ends their shells on another within a second.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, default_config, password_auth, token_auth};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wssh_store_postgres::scratch::ScratchDatabase;

/// Three servers on one fresh database, each with its own data directory.
fn three_nodes(test: &str, config: Value) -> Option<(ScratchDatabase, Vec<tempfile::TempDir>, [Server; 3])> {
    let Some(database) = ScratchDatabase::from_env(test) else {
        eprintln!("WSSH_TEST_DATABASE_URL is not set: {test} not run");
        return None;
    };
    let temps: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |index: usize| {
        let root = temps[index].path();
        std::fs::write(root.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
        Server::spawn(root, &["--config", "config.json", "--data-dir", "data", "--database", database.url()])
    };
    // The first start migrates and seeds; the others find it done.
    let nodes = [start(0), start(1), start(2)];
    Some((database, temps, nodes))
}

#[tokio::test]
async fn a_user_created_on_a_signs_in_on_b_and_a_token_revoked_on_a_is_refused_on_b_within_a_second() {
    let Some((_database, _temps, [a, b, c])) = three_nodes("cluster_revoke", default_config()) else { return };
    assert!(a.log().contains("database open"), "{}", a.log());
    let (on_a, on_b, on_c) = (a.client(), b.client(), c.client());
    support::create_user(&on_a, "alice", "alice-password-1").await;

    // Created on A, signs in on B; the token B minted works on C.
    let (identifier, secret) = support::login(&on_b, "alice", "alice-password-1").await;
    let auth = json!({ "authorization": token_auth(&identifier, &secret) });
    for node in [&on_a, &on_b, &on_c] {
        assert_eq!(node.list("/sessions", &auth).await.status, 200);
    }
    // B has the token resolved in memory now; A revokes it.
    let revoked = on_a
        .json(
            "DELETE",
            "/tokens",
            &[],
            &json!({ "authorization": token_auth(&identifier, &secret), "token": { "identifier": identifier } }),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let started = Instant::now();
    loop {
        let status = on_b.list("/sessions", &auth).await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "B still accepts a token A revoked after 1 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("revocation on A refused on B after {:?}", started.elapsed());
    assert_eq!(on_c.list("/sessions", &auth).await.status, 401);
}

#[tokio::test]
async fn failed_logins_across_nodes_lock_out_at_the_count_of_one_node() {
    let Some((_database, _temps, nodes)) = three_nodes("cluster_lockout", default_config()) else { return };
    let clients: Vec<_> = nodes.iter().map(Server::client).collect();
    let wrong = json!({ "authorization": password_auth("admin", "wrong") });
    // Ten failures, spread over the three nodes: one node's limit.
    for attempt in 0..10 {
        let reply = clients[attempt % 3].list("/sessions", &wrong).await;
        assert_eq!(reply.status, 401, "attempt {attempt}");
    }
    // Now every node refuses even the right password.
    for client in &clients {
        let locked = client.list("/sessions", &json!({ "authorization": support::admin() })).await;
        assert_eq!(locked.status, 429, "{}", locked.text);
    }
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

/// A native connection to a live shell (docs/protocol.md).
struct Conn {
    socket: WebSocketStream<TcpStream>,
    /// The `0x04` message.
    hello: Value,
    /// Data bytes received.
    output: Vec<u8>,
    /// `0x05` messages and `0x06` bodies seen.
    notices: usize,
    closed: Option<u16>,
}

/// Opens `path` on `server` in the native framing; the HTTP status on refusal.
async fn open(server: &Server, path: &str, authorization: &str) -> Result<Conn, u16> {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
    request.headers_mut().insert("authorization", authorization.parse().unwrap());
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let mut socket = match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => socket,
        Err(WsError::Http(response)) => return Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    };
    socket.send(Message::Binary(vec![1, 0, 80, 0, 24].into())).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.unwrap().unwrap().unwrap();
    let Message::Binary(frame) = frame else { panic!("binary frame first, got {frame:?}") };
    assert_eq!(frame[0], 0x04, "the shell message comes first");
    let hello = serde_json::from_slice(&frame[1..]).unwrap();
    Ok(Conn { socket, hello, output: Vec::new(), notices: 0, closed: None })
}

impl Conn {
    fn id(&self) -> String {
        self.hello["shell"].as_str().unwrap().to_owned()
    }

    async fn type_text(&mut self, text: &str) {
        let mut frame = vec![0];
        frame.extend_from_slice(text.as_bytes());
        self.socket.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Reads one frame; false once the connection is over.
    async fn pump(&mut self, deadline: tokio::time::Instant) -> bool {
        let next = tokio::time::timeout_at(deadline, self.socket.next()).await.expect("timed out reading the shell");
        match next {
            Some(Ok(Message::Binary(frame))) => match frame[0] {
                0x00 => self.output.extend_from_slice(&frame[1..]),
                0x05 | 0x06 => self.notices += 1,
                _ => {}
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

    async fn read_until(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.output.windows(needle.len()).any(|window| window == needle.as_bytes()) {
            assert!(self.pump(deadline).await, "closed before {needle:?}");
        }
    }

    async fn read_to_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.pump(deadline).await {}
        self.closed.unwrap()
    }
}

/// `GET /api/shells` on `server` as `authorization`.
async fn shells(server: &Server, authorization: &str) -> Vec<Value> {
    let reply = server.client().raw("GET", "/api/shells", &[("authorization", authorization)], Vec::new()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["shells"].as_array().unwrap().clone()
}

/// Waits (up to `limit`) until `server` lists exactly the shells `ids`; how long it took.
async fn listed_within(server: &Server, ids: &[&str], limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let listed = shells(server, &admin_basic()).await;
        let mut listed: Vec<&str> = listed.iter().filter_map(|shell| shell["id"].as_str()).collect();
        listed.sort_unstable();
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        if listed == wanted {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{} lists {listed:?}, not {wanted:?}", server.addr);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_shell_opened_on_a_is_listed_on_every_node_and_ended_through_b() {
    let Some((_database, _temps, [a, b, c])) = three_nodes("cluster_listing", default_config()) else { return };
    let mut conn = open(&a, "/bash", &admin_basic()).await.unwrap();
    conn.type_text("echo listed-$((3+3))\r").await;
    conn.read_until("listed-6").await;
    let id = conn.id();

    // A lists its own at once; B and C within a heartbeat, with the same node.
    let on_a = shells(&a, &admin_basic()).await;
    assert_eq!(on_a.len(), 1);
    let node = on_a[0]["node"].as_str().unwrap().to_owned();
    for other in [&b, &c] {
        listed_within(other, &[&id], Duration::from_secs(3)).await;
        let listed = shells(other, &admin_basic()).await;
        let shell = &listed[0];
        assert_eq!(shell["node"], node.as_str(), "{shell}");
        assert_eq!((shell["session"].as_str(), shell["owner"].as_str()), (Some("bash"), Some("admin")));
        assert_eq!((shell["cols"].as_u64(), shell["rows"].as_u64()), (Some(80), Some(24)));
        assert_eq!(shell["clients"], json!([{ "user": "admin", "mode": "control" }]));
        assert!(shell["detached_since"].is_null());
    }
    // B's own shell is listed with another node.
    let own = open(&b, "/bash", &admin_basic()).await.unwrap();
    listed_within(&c, &[&id, &own.id()], Duration::from_secs(3)).await;
    let nodes: Vec<Value> = shells(&c, &admin_basic()).await.iter().map(|shell| shell["node"].clone()).collect();
    assert_eq!(nodes.len(), 2);
    assert_ne!(nodes[0], nodes[1]);
    // Ended through C, B's shell goes.
    let mut own = own;
    let reply = c
        .client()
        .raw("DELETE", &format!("/api/shells/{}", own.id()), &[("authorization", &admin_basic())], Vec::new())
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    own.read_to_close().await;
    listed_within(&a, &[&id], Duration::from_secs(5)).await;

    // Someone without the shell permissions sees none of it on B and cannot end it there.
    support::create_user(&a.client(), "bob", "bob-password-1").await;
    let bob = basic("bob", "bob-password-1");
    assert!(shells(&b, &bob).await.is_empty());
    let path = format!("/api/shells/{id}");
    let reply = b.client().raw("DELETE", &path, &[("authorization", &bob)], Vec::new()).await;
    assert_eq!(reply.status, 404, "{}", reply.text);

    // The administrator ends it through B: A ends it, its client is told. From the answer on
    // no node lists it, and a second request finds nothing to end.
    let reply = b.client().raw("DELETE", &path, &[("authorization", &admin_basic())], Vec::new()).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let started = Instant::now();
    for node in [&b, &c] {
        let listed = shells(node, &admin_basic()).await;
        assert!(listed.iter().all(|shell| shell["id"] != json!(id)), "still listed: {listed:?}");
    }
    let reply = b.client().raw("DELETE", &path, &[("authorization", &admin_basic())], Vec::new()).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(conn.read_to_close().await, 1001);
    eprintln!("ended through B after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
    for node in [&a, &b, &c] {
        listed_within(node, &[], Duration::from_secs(5)).await;
    }
    let reply = b.client().raw("DELETE", &path, &[("authorization", &admin_basic())], Vec::new()).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
}

#[tokio::test]
async fn a_killed_nodes_shells_leave_the_registry_within_a_few_heartbeats_and_a_stopped_nodes_at_once() {
    let Some((_database, _temps, [a, mut b, c])) = three_nodes("cluster_dead_node", default_config()) else { return };
    let mut on_a = open(&a, "/bash", &admin_basic()).await.unwrap();
    on_a.type_text("echo up-$((2+2))\r").await;
    on_a.read_until("up-4").await;
    let on_b = open(&b, "/bash", &admin_basic()).await.unwrap();
    let on_c = open(&c, "/bash", &admin_basic()).await.unwrap();
    let (id_a, id_b, id_c) = (on_a.id(), on_b.id(), on_c.id());
    listed_within(&c, &[&id_a, &id_b, &id_c], Duration::from_secs(3)).await;

    // A dies without a word: within a few heartbeats (1 s each, three missed) its shell is
    // no longer listed anywhere.
    std::process::Command::new("kill").args(["-KILL", &a.pid().to_string()]).status().unwrap();
    let killed = Instant::now();
    let gone = listed_within(&b, &[&id_b, &id_c], Duration::from_secs(8)).await;
    eprintln!("a killed node's shell left the registry after {:?}", killed.elapsed());
    assert!(gone <= Duration::from_secs(8));
    listed_within(&c, &[&id_b, &id_c], Duration::from_secs(1)).await;
    drop(a);

    // B and C keep serving: shells, logins, the API.
    let mut fresh = open(&c, "/bash", &admin_basic()).await.unwrap();
    fresh.type_text("echo still-$((3+3))\r").await;
    fresh.read_until("still-6").await;
    support::create_user(&b.client(), "carol", "carol-password-1").await;
    support::login(&c.client(), "carol", "carol-password-1").await;

    // B stops cleanly: its shells are gone from the registry by the time it has exited.
    drop(on_b);
    assert!(b.terminate().success());
    let listed: Vec<Value> = shells(&c, &admin_basic()).await;
    let ids: Vec<&str> = listed.iter().filter_map(|shell| shell["id"].as_str()).collect();
    assert!(!ids.contains(&id_b.as_str()), "a stopped node's shell is still listed: {ids:?}");
    assert!(ids.contains(&id_c.as_str()) && ids.contains(&fresh.id().as_str()), "{ids:?}");
}

/// Creates a user through `POST /user` (seed 004) on `server`; its id.
async fn new_user(server: &Server, username: &str, password: &str) -> i64 {
    let body = json!({ "username": username, "password": password });
    let reply = server.client().json("POST", "/user", &[("authorization", &admin_basic())], &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json["data"]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn disabling_a_user_on_a_ends_their_shells_on_b_within_a_second() {
    let Some((_database, _temps, [a, b, c])) = three_nodes("cluster_disable", default_config()) else { return };
    let alice_id = new_user(&a, "alice", "alice-password-1").await;
    let alice = basic("alice", "alice-password-1");
    let mut on_b = open(&b, "/bash", &alice).await.unwrap();
    on_b.type_text("echo ready-$((5+5))\r").await;
    on_b.read_until("ready-10").await;
    let mut on_c = open(&c, "/bash", &alice).await.unwrap();
    on_c.type_text("echo ready-$((5+5))\r").await;
    on_c.read_until("ready-10").await;

    let disable = json!({ "status": "1" });
    let reply =
        a.client().json("PUT", &format!("/user/{alice_id}"), &[("authorization", &admin_basic())], &disable).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let started = Instant::now();
    on_b.read_to_close().await;
    let on_b_after = started.elapsed();
    on_c.read_to_close().await;
    let on_c_after = started.elapsed();
    eprintln!("disabled on A: shell on B closed after {on_b_after:?}, on C after {on_c_after:?}");
    // One second is the bound; the margin is for a loaded test machine.
    assert!(on_b_after < Duration::from_millis(1500), "took {on_b_after:?}");
    assert!(on_c_after < Duration::from_millis(1500), "took {on_c_after:?}");
    listed_within(&a, &[], Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_shell_opened_on_a_is_attached_through_c_with_exact_resume() {
    let Some((_database, _temps, [a, b, c])) = three_nodes("cluster_attach", default_config()) else { return };
    let mut first = open(&a, "/bash", &admin_basic()).await.unwrap();
    let id = first.id();
    first.type_text("seq 1 20000; echo DONE-$((40+2))\r").await;
    first.read_until("DONE-42").await;
    let whole = first.output.clone();
    let end = whole.windows(7).position(|window| window == b"DONE-42").unwrap() + 7;
    drop(first);
    listed_within(&c, &[&id], Duration::from_secs(3)).await;

    // Through C, from the middle: the bytes from that offset on, exactly.
    let offset = end / 2;
    let mut through = open(&c, &format!("/bash?shell={id}&offset={offset}"), &admin_basic()).await.unwrap();
    assert_eq!(through.id(), id);
    assert_eq!(through.hello["offset"].as_u64(), Some(offset as u64), "the first data byte is the one asked for");
    through.read_until("DONE-42").await;
    assert_eq!(&through.output[..end - offset], &whole[offset..end], "the relayed stream equals the direct one");
    assert_eq!(through.notices, 0, "no gap with the history big enough");
    // Input goes the other way; the shell is the same one.
    through.type_text("echo via-c-$((6*7)) on $$\r").await;
    through.read_until("via-c-42").await;
    drop(through);

    // Reattached through B at the end of what it saw: nothing lost, nothing repeated.
    let mut again = open(&b, &format!("/bash?shell={id}&offset={end}"), &admin_basic()).await.unwrap();
    again.type_text("echo again-$((7*6))\r").await;
    again.read_until("again-42").await;
    let text = String::from_utf8_lossy(&again.output).into_owned();
    assert!(text.contains("via-c-42") && !text.contains("DONE-42"), "{text}");

    // The owning node checks the client's own credential: a wrong password, and a user
    // without the shell permissions, are refused as on A itself.
    let path = format!("/bash?shell={id}&mode=observe");
    assert_eq!(open(&c, &path, &basic("admin", "wrong-password")).await.err(), Some(401));
    support::create_user(&a.client(), "bob", "bob-password-1").await;
    assert_eq!(open(&c, &path, &basic("bob", "bob-password-1")).await.err(), Some(404));
    assert_eq!(open(&c, &path, &admin_basic()).await.map(|conn| conn.id()).ok(), Some(id.clone()));
}

#[tokio::test]
async fn a_forged_node_signature_is_refused() {
    let Some((_database, _temps, [a, _b, _c])) = three_nodes("cluster_forged", default_config()) else { return };
    let conn = open(&a, "/bash", &admin_basic()).await.unwrap();
    for signature in [
        "garbage",
        "1700000000.AAAA",
        &format!(
            "{}.bm90LWEtbWFj",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        ),
    ] {
        let mut request = format!("ws://{}/bash?shell={}", a.addr, conn.id()).into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
        request.headers_mut().insert("authorization", admin_basic().parse().unwrap());
        request.headers_mut().insert("x-wssh-node", signature.parse().unwrap());
        request.headers_mut().insert("x-wssh-node-client", "203.0.113.9".parse().unwrap());
        let stream = TcpStream::connect(a.addr).await.unwrap();
        match tokio_tungstenite::client_async(request, stream).await {
            Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 401, "{signature}"),
            other => panic!("a forged node signature was accepted: {:?}", other.map(|_| ())),
        }
    }
    assert!(!a.log().contains("bm90LWEtbWFj"), "signatures are not logged");
}
