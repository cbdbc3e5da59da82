//! API conformance: drives the real `wssh` binary through a list of scenarios that together
//! reach every (path, operation, status) documented in `docs/api/openapi.json`, and checks each
//! reply against the document: the status is documented for the operation, the body validates
//! against the documented schema, the documented headers are there. Run it with
//! `cargo xtask conformance`.

mod support;

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Client, Reply, Server, admin, login, password_auth, token_auth};

/// The OpenAPI document under test.
const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/openapi.json");

/// The operation keys a path item may hold, extensions for COPY and MOVE included.
const OPERATION_KEYS: &[&str] = &["get", "head", "post", "put", "delete", "options", "x-copy", "x-move"];

/// Statuses documented but not reachable from outside, or only under load: exempt from the
/// coverage check. 503 (password hashing saturated) is reached by tests/hardening.rs's flood.
const EXEMPT_STATUSES: &[u16] = &[500, 503];

/// Documented (path, status) pairs no scenario can reach yet (none at present).
const EXEMPT_TRIPLES: &[(&str, u16)] = &[];

/// The headers of a WebSocket upgrade request.
const UPGRADE: &[(&str, &str)] = &[
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// The largest request body the server reads (1 MiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// go_ws_sh's routing header.
const OVERRIDE: &str = "x-HTTP-method-override";

/// The ordinary (non-admin) user the scenarios create.
const ALICE: &str = "alice";
const ALICE_PASSWORD: &str = "alice-password-1";

/// Every (method, override, path) that reaches a go_ws_sh operation; both ways of listing.
const API_CALLS: &[(&str, Option<&str>, &str)] = &[
    ("GET", None, "/tokens"),
    ("POST", Some("GET"), "/tokens"),
    ("POST", None, "/tokens"),
    ("PUT", None, "/tokens"),
    ("DELETE", None, "/tokens"),
    ("GET", None, "/credentials"),
    ("POST", Some("GET"), "/credentials"),
    ("POST", None, "/credentials"),
    ("PUT", None, "/credentials"),
    ("DELETE", None, "/credentials"),
    ("GET", None, "/sessions"),
    ("POST", Some("GET"), "/sessions"),
    ("POST", None, "/sessions"),
    ("PUT", None, "/sessions"),
    ("DELETE", None, "/sessions"),
    ("COPY", None, "/sessions"),
    ("MOVE", None, "/sessions"),
];

// ---------------------------------------------------------------------------------------------
// A small JSON Schema validator: type (one or several, null included), enum, required,
// properties, items, allOf, anyOf, not, and $ref into the document. Other keywords (format,
// pattern, maxLength, descriptions) are annotations here.

/// The node `reference` (`#/components/...`) points at.
fn resolve<'a>(spec: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("only local references: {reference}"));
    spec.pointer(pointer).unwrap_or_else(|| panic!("dangling reference {reference}"))
}

/// Whether `value` is of the JSON Schema type `name`.
fn has_type(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        other => panic!("unknown type {other}"),
    }
}

/// Checks `value` against `schema`; the error names where (`at`) and why.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return validate(spec, resolve(spec, reference), value, at);
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
            name => vec![name.as_str().expect("type is a string or an array")],
        };
        if !names.iter().any(|name| has_type(name, value)) {
            return Err(format!("{at}: expected {names:?}, got {value}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {options:?}"));
    }
    if let (Some(required), Some(object)) = (schema.get("required").and_then(Value::as_array), value.as_object()) {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                return Err(format!("{at}: missing required {name:?}"));
            }
        }
    }
    if let (Some(properties), Some(object)) = (schema.get("properties").and_then(Value::as_object), value.as_object()) {
        for (name, property) in properties {
            if let Some(field) = object.get(name) {
                validate(spec, property, field, &format!("{at}/{name}"))?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            validate(spec, items, item, &format!("{at}/{index}"))?;
        }
    }
    for sub in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        validate(spec, sub, value, at)?;
    }
    if let Some(choices) = schema.get("anyOf").and_then(Value::as_array)
        && !choices.iter().any(|choice| validate(spec, choice, value, at).is_ok())
    {
        return Err(format!("{at}: matches none of anyOf"));
    }
    if let Some(forbidden) = schema.get("not")
        && validate(spec, forbidden, value, at).is_ok()
    {
        return Err(format!("{at}: matches a schema it must not match: {forbidden}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenarios and the checker.

/// One request and the status it must get.
struct Scenario {
    /// What it checks, for failure messages.
    name: String,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expect: u16,
    /// The documented path, when it is a template (`/{session}`) rather than `path` itself.
    documented_path: Option<&'static str>,
}

impl Scenario {
    /// `method path` with a JSON body.
    fn new(name: impl Into<String>, method: &'static str, path: &'static str, body: &Value, expect: u16) -> Self {
        Scenario::raw(name, method, path, serde_json::to_vec(body).unwrap(), expect)
    }

    /// `method path` with raw body bytes.
    fn raw(name: impl Into<String>, method: &'static str, path: &'static str, body: Vec<u8>, expect: u16) -> Self {
        let headers = vec![("content-type", "application/json".to_owned())];
        Scenario { name: name.into(), method, path, headers, body, expect, documented_path: None }
    }

    /// go_ws_sh's browser list call: POST with the override `GET`.
    fn list(name: impl Into<String>, path: &'static str, body: &Value, expect: u16) -> Self {
        Scenario::new(name, "POST", path, body, expect).header(OVERRIDE, "GET")
    }

    /// Checks the reply against `path`'s documentation instead of the request path's.
    fn documented_as(mut self, path: &'static str) -> Self {
        self.documented_path = Some(path);
        self
    }

    /// A WebSocket upgrade of `path`, documented as `/{session}`.
    fn upgrade(name: impl Into<String>, path: &'static str, expect: u16) -> Self {
        let mut scenario = Scenario::raw(name, "GET", path, Vec::new(), expect);
        scenario.headers.clear();
        scenario.documented_path = Some("/{session}");
        for (header, value) in UPGRADE {
            scenario = scenario.header(header, *value);
        }
        scenario
    }

    /// Replaces (or adds) a request header.
    fn set_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.header(name, value)
    }

    /// Adds a request header.
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The documented operation the request reaches: the override routes POST to `get`, and
    /// COPY and MOVE are the `x-copy` and `x-move` extensions.
    fn operation_key(&self) -> &'static str {
        let override_value =
            self.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(OVERRIDE)).map(|(_, value)| value.as_str());
        match (self.method, override_value) {
            ("GET", _) | ("POST", Some("GET")) => "get",
            ("POST", _) => "post",
            ("HEAD", _) => "head",
            ("PUT", _) => "put",
            ("DELETE", _) => "delete",
            ("OPTIONS", _) => "options",
            ("COPY", _) => "x-copy",
            ("MOVE", _) => "x-move",
            (other, _) => panic!("no documented operation for {other}"),
        }
    }
}

/// The API surfaces, each covered by its own test function against its own server, so that
/// they run in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    /// go_ws_sh's API, the shell endpoint, `/healthz` and seed 004's login routes.
    Core,
    /// Seeds 001 and 003: `/api/...`.
    Alist,
    /// Seed 002: `/AccessToken/...`.
    AccessToken,
    /// Seed 004's roles, permissions and users: `/role...`, `/perm...`, `/user...`.
    Rbac,
    /// Live shells: `/api/shells...`.
    Shells,
    /// Shell recordings: `/api/recordings...`.
    Recordings,
}

impl Surface {
    /// The surface a documented path belongs to.
    fn of(path: &str) -> Surface {
        if path == "/api/openapi.json" {
            return Surface::Core;
        }
        if path.starts_with("/api/shells") {
            return Surface::Shells;
        }
        if path.starts_with("/api/recordings") {
            return Surface::Recordings;
        }
        let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        match first {
            "api" => Surface::Alist,
            "AccessToken" => Surface::AccessToken,
            "role" | "perm" | "user" => Surface::Rbac,
            _ => Surface::Core,
        }
    }
}

/// The document, and which of its (path, operation, status) triples the scenarios reached.
struct Conformance {
    spec: Value,
    covered: BTreeSet<(String, String, u16)>,
    scenarios: usize,
}

impl Conformance {
    /// Reads the document; nothing is covered yet.
    fn load() -> Conformance {
        let text = std::fs::read_to_string(SPEC_PATH).unwrap_or_else(|error| panic!("{SPEC_PATH}: {error}"));
        let spec = serde_json::from_str(&text).expect("openapi.json is JSON");
        Conformance { spec, covered: BTreeSet::new(), scenarios: 0 }
    }

    /// Every documented (path, operation, status).
    fn documented(&self) -> BTreeSet<(String, String, u16)> {
        let mut all = BTreeSet::new();
        for (path, item) in self.spec["paths"].as_object().expect("paths") {
            for key in OPERATION_KEYS {
                for status in
                    item.get(*key).and_then(|op| op["responses"].as_object()).into_iter().flat_map(|r| r.keys())
                {
                    all.insert((path.clone(), (*key).to_owned(), status.parse().expect("numeric status")));
                }
            }
        }
        all
    }

    /// Asserts that the scenarios reached every documented (path, operation, status) of
    /// `surface`, the exempt ones aside.
    fn assert_covered(&self, surface: Surface) {
        let missing: Vec<_> = self
            .documented()
            .into_iter()
            .filter(|(path, _, _)| Surface::of(path) == surface)
            .filter(|(_, _, status)| !EXEMPT_STATUSES.contains(status))
            .filter(|(path, _, status)| !EXEMPT_TRIPLES.contains(&(path.as_str(), *status)))
            .filter(|triple| !self.covered.contains(triple))
            .collect();
        assert!(missing.is_empty(), "{surface:?}: documented but never reached by a scenario: {missing:#?}");
    }

    /// Sends the scenario, asserts its status, and checks the reply against the document.
    async fn run(&mut self, client: &Client, scenario: Scenario) -> Reply {
        let reply = if scenario.body.len() > MAX_BODY_BYTES {
            send_head_only(client, &scenario).await
        } else {
            let headers: Vec<(&str, &str)> =
                scenario.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
            client.raw(scenario.method, scenario.path, &headers, scenario.body.clone()).await
        };
        let name = &scenario.name;
        assert_eq!(reply.status, scenario.expect, "{name}: {} {}: {}", scenario.method, scenario.path, reply.text);
        let key = scenario.operation_key();
        let path = scenario.documented_path.unwrap_or(scenario.path);
        let operation = self.spec["paths"]
            .get(path)
            .and_then(|item| item.get(key))
            .unwrap_or_else(|| panic!("{name}: {} {key} is not documented", scenario.path));
        let mut response = operation["responses"]
            .get(reply.status.to_string())
            .unwrap_or_else(|| panic!("{name}: status {} is not documented for {} {key}", reply.status, scenario.path));
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            response = resolve(&self.spec, reference);
        }
        match response.pointer("/content/application~1json/schema") {
            Some(schema) => {
                assert!(reply.header("content-type").starts_with("application/json"), "{name}: content type");
                let body: Value = serde_json::from_str(&reply.text)
                    .unwrap_or_else(|error| panic!("{name}: body is not JSON ({error}): {}", reply.text));
                if let Err(violation) = validate(&self.spec, schema, &body, "") {
                    panic!("{name}: the reply does not match the document: {violation}\n{body:#}");
                }
            }
            None => match response.get("content").and_then(Value::as_object) {
                // Not JSON (the page and its assets): the documented media type, and a body
                // unless the request was HEAD.
                Some(media) => {
                    let content_type = reply.header("content-type");
                    let essence = content_type.split(';').next().unwrap_or_default().trim();
                    assert!(media.contains_key(essence), "{name}: content type {content_type:?} is not documented");
                    assert!(scenario.method == "HEAD" || !reply.text.is_empty(), "{name}: empty body");
                }
                None => assert!(reply.text.is_empty(), "{name}: undocumented body {}", reply.text),
            },
        }
        // go_ws_sh's errors say `Error: …`; seed 004's carry a `code` instead. HEAD has no body.
        if reply.status >= 400 && scenario.method != "HEAD" && reply.json.get("code").is_none() {
            let message = reply.json["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("Error: "), "{name}: error message {message:?}");
        }
        for header in response.get("headers").and_then(Value::as_object).into_iter().flat_map(|h| h.keys()) {
            assert!(reply.headers.contains_key(header.as_str()), "{name}: documented header {header} is missing");
        }
        self.covered.insert((path.to_owned(), key.to_owned(), reply.status));
        self.scenarios += 1;
        reply
    }

    /// Runs the scenarios in order.
    async fn run_all(&mut self, client: &Client, scenarios: Vec<Scenario>) {
        for scenario in scenarios {
            self.run(client, scenario).await;
        }
    }
}

/// Sends only the head of a request whose body is over [`MAX_BODY_BYTES`], declaring the
/// body's length, and reads the reply. The server answers 413 from `Content-Length` alone and
/// closes the connection without reading the body: a client still writing the body then gets
/// a reset instead of the reply, so this one does not write it.
async fn send_head_only(client: &Client, scenario: &Scenario) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(client.addr).await.expect("connect");
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {}\r\n", scenario.method, scenario.path, client.addr);
    head += &format!("content-length: {}\r\n", scenario.body.len());
    for (name, value) in &scenario.headers {
        head += &format!("{name}: {value}\r\n");
    }
    stream.write_all(format!("{head}\r\n").as_bytes()).await.expect("send the head");
    let mut raw = Vec::new();
    loop {
        let mut buffer = [0; 4096];
        let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buffer))
            .await
            .expect("reply within 30 s")
            .expect("read the reply");
        raw.extend_from_slice(&buffer[..read]);
        let Some(end) = raw.windows(4).position(|window| window == b"\r\n\r\n") else {
            assert!(read > 0, "connection closed in the reply's head");
            continue;
        };
        let text = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|code| code.parse().ok());
        let mut headers = http::HeaderMap::new();
        for (name, value) in lines.filter_map(|line| line.split_once(':')) {
            let name = http::HeaderName::from_bytes(name.trim().as_bytes()).expect("header name");
            headers.append(name, http::HeaderValue::from_str(value.trim()).expect("header value"));
        }
        let length: usize = headers.get("content-length").map_or(0, |value| value.to_str().unwrap().parse().unwrap());
        if raw.len() >= end + 4 + length {
            let body = &raw[end + 4..end + 4 + length];
            let text = String::from_utf8_lossy(body).into_owned();
            let json = serde_json::from_slice(body).unwrap_or(Value::Null);
            return Reply { status: status.expect("a status line"), headers, text, json };
        }
        assert!(read > 0, "connection closed in the reply's body");
    }
}

/// One scenario per API call in [`API_CALLS`], each with `body` and expecting `expect`.
fn for_every_call(what: &str, body: &[u8], expect: u16) -> Vec<Scenario> {
    API_CALLS
        .iter()
        .map(|&(method, override_value, path)| {
            let name = format!("{what}: {method} {path} {}", override_value.unwrap_or(""));
            let scenario = Scenario::raw(name, method, path, body.to_vec(), expect);
            match override_value {
                Some(value) => scenario.header(OVERRIDE, value),
                None => scenario,
            }
        })
        .collect()
}

fn session_body(authorization: &Value, session: Value) -> Value {
    json!({ "authorization": authorization, "session": session })
}

fn transfer_body(authorization: &Value, from: &str, to: &str) -> Value {
    json!({ "authorization": authorization, "session": { "name": from }, "destination": { "name": to } })
}

fn token_body(authorization: &Value, token: Value) -> Value {
    json!({ "authorization": authorization, "token": token })
}

fn credential_body(authorization: &Value, credential: Value) -> Value {
    json!({ "authorization": authorization, "credential": credential })
}

#[tokio::test]
async fn every_documented_status_is_reached_and_matches_the_document() {
    let server = Server::start();
    let client = server.client();
    let mut check = Conformance::load();
    let admin = admin();
    let alice = password_auth(ALICE, ALICE_PASSWORD);

    // Setup, checked like every other request.
    check
        .run(
            &client,
            Scenario::new(
                "admin creates an ordinary user",
                "POST",
                "/credentials",
                &credential_body(&admin, json!({ "username": ALICE, "password": ALICE_PASSWORD })),
                200,
            ),
        )
        .await;
    let (admin_token_id, admin_secret) = login(&client, "admin", ADMIN_PASSWORD).await;
    let spare = check
        .run(
            &client,
            Scenario::new("log in", "POST", "/tokens", &token_body(&admin, json!({ "description": "spare" })), 200)
                .header(OVERRIDE, "POST"),
        )
        .await;
    let spare_id = spare.json["token"]["identifier"].as_str().unwrap().to_owned();
    let admin_token = token_auth(&admin_token_id, &admin_secret);
    let malformed = b"{not json".to_vec();
    let huge = vec![b' '; MAX_BODY_BYTES + 1];

    let mut scenarios = vec![
        // Health and preflights.
        Scenario::raw("the page", "GET", "/", Vec::new(), 200),
        Scenario::raw("the page without a body", "HEAD", "/", Vec::new(), 200),
        Scenario::raw("a script of the page", "GET", "/assets/app.js", Vec::new(), 200)
            .documented_as("/assets/{asset}"),
        Scenario::raw("its style sheet", "GET", "/assets/app.css", Vec::new(), 200).documented_as("/assets/{asset}"),
        Scenario::raw("its icon", "GET", "/assets/icon.svg", Vec::new(), 200).documented_as("/assets/{asset}"),
        Scenario::raw("an asset the client holds", "GET", "/assets/app.js", Vec::new(), 304)
            .documented_as("/assets/{asset}")
            .header("if-none-match", "*"),
        Scenario::raw("an asset's headers", "HEAD", "/assets/app.js", Vec::new(), 200).documented_as("/assets/{asset}"),
        Scenario::raw("an asset's headers the client holds", "HEAD", "/assets/app.js", Vec::new(), 304)
            .documented_as("/assets/{asset}")
            .header("if-none-match", "*"),
        Scenario::raw("an unknown asset's headers", "HEAD", "/assets/nope.js", Vec::new(), 404)
            .documented_as("/assets/{asset}"),
        Scenario::raw("an unknown asset", "GET", "/assets/nope.js", Vec::new(), 404).documented_as("/assets/{asset}"),
        Scenario::raw("the OpenAPI document", "GET", "/api/openapi.json", Vec::new(), 200),
        Scenario::raw("health", "GET", "/healthz", Vec::new(), 200),
        Scenario::raw("health without a body", "HEAD", "/healthz", Vec::new(), 200),
        Scenario::raw("preflight /healthz", "OPTIONS", "/healthz", Vec::new(), 204),
    ];
    for path in ["/tokens", "/credentials", "/sessions"] {
        scenarios.push(
            Scenario::raw(format!("preflight {path}"), "OPTIONS", path, Vec::new(), 204)
                .header("origin", "http://localhost:60001")
                .header("access-control-request-method", "COPY"),
        );
    }

    // Sessions.
    let bearer_json = format!("Bearer {}", STANDARD.encode(admin.to_string()));
    scenarios.extend([
        Scenario::new("list with GET and a body", "GET", "/sessions", &json!({ "authorization": admin }), 200),
        Scenario::list("list with a token", "/sessions", &json!({ "authorization": admin_token }), 200),
        Scenario::list("list with an opaque bearer", "/sessions", &json!({}), 200)
            .header("authorization", format!("Bearer {admin_secret}")),
        Scenario::list("list with go_ws_sh's bearer", "/sessions", &json!({}), 200)
            .header("authorization", bearer_json),
        Scenario::list("list filtered", "/sessions", &session_body(&alice, json!({ "name": "bash" })), 200),
        Scenario::list("invalid token", "/sessions", &json!({ "authorization": token_auth("1", "wssh_x") }), 401),
        Scenario::new("create", "POST", "/sessions", &session_body(&admin, json!({ "name": "s1", "cmd": "sh" })), 200),
        Scenario::new(
            "create, override POST",
            "POST",
            "/sessions",
            &session_body(&admin, json!({ "name": "s2", "cmd": "sh" })),
            200,
        )
        .header(OVERRIDE, "POST"),
        Scenario::new(
            "create a duplicate",
            "POST",
            "/sessions",
            &session_body(&admin, json!({ "name": "s1", "cmd": "sh" })),
            409,
        ),
        Scenario::new("create as a user", "POST", "/sessions", &session_body(&alice, json!({ "name": "s3" })), 403),
        Scenario::new("create, empty name", "POST", "/sessions", &session_body(&admin, json!({ "name": "" })), 400),
        Scenario::new(
            "create, override PATCH",
            "POST",
            "/sessions",
            &session_body(&admin, json!({ "name": "s3" })),
            405,
        )
        .header(OVERRIDE, "PATCH"),
        Scenario::new("update", "PUT", "/sessions", &session_body(&admin, json!({ "name": "s1", "dir": "/" })), 200),
        Scenario::new("update unknown", "PUT", "/sessions", &session_body(&admin, json!({ "name": "nope" })), 404),
        Scenario::new("update as a user", "PUT", "/sessions", &session_body(&alice, json!({ "name": "s1" })), 403),
        Scenario::new("copy", "COPY", "/sessions", &transfer_body(&admin, "s1", "s1-copy"), 200),
        Scenario::new("copy onto another", "COPY", "/sessions", &transfer_body(&admin, "s1", "s2"), 409),
        Scenario::new("copy unknown", "COPY", "/sessions", &transfer_body(&admin, "nope", "x"), 404),
        Scenario::new("copy as a user", "COPY", "/sessions", &transfer_body(&alice, "s1", "x"), 403),
        Scenario::new("copy without destination", "COPY", "/sessions", &transfer_body(&admin, "s1", ""), 400),
        Scenario::new("move", "MOVE", "/sessions", &transfer_body(&admin, "s1-copy", "s1-moved"), 200),
        Scenario::new("move onto another", "MOVE", "/sessions", &transfer_body(&admin, "s1", "s2"), 409),
        Scenario::new("move unknown", "MOVE", "/sessions", &transfer_body(&admin, "nope", "x"), 404),
        Scenario::new("move as a user", "MOVE", "/sessions", &transfer_body(&alice, "s1", "x"), 403),
        Scenario::new("move an initial session", "MOVE", "/sessions", &transfer_body(&admin, "bash", "x"), 400),
        Scenario::new("delete", "DELETE", "/sessions", &session_body(&admin, json!({ "name": "s1-moved" })), 200),
        Scenario::new("delete unknown", "DELETE", "/sessions", &session_body(&admin, json!({ "name": "nope" })), 404),
        Scenario::new("delete as a user", "DELETE", "/sessions", &session_body(&alice, json!({ "name": "s1" })), 403),
    ]);

    // Tokens.
    let long = "x".repeat(1025);
    scenarios.extend([
        Scenario::list("admin lists every token", "/tokens", &json!({ "authorization": admin }), 200),
        Scenario::new("user lists own tokens", "GET", "/tokens", &json!({ "authorization": alice }), 200),
        Scenario::list("list filtered", "/tokens", &token_body(&admin, json!({ "identifier": spare_id })), 200),
        Scenario::new("user logs in", "POST", "/tokens", &token_body(&alice, json!({})), 200),
        Scenario::new("token mints a token", "POST", "/tokens", &token_body(&admin_token, json!({})), 200),
        Scenario::new("mint for another", "POST", "/tokens", &token_body(&alice, json!({ "username": "admin" })), 403),
        Scenario::new("mint for nobody", "POST", "/tokens", &token_body(&admin, json!({ "username": "nobody" })), 404),
        Scenario::new(
            "description too long",
            "POST",
            "/tokens",
            &token_body(&admin, json!({ "description": long })),
            400,
        ),
        Scenario::new("login, override PATCH", "POST", "/tokens", &token_body(&admin, json!({})), 405)
            .header(OVERRIDE, "PATCH"),
        Scenario::new(
            "update",
            "PUT",
            "/tokens",
            &token_body(&admin, json!({ "identifier": spare_id, "description": "renamed" })),
            200,
        ),
        Scenario::new("update unknown", "PUT", "/tokens", &token_body(&admin, json!({ "identifier": "1" })), 404),
        Scenario::new("update, no identifier", "PUT", "/tokens", &token_body(&admin, json!({})), 400),
        Scenario::new(
            "update another's",
            "PUT",
            "/tokens",
            &token_body(&alice, json!({ "identifier": spare_id })),
            403,
        ),
        Scenario::new(
            "delete another's",
            "DELETE",
            "/tokens",
            &token_body(&alice, json!({ "identifier": spare_id })),
            403,
        ),
        Scenario::new("delete", "DELETE", "/tokens", &token_body(&admin, json!({ "identifier": spare_id })), 200),
        Scenario::new("delete again", "DELETE", "/tokens", &token_body(&admin, json!({ "identifier": spare_id })), 404),
    ]);

    // Credentials.
    let bob = json!({ "username": "bob", "password": "bob-password-1" });
    scenarios.extend([
        Scenario::list("admin lists users", "/credentials", &json!({ "authorization": admin }), 200),
        Scenario::new("user lists itself", "GET", "/credentials", &json!({ "authorization": alice }), 200),
        Scenario::new("create", "POST", "/credentials", &credential_body(&admin, bob.clone()), 200),
        Scenario::new("create a duplicate", "POST", "/credentials", &credential_body(&admin, bob.clone()), 409),
        Scenario::new("create as a user", "POST", "/credentials", &credential_body(&alice, bob.clone()), 403),
        Scenario::new(
            "create, no password",
            "POST",
            "/credentials",
            &credential_body(&admin, json!({ "username": "c" })),
            400,
        ),
        Scenario::new("create, override PATCH", "POST", "/credentials", &credential_body(&admin, bob.clone()), 405)
            .header(OVERRIDE, "PATCH"),
        Scenario::new("change another's password", "PUT", "/credentials", &credential_body(&admin, bob.clone()), 200),
        Scenario::new(
            "change own password, token kept",
            "PUT",
            "/credentials",
            &credential_body(&admin_token, json!({ "password": ADMIN_PASSWORD })),
            200,
        ),
        Scenario::new(
            "user changes the admin's password",
            "PUT",
            "/credentials",
            &credential_body(&alice, json!({ "username": "admin", "password": "taken-over-1" })),
            403,
        ),
        Scenario::new(
            "change an unknown user's password",
            "PUT",
            "/credentials",
            &credential_body(&admin, json!({ "username": "nobody", "password": "whatever-1" })),
            404,
        ),
        Scenario::new(
            "change to empty",
            "PUT",
            "/credentials",
            &credential_body(&admin, json!({ "password": "" })),
            400,
        ),
        Scenario::new(
            "delete as a user",
            "DELETE",
            "/credentials",
            &credential_body(&alice, json!({ "username": "bob" })),
            403,
        ),
        Scenario::new("delete", "DELETE", "/credentials", &credential_body(&admin, json!({ "username": "bob" })), 200),
        Scenario::new(
            "delete unknown",
            "DELETE",
            "/credentials",
            &credential_body(&admin, json!({ "username": "bob" })),
            404,
        ),
        Scenario::new(
            "delete the last administrator",
            "DELETE",
            "/credentials",
            &credential_body(&admin, json!({ "username": "admin" })),
            409,
        ),
    ]);

    // The shell endpoint's handshake.
    let basic = format!("Basic {}", STANDARD.encode(format!("admin:{ADMIN_PASSWORD}")));
    scenarios.extend([
        Scenario::upgrade("open a shell", "/bash", 101).header("authorization", basic.clone()),
        Scenario::upgrade("open a shell without credentials", "/bash", 401),
        Scenario::upgrade("open an unknown session", "/nope", 404).header("authorization", basic.clone()),
        Scenario::upgrade("open without a key", "/bash", 400)
            .header("authorization", basic.clone())
            .set_header("sec-websocket-key", ""),
        Scenario::upgrade("open with WebSocket version 8", "/bash", 426)
            .header("authorization", basic.clone())
            .set_header("sec-websocket-version", "8"),
        Scenario::raw("a session name without an upgrade", "GET", "/bash", Vec::new(), 404).documented_as("/{session}"),
    ]);

    // The login API (seed 004).
    let login_body = json!({ "username": "admin", "password": ADMIN_PASSWORD });
    let logged_in = check.run(&client, Scenario::new("log in", "POST", "/auth/login", &login_body, 200)).await;
    let access = logged_in.header("authorization").to_owned();
    let refresh = logged_in.header("x-refresh-token").to_owned();
    check
        .run(
            &client,
            Scenario::raw("test a login", "GET", "/test", Vec::new(), 204).header("authorization", access.clone()),
        )
        .await;
    let rotated = check
        .run(
            &client,
            Scenario::raw("rotate", "POST", "/auth/session", Vec::new(), 204)
                .header("x-refresh-token", refresh.clone()),
        )
        .await;
    let refresh2 = rotated.header("x-refresh-token").to_owned();
    let access2 = rotated.header("authorization").to_owned();
    let elsewhere = check
        .run(
            &client,
            Scenario::new("log in from a browser", "POST", "/auth/login", &login_body, 200)
                .header("user-agent", "browser/1"),
        )
        .await;
    check
        .run(
            &client,
            Scenario::raw("rotate from another user agent", "POST", "/auth/session", Vec::new(), 403)
                .header("x-refresh-token", elsewhere.header("x-refresh-token").to_owned())
                .header("user-agent", "curl/8"),
        )
        .await;
    // Now rather than with the scenarios below: one of those changes the admin's password,
    // which ends the admin's other logins, this one included.
    check
        .run(
            &client,
            Scenario::raw("log out", "POST", "/auth/logout", Vec::new(), 200)
                .header("authorization", access2)
                .header("x-refresh-token", refresh2),
        )
        .await;
    scenarios.extend([
        Scenario::raw("log in with bad JSON", "POST", "/auth/login", malformed.clone(), 400),
        Scenario::new(
            "log in with a wrong password",
            "POST",
            "/auth/login",
            &json!({ "username": "admin", "password": "no" }),
            401,
        ),
        Scenario::raw("test without credentials", "GET", "/test", Vec::new(), 401),
        Scenario::raw("log out again", "POST", "/auth/logout", Vec::new(), 401).header("authorization", access),
        Scenario::raw("rotate a spent refresh token", "POST", "/auth/session", Vec::new(), 401)
            .header("x-refresh-token", refresh),
    ]);

    // A user holding no permission (bound to the built-in guest role): refused by /test and
    // by the shell endpoint.
    let guest = guest_user(&client).await;
    scenarios.extend([
        Scenario::raw("test a guest", "GET", "/test", Vec::new(), 403).header("authorization", guest.clone()),
        Scenario::upgrade("open a shell as a guest", "/bash", 403).header("authorization", guest),
    ]);

    // The generic errors, on every operation.
    scenarios.extend(for_every_call("malformed JSON", &malformed, 400));
    scenarios.extend(for_every_call("no credentials", b"{}", 401));
    scenarios.extend(for_every_call("body over 1 MiB", &huge, 413));
    check.run_all(&client, scenarios).await;

    // Last, as it locks the loopback address out of password logins: ten wrong passwords are
    // 401, the eleventh and then every password login are 429.
    let wrong = json!({ "authorization": password_auth("admin", "wrong-password") });
    // One failure from this address is already counted ("log in with a wrong password").
    for attempt in 2..=10 {
        check.run(&client, Scenario::list(format!("wrong password #{attempt}"), "/sessions", &wrong, 401)).await;
    }
    check.run(&client, Scenario::list("wrong password #11", "/sessions", &wrong, 429)).await;
    let locked = serde_json::to_vec(&json!({ "authorization": admin })).unwrap();
    check.run_all(&client, for_every_call("locked out", &locked, 429)).await;
    check
        .run(&client, Scenario::upgrade("open a shell while locked out", "/bash", 429).header("authorization", basic))
        .await;
    check.run(&client, Scenario::new("log in while locked out", "POST", "/auth/login", &login_body, 429)).await;
    // Token logins are not throttled.
    check
        .run(
            &client,
            Scenario::list("token while locked out", "/sessions", &json!({ "authorization": admin_token }), 200),
        )
        .await;

    check.assert_covered(Surface::Core);
    assert!(check.scenarios >= 100, "only {} scenarios ran", check.scenarios);
    eprintln!("{} scenarios reached {} documented (path, operation, status)", check.scenarios, check.covered.len());
}

#[test]
fn every_reference_in_the_document_resolves() {
    fn walk(spec: &Value, node: &Value) {
        match node {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    resolve(spec, reference);
                }
                map.values().for_each(|child| walk(spec, child));
            }
            Value::Array(items) => items.iter().for_each(|child| walk(spec, child)),
            _ => {}
        }
    }
    let check = Conformance::load();
    walk(&check.spec, &check.spec);
    assert!(check.documented().len() > 50);
}

#[test]
fn the_validator_rejects_what_the_document_forbids() {
    let spec = Conformance::load().spec;
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let token = json!({
        "identifier": "1", "username": "admin", "description": "", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z", "expires_at": null
    });
    assert_eq!(validate(&spec, &schema("Token"), &token, ""), Ok(()));
    let mut with_secret = token.clone();
    with_secret["token"] = json!("wssh_secret");
    assert!(validate(&spec, &schema("Token"), &with_secret, "").is_err(), "a listed token must not carry its secret");
    assert_eq!(validate(&spec, &schema("NewToken"), &with_secret, ""), Ok(()));
    assert!(validate(&spec, &schema("NewToken"), &token, "").is_err(), "a new token carries its secret");
    let mut expiring = token.clone();
    expiring["expires_at"] = json!(5);
    assert!(validate(&spec, &schema("Token"), &expiring, "").is_err());
    let list = json!({ "message": "Tokens listed successfully", "username": "admin", "tokens": [token] });
    assert_eq!(validate(&spec, &schema("TokenList"), &list, ""), Ok(()));
    let wrong_message = json!({ "message": "ok", "username": "admin", "tokens": [] });
    assert!(validate(&spec, &schema("TokenList"), &wrong_message, "").is_err());
    let credential = json!({
        "username": "a", "roles": ["user"], "disabled": false, "created_at": "", "updated_at": "", "password_hash": "x"
    });
    assert!(validate(&spec, &schema("Credential"), &credential, "").is_err(), "no password hash in a view");
    assert!(validate(&spec, &schema("Error"), &json!({}), "").is_err());
}

// ---------------------------------------------------------------------------------------------
// Seed 002 (`/AccessToken/...`) and seed 004's roles, permissions and users.

/// A scenario path built at run time (ids, query strings); scenarios hold `&'static str`.
fn leaked(path: String) -> &'static str {
    Box::leak(path.into_boxed_str())
}

/// `Basic` credentials.
fn basic_auth(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

/// A request without a body.
fn bare(name: &str, method: &'static str, path: &'static str, expect: u16) -> Scenario {
    let mut scenario = Scenario::raw(name, method, path, Vec::new(), expect);
    scenario.headers.clear();
    scenario
}

/// Creates a user holding no permission at all (bound to the built-in `guest` role) through
/// seed 004's routes, and returns its `Basic` credentials.
async fn guest_user(client: &Client) -> String {
    let admin = basic_auth("admin", ADMIN_PASSWORD);
    let created = client
        .json(
            "POST",
            "/user",
            &[("authorization", &admin)],
            &json!({ "username": "guest-user", "password": "guest-password-1" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let uid = created.json["data"]["id"].as_i64().unwrap();
    let roles = client.raw("GET", "/role/list?roleKey=guest", &[("authorization", &admin)], Vec::new()).await;
    let guest = roles.json["data"]["list"][0]["roleId"].as_i64().unwrap();
    let bound = client.json("POST", &format!("/user/{uid}/bind"), &[("authorization", &admin)], &json!([guest])).await;
    assert_eq!(bound.status, 200, "{}", bound.text);
    basic_auth("guest-user", "guest-password-1")
}

#[tokio::test(flavor = "multi_thread")]
async fn access_token_surface() {
    let server = Server::start();
    let client = server.client();
    let mut check = Conformance::load();
    let admin = basic_auth("admin", ADMIN_PASSWORD);
    support::create_user(&client, ALICE, ALICE_PASSWORD).await;
    let alice = basic_auth(ALICE, ALICE_PASSWORD);
    const LIST: &str = "/AccessToken/{appKey}";
    const ITEM: &str = "/AccessToken/{appKey}/{id}";

    let minted = check
        .run(
            &client,
            Scenario::new(
                "mint with the seed's sample body",
                "POST",
                "/AccessToken/app",
                &json!({ "title": "", "tags": "", "userID": "0", "description": "", "permissions": "", "expireInDays": "0" }),
                200,
            )
            .header("authorization", admin.clone())
            .documented_as(LIST),
        )
        .await;
    let id = minted.json["data"]["id"].as_i64().unwrap();
    let secret = minted.json["data"]["access_token"].as_str().unwrap().to_owned();
    let narrow = check
        .run(
            &client,
            Scenario::new(
                "mint a narrow token",
                "POST",
                "/AccessToken/app",
                &json!({ "permissions": "sessions:read", "expireInDays": 1 }),
                200,
            )
            .header("authorization", admin.clone())
            .documented_as(LIST),
        )
        .await;
    let narrow = format!("Bearer {}", narrow.json["data"]["access_token"].as_str().unwrap());
    let admin_id = client.raw("GET", "/user/info", &[("authorization", &admin)], Vec::new()).await.json["data"]["user"]
        ["userId"]
        .as_i64()
        .unwrap();
    let item = leaked(format!("/AccessToken/app/{id}"));
    let huge = vec![b' '; MAX_BODY_BYTES + 1];

    check
        .run_all(
            &client,
            vec![
                // List.
                bare("list", "GET", "/AccessToken/app", 200).header("authorization", admin.clone()).documented_as(LIST),
                bare("list with the token", "GET", "/AccessToken/app?skip=0&take=5", 200)
                    .header("authorization", format!("Bearer {secret}"))
                    .documented_as(LIST),
                bare("list, negative skip", "GET", "/AccessToken/app?skip=-1", 400)
                    .header("authorization", admin.clone())
                    .documented_as(LIST),
                bare("list without credentials", "GET", "/AccessToken/app", 401).documented_as(LIST),
                bare("list, wrong password", "GET", "/AccessToken/app", 401)
                    .header("authorization", basic_auth("admin", "wrong"))
                    .documented_as(LIST),
                bare("list another's tokens", "GET", leaked(format!("/AccessToken/app?userId={admin_id}")), 403)
                    .header("authorization", alice.clone())
                    .documented_as(LIST),
                bare("list with a token lacking tokens:read", "GET", "/AccessToken/app", 403)
                    .header("authorization", narrow.clone())
                    .documented_as(LIST),
                bare("list an unknown user's tokens", "GET", "/AccessToken/app?userId=99999", 404)
                    .header("authorization", admin.clone())
                    .documented_as(LIST),
                // Create.
                Scenario::new("mint, negative expiry", "POST", "/AccessToken/app", &json!({ "expireInDays": -1 }), 400)
                    .header("authorization", admin.clone())
                    .documented_as(LIST),
                Scenario::new(
                    "mint, unknown permission",
                    "POST",
                    "/AccessToken/app",
                    &json!({ "permissions": "root" }),
                    400,
                )
                .header("authorization", admin.clone())
                .documented_as(LIST),
                Scenario::new("mint without credentials", "POST", "/AccessToken/app", &json!({}), 401)
                    .documented_as(LIST),
                Scenario::new("mint for another user", "POST", "/AccessToken/app", &json!({ "userID": admin_id }), 403)
                    .header("authorization", alice.clone())
                    .documented_as(LIST),
                Scenario::new("mint for nobody", "POST", "/AccessToken/app", &json!({ "userID": 99999 }), 404)
                    .header("authorization", admin.clone())
                    .documented_as(LIST),
                Scenario::raw("mint with a body over 1 MiB", "POST", "/AccessToken/app", huge, 413)
                    .header("authorization", admin.clone())
                    .documented_as(LIST),
                // Update.
                Scenario::new("update", "PUT", item, &json!({ "title": "t", "enable": true }), 200)
                    .header("authorization", admin.clone())
                    .documented_as(ITEM),
                Scenario::new("update, enable not a boolean", "PUT", item, &json!({ "enable": "maybe" }), 400)
                    .header("authorization", admin.clone())
                    .documented_as(ITEM),
                Scenario::new("update without credentials", "PUT", item, &json!({}), 401).documented_as(ITEM),
                Scenario::new("update another's token", "PUT", item, &json!({ "enable": false }), 403)
                    .header("authorization", alice.clone())
                    .documented_as(ITEM),
                Scenario::new(
                    "update under another appKey",
                    "PUT",
                    leaked(format!("/AccessToken/other/{id}")),
                    &json!({}),
                    404,
                )
                .header("authorization", admin.clone())
                .documented_as(ITEM),
                // Delete.
                bare("delete, id not an integer", "DELETE", "/AccessToken/app/abc", 400)
                    .header("authorization", admin.clone())
                    .documented_as(ITEM),
                bare("delete without credentials", "DELETE", item, 401).documented_as(ITEM),
                bare("delete another's token", "DELETE", item, 403)
                    .header("authorization", alice.clone())
                    .documented_as(ITEM),
                bare("delete", "DELETE", item, 200).header("authorization", admin.clone()).documented_as(ITEM),
                bare("delete again", "DELETE", item, 404).header("authorization", admin.clone()).documented_as(ITEM),
                bare("list with the deleted token", "GET", "/AccessToken/app", 401)
                    .header("authorization", format!("Bearer {secret}"))
                    .documented_as(LIST),
            ],
        )
        .await;
    check.assert_covered(Surface::AccessToken);
}

#[tokio::test(flavor = "multi_thread")]
async fn rbac_surface() {
    let server = Server::start();
    let client = server.client();
    let mut check = Conformance::load();
    let admin = basic_auth("admin", ADMIN_PASSWORD);
    support::create_user(&client, ALICE, ALICE_PASSWORD).await;
    let alice = basic_auth(ALICE, ALICE_PASSWORD);
    let admin_id = client.raw("GET", "/user/info", &[("authorization", &admin)], Vec::new()).await.json["data"]["user"]
        ["userId"]
        .as_i64()
        .unwrap();
    let roles = client.raw("GET", "/role/list", &[("authorization", &admin)], Vec::new()).await;
    let role_of = |key: &str| {
        roles.json["data"]["list"].as_array().unwrap().iter().find(|role| role["roleKey"] == key).unwrap()["roleId"]
            .as_i64()
            .unwrap()
    };
    let (admin_role, user_role, guest_role) = (role_of("admin"), role_of("user"), role_of("guest"));

    // Roles.
    let created = check
        .run(
            &client,
            Scenario::new(
                "create a role",
                "POST",
                "/role",
                &json!({ "role_name": "Operators", "role_key": "ops", "role_sort": 5, "status": "0", "remark": "r" }),
                200,
            )
            .header("authorization", admin.clone()),
        )
        .await;
    let ops = created.json["data"]["roleId"].as_i64().unwrap();
    let ops_path = leaked(format!("/role/{ops}"));
    let user_role_path = leaked(format!("/role/{user_role}"));
    const ROLE: &str = "/role/{roleId}";
    let mut scenarios = vec![
        Scenario::new("create a taken key", "POST", "/role", &json!({ "role_name": "x", "role_key": "ops" }), 409)
            .header("authorization", admin.clone()),
        Scenario::new("create without a key", "POST", "/role", &json!({ "role_name": "x" }), 400)
            .header("authorization", admin.clone()),
        Scenario::new("create without credentials", "POST", "/role", &json!({}), 401),
        Scenario::new("create as a user", "POST", "/role", &json!({ "role_name": "x", "role_key": "x" }), 403)
            .header("authorization", alice.clone()),
        bare("list roles", "GET", "/role/list?pageNum=1&pageSize=2", 200)
            .header("authorization", admin.clone())
            .documented_as("/role/list"),
        Scenario::new(
            "list roles, the seed's GET body",
            "GET",
            "/role/list",
            &json!({ "pageNum": 1, "pageSize": 10, "roleName": "", "roleKey": "", "status": "" }),
            200,
        )
        .header("authorization", admin.clone()),
        bare("list roles, bad status", "GET", "/role/list?status=7", 400)
            .header("authorization", admin.clone())
            .documented_as("/role/list"),
        bare("list roles without credentials", "GET", "/role/list", 401),
        bare("list roles as a user", "GET", "/role/list", 403).header("authorization", alice.clone()),
        bare("get a role", "GET", ops_path, 200).header("authorization", admin.clone()).documented_as(ROLE),
        bare("get a role, bad id", "GET", "/role/x", 400).header("authorization", admin.clone()).documented_as(ROLE),
        bare("get a role without credentials", "GET", ops_path, 401).documented_as(ROLE),
        bare("get a role as a user", "GET", ops_path, 403).header("authorization", alice.clone()).documented_as(ROLE),
        bare("get an unknown role", "GET", "/role/99999", 404)
            .header("authorization", admin.clone())
            .documented_as(ROLE),
        Scenario::new(
            "change a role",
            "PUT",
            ops_path,
            &json!({ "role_name": "Ops", "permissions": ["sessions:read"] }),
            200,
        )
        .header("authorization", admin.clone())
        .documented_as(ROLE),
        Scenario::new("change a role, bad status", "PUT", ops_path, &json!({ "status": "2" }), 400)
            .header("authorization", admin.clone())
            .documented_as(ROLE),
        Scenario::new("change a role without credentials", "PUT", ops_path, &json!({}), 401).documented_as(ROLE),
        Scenario::new("change a role as a user", "PUT", ops_path, &json!({}), 403)
            .header("authorization", alice.clone())
            .documented_as(ROLE),
        Scenario::new("change an unknown role", "PUT", "/role/99999", &json!({}), 404)
            .header("authorization", admin.clone())
            .documented_as(ROLE),
        Scenario::new("rename a built-in role's key", "PUT", user_role_path, &json!({ "role_key": "member" }), 409)
            .header("authorization", admin.clone())
            .documented_as(ROLE),
        bare("delete a role, bad id", "DELETE", "/role/x", 400)
            .header("authorization", admin.clone())
            .documented_as(ROLE),
        bare("delete a role without credentials", "DELETE", ops_path, 401).documented_as(ROLE),
        bare("delete a role as a user", "DELETE", ops_path, 403)
            .header("authorization", alice.clone())
            .documented_as(ROLE),
        bare("delete a built-in role", "DELETE", user_role_path, 409)
            .header("authorization", admin.clone())
            .documented_as(ROLE),
    ];

    // Permissions.
    let perm = |query: String| leaked(format!("/perm?{query}"));
    scenarios.extend([
        bare("a role's permissions", "GET", perm(format!("roleId={user_role}")), 200)
            .header("authorization", admin.clone())
            .documented_as("/perm"),
        bare("one's own permissions", "GET", "/perm", 200).header("authorization", alice.clone()),
        bare("permissions, bad roleId", "GET", "/perm?roleId=x", 400)
            .header("authorization", admin.clone())
            .documented_as("/perm"),
        bare("permissions without credentials", "GET", "/perm", 401),
        bare("a role's permissions as a user", "GET", perm(format!("roleId={user_role}")), 403)
            .header("authorization", alice.clone())
            .documented_as("/perm"),
        bare("an unknown role's permissions", "GET", "/perm?roleId=99999", 404)
            .header("authorization", admin.clone())
            .documented_as("/perm"),
        bare(
            "set permissions",
            "PUT",
            perm(format!("roleId={ops}&permissions=sessions:read&permissions=tokens:read")),
            200,
        )
        .header("authorization", admin.clone())
        .documented_as("/perm"),
        bare("set an unknown permission", "PUT", perm(format!("roleId={ops}&permissions=root")), 400)
            .header("authorization", admin.clone())
            .documented_as("/perm"),
        bare("set permissions without credentials", "PUT", perm(format!("roleId={ops}&permissions=")), 401)
            .documented_as("/perm"),
        bare("set permissions as a user", "PUT", perm(format!("roleId={ops}&permissions=")), 403)
            .header("authorization", alice.clone())
            .documented_as("/perm"),
        bare("set an unknown role's permissions", "PUT", "/perm?roleId=99999&permissions=", 404)
            .header("authorization", admin.clone())
            .documented_as("/perm"),
        bare("narrow the admin role", "PUT", perm(format!("roleId={admin_role}&permissions=sessions:read")), 409)
            .header("authorization", admin.clone())
            .documented_as("/perm"),
        bare("every permission", "GET", "/perm/list", 200).header("authorization", admin.clone()),
        bare("every permission without credentials", "GET", "/perm/list", 401),
        bare("every permission as a user", "GET", "/perm/list", 403).header("authorization", alice.clone()),
    ]);

    // Users.
    let created = check
        .run(
            &client,
            Scenario::new(
                "create a user",
                "POST",
                "/user",
                &json!({ "username": "carol", "password": "carol-password-1" }),
                201,
            )
            .header("authorization", admin.clone()),
        )
        .await;
    let carol = created.json["data"]["id"].as_i64().unwrap();
    let carol_path = leaked(format!("/user/{carol}"));
    let admin_path = leaked(format!("/user/{admin_id}"));
    let carol_bind = leaked(format!("/user/{carol}/bind"));
    let carol_auth = basic_auth("carol", "carol-password-1");
    const USER: &str = "/user/{uid}";
    const BIND: &str = "/user/{uid}/bind";
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    scenarios.extend([
        Scenario::new("create a user without a password", "POST", "/user", &json!({ "username": "x" }), 400)
            .header("authorization", admin.clone()),
        Scenario::new(
            "create a user without credentials",
            "POST",
            "/user",
            &json!({ "username": "x", "password": "y" }),
            401,
        ),
        Scenario::new("create a user as a user", "POST", "/user", &json!({ "username": "x", "password": "y" }), 403)
            .header("authorization", alice.clone()),
        Scenario::new(
            "create a taken user",
            "POST",
            "/user",
            &json!({ "username": "carol", "password": "carol-pw-again" }),
            400,
        )
        .header("authorization", admin.clone()),
        Scenario::raw("create a user with a body over 1 MiB", "POST", "/user", huge, 413)
            .header("authorization", admin.clone()),
        bare("own info", "GET", "/user/info", 200).header("authorization", carol_auth.clone()),
        bare("info without credentials", "GET", "/user/info", 401),
        bare("another's info as a user", "GET", "/user/info?username=admin", 403)
            .header("authorization", carol_auth.clone())
            .documented_as("/user/info"),
        bare("an unknown user's info", "GET", "/user/info?username=nobody", 404)
            .header("authorization", admin.clone())
            .documented_as("/user/info"),
        bare("get oneself", "GET", carol_path, 200).header("authorization", carol_auth.clone()).documented_as(USER),
        bare("get a user, bad id", "GET", "/user/x", 400).header("authorization", admin.clone()).documented_as(USER),
        bare("get a user without credentials", "GET", carol_path, 401).documented_as(USER),
        bare("get another user as a user", "GET", admin_path, 403)
            .header("authorization", carol_auth.clone())
            .documented_as(USER),
        bare("get an unknown user", "GET", "/user/99999", 404)
            .header("authorization", admin.clone())
            .documented_as(USER),
        Scenario::new("change one's profile", "PUT", carol_path, &json!({ "nickname": "Caz", "password": "" }), 200)
            .header("authorization", carol_auth.clone())
            .documented_as(USER),
        Scenario::new("change a user, bad status", "PUT", carol_path, &json!({ "status": "x" }), 400)
            .header("authorization", admin.clone())
            .documented_as(USER),
        Scenario::new("change a user without credentials", "PUT", carol_path, &json!({}), 401).documented_as(USER),
        Scenario::new("disable oneself as a user", "PUT", carol_path, &json!({ "status": "1" }), 403)
            .header("authorization", carol_auth.clone())
            .documented_as(USER),
        Scenario::new("change an unknown user", "PUT", "/user/99999", &json!({}), 404)
            .header("authorization", admin.clone())
            .documented_as(USER),
        Scenario::new("disable the last administrator", "PUT", admin_path, &json!({ "status": "1" }), 409)
            .header("authorization", admin.clone())
            .documented_as(USER),
        Scenario::new("bind roles", "POST", carol_bind, &json!([guest_role, user_role]), 200)
            .header("authorization", admin.clone())
            .documented_as(BIND),
        Scenario::new("bind, not an array", "POST", carol_bind, &json!("x"), 400)
            .header("authorization", admin.clone())
            .documented_as(BIND),
        Scenario::new("bind without credentials", "POST", carol_bind, &json!([user_role]), 401).documented_as(BIND),
        Scenario::new("bind as a user", "POST", carol_bind, &json!([admin_role]), 403)
            .header("authorization", carol_auth.clone())
            .documented_as(BIND),
        Scenario::new("bind to an unknown user", "POST", "/user/99999/bind", &json!([user_role]), 404)
            .header("authorization", admin.clone())
            .documented_as(BIND),
        Scenario::new("bind an unknown role", "POST", carol_bind, &json!([99999]), 400)
            .header("authorization", admin.clone())
            .documented_as(BIND),
        Scenario::new(
            "take the admin role from the last admin",
            "POST",
            leaked(format!("/user/{admin_id}/bind")),
            &json!([user_role]),
            409,
        )
        .header("authorization", admin.clone())
        .documented_as(BIND),
        bare("delete a user, bad id", "DELETE", "/user/x", 400)
            .header("authorization", admin.clone())
            .documented_as(USER),
        bare("delete a user without credentials", "DELETE", carol_path, 401).documented_as(USER),
        bare("delete a user as a user", "DELETE", admin_path, 403)
            .header("authorization", carol_auth.clone())
            .documented_as(USER),
        bare("delete the last administrator", "DELETE", admin_path, 409)
            .header("authorization", admin.clone())
            .documented_as(USER),
        bare("delete a user", "DELETE", carol_path, 200).header("authorization", admin.clone()).documented_as(USER),
        bare("delete a user again", "DELETE", carol_path, 404)
            .header("authorization", admin.clone())
            .documented_as(USER),
        bare("get oneself after deletion", "GET", carol_path, 401)
            .header("authorization", carol_auth.clone())
            .documented_as(USER),
        // Last: the custom role goes.
        bare("delete a role", "DELETE", ops_path, 200).header("authorization", admin.clone()).documented_as(ROLE),
        bare("delete a role again", "DELETE", ops_path, 404).header("authorization", admin.clone()).documented_as(ROLE),
    ]);
    check.run_all(&client, scenarios).await;
    check.assert_covered(Surface::Rbac);
}

// ---------------------------------------------------------------------------------------------
// The alist surfaces (seeds 001 and 003).

/// Every (method, path) of the alist surfaces, and whether it needs credentials.
const ALIST_CALLS: &[(&str, &str, bool)] = &[
    ("POST", "/api/auth/login", false),
    ("POST", "/api/auth/login/hash", false),
    ("POST", "/api/auth/2fa/generate", true),
    ("POST", "/api/auth/2fa/verify", true),
    ("POST", "/api/auth/2fa/cancel", true),
    ("GET", "/api/me", true),
    ("GET", "/api/me/sshkey/list", true),
    ("POST", "/api/me/sshkey/add", true),
    ("POST", "/api/me/sshkey/delete", true),
    ("GET", "/api/admin/user/list", true),
    ("GET", "/api/admin/user/get", true),
    ("POST", "/api/admin/user/create", true),
    ("POST", "/api/admin/user/update", true),
    ("POST", "/api/admin/user/cancel_2fa", true),
    ("POST", "/api/admin/user/delete", true),
    ("POST", "/api/admin/user/del_cache", true),
    ("GET", "/api/audit", true),
];

/// A valid OpenSSH public key (generated with `ssh-keygen -t ed25519 -C test`).
const ALIST_SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMh5Vq0f1CsnHQ1vPL1Aqjgri5UJpvlb1Yi7n7nVGhn5 test";

/// A request path with a query string, for a scenario (which holds `&'static str`s).
fn alist_path(path: String) -> &'static str {
    Box::leak(path.into_boxed_str())
}

/// The RFC 6238 code (HMAC-SHA-1, 6 digits) of a base32 `secret` for time step `step`.
fn alist_totp(secret: &str, step: u64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut buffer, mut key) = (0u32, 0u64, Vec::new());
    for byte in secret.bytes() {
        buffer = (buffer << 5) | ALPHABET.iter().position(|&c| c == byte).expect("base32") as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            key.push((buffer >> bits) as u8);
        }
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let number = u32::from_be_bytes([hash[offset] & 0x7f, hash[offset + 1], hash[offset + 2], hash[offset + 3]]);
    format!("{:06}", number % 1_000_000)
}

#[tokio::test(flavor = "multi_thread")]
async fn alist_surface() {
    use sha2::Digest;

    let server = Server::start();
    let client = server.client();
    let mut check = Conformance::load();
    // A scenario of `method path`, with `authorization` unless it is empty, and a JSON body.
    let call =
        |name: &str, method: &'static str, path: &'static str, authorization: &str, body: Option<Value>, expect| {
            let bytes = body.map(|body| serde_json::to_vec(&body).unwrap()).unwrap_or_default();
            let scenario = Scenario::raw(name, method, path, bytes, expect);
            let scenario = match path.split_once('?') {
                Some((documented, _)) => scenario.documented_as(alist_path(documented.to_owned())),
                None => scenario,
            };
            if authorization.is_empty() { scenario } else { scenario.header("authorization", authorization) }
        };
    let login_body = |username: &str, password: &str| Some(json!({ "username": username, "password": password }));

    // Setup, checked like every other request.
    let admin_login = check
        .run(&client, call("admin logs in", "POST", "/api/auth/login", "", login_body("admin", ADMIN_PASSWORD), 200))
        .await;
    let admin_jwt = admin_login.json["data"]["token"].as_str().unwrap().to_owned();
    let alice = json!({ "username": ALICE, "password": ALICE_PASSWORD, "role": 0, "base_path": "/", "permission": 0 });
    check
        .run(&client, call("create alice", "POST", "/api/admin/user/create", &admin_jwt, Some(alice.clone()), 200))
        .await;
    let bob = json!({ "username": "bob", "password": "bob-password-1" });
    check.run(&client, call("create bob", "POST", "/api/admin/user/create", &admin_jwt, Some(bob), 200)).await;
    let alice_login = check
        .run(&client, call("alice logs in", "POST", "/api/auth/login", "", login_body(ALICE, ALICE_PASSWORD), 200))
        .await;
    let alice_jwt = format!("Bearer {}", alice_login.json["data"]["token"].as_str().unwrap());
    let users = check.run(&client, call("list users", "GET", "/api/admin/user/list", &admin_jwt, None, 200)).await;
    let id_of = |name: &str| {
        users.json["data"]["content"].as_array().unwrap().iter().find(|user| user["username"] == name).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (admin_id, alice_id, bob_id) = (id_of("admin"), id_of(ALICE), id_of("bob"));
    let digest = sha2::Sha256::digest(format!("{ADMIN_PASSWORD}-https://github.com/alist-org/alist").as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>();

    // Two-factor authentication for alice, with a code computed here.
    let enrollment =
        check.run(&client, call("generate 2FA", "POST", "/api/auth/2fa/generate", &alice_jwt, None, 200)).await;
    let secret = enrollment.json["data"]["secret"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = alist_totp(&secret, now / 30);
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|candidate| (0..3).all(|offset| alist_totp(&secret, now / 30 + offset - 1) != *candidate))
        .unwrap();
    let verify = |code: &str| Some(json!({ "code": code, "secret": secret }));
    check
        .run(&client, call("verify a wrong code", "POST", "/api/auth/2fa/verify", &alice_jwt, verify(wrong), 400))
        .await;
    check.run(&client, call("verify", "POST", "/api/auth/2fa/verify", &alice_jwt, verify(&code), 200)).await;
    let next_code = alist_totp(&secret, now / 30 + 1);
    let cancel = |code: &str| Some(json!({ "code": code }));

    let admin_path = |path: &str, query: String| alist_path(format!("/api/admin/user/{path}?{query}"));
    let update = |body: Value| Some(body);
    let mut scenarios = vec![
        // Logins.
        call("log in with bad JSON", "POST", "/api/auth/login", "", None, 400),
        call("log in with a wrong password", "POST", "/api/auth/login", "", login_body("admin", "no"), 401),
        call("log in without the 2FA code", "POST", "/api/auth/login", "", login_body(ALICE, ALICE_PASSWORD), 401),
        call("log in with a digest", "POST", "/api/auth/login/hash", "", login_body("admin", &digest), 200),
        call("log in with a digest, no password", "POST", "/api/auth/login/hash", "", login_body("admin", ""), 400),
        call("log in with a wrong digest", "POST", "/api/auth/login/hash", "", login_body("admin", "00"), 401),
        // Two-factor authentication, already on.
        call("generate 2FA again", "POST", "/api/auth/2fa/generate", &alice_jwt, None, 400),
        // The caller and its keys.
        call("me", "GET", "/api/me", &admin_jwt, None, 200),
        call("me with Bearer", "GET", "/api/me", &alice_jwt, None, 200),
        call(
            "add a key",
            "POST",
            "/api/me/sshkey/add",
            &alice_jwt,
            Some(json!({ "title": "t", "key": ALIST_SSH_KEY })),
            200,
        ),
        call(
            "add it again",
            "POST",
            "/api/me/sshkey/add",
            &alice_jwt,
            Some(json!({ "title": "t", "key": ALIST_SSH_KEY })),
            409,
        ),
        call(
            "add a malformed key",
            "POST",
            "/api/me/sshkey/add",
            &alice_jwt,
            Some(json!({ "title": "t", "key": "ssh-rsa AAAA" })),
            400,
        ),
        call("delete a key without id", "POST", "/api/me/sshkey/delete", &alice_jwt, None, 400),
        call("delete an unknown key", "POST", "/api/me/sshkey/delete?id=999999", &alice_jwt, None, 404),
        // Users.
        call("list users as a user", "GET", "/api/admin/user/list", &alice_jwt, None, 403),
        call("list page 0", "GET", "/api/admin/user/list?page=0", &admin_jwt, None, 400),
        call("list a page", "GET", "/api/admin/user/list?page=1&per_page=2", &admin_jwt, None, 200),
        call("get", "GET", admin_path("get", format!("id={alice_id}")), &admin_jwt, None, 200),
        call("get without id", "GET", "/api/admin/user/get", &admin_jwt, None, 400),
        call("get unknown", "GET", "/api/admin/user/get?id=999999", &admin_jwt, None, 404),
        call("get as a user", "GET", admin_path("get", format!("id={admin_id}")), &alice_jwt, None, 403),
        call("create a duplicate", "POST", "/api/admin/user/create", &admin_jwt, Some(alice.clone()), 409),
        call(
            "create, bad role",
            "POST",
            "/api/admin/user/create",
            &admin_jwt,
            Some(json!({ "username": "c", "password": "c-password-1", "role": 5 })),
            400,
        ),
        call(
            "create as a user",
            "POST",
            "/api/admin/user/create",
            &alice_jwt,
            Some(json!({ "username": "c", "password": "p" })),
            403,
        ),
        call(
            "update",
            "POST",
            "/api/admin/user/update",
            &admin_jwt,
            update(json!({ "id": alice_id, "base_path": "/home" })),
            200,
        ),
        call("update, no id", "POST", "/api/admin/user/update", &admin_jwt, update(json!({ "base_path": "/" })), 400),
        call("update unknown", "POST", "/api/admin/user/update", &admin_jwt, update(json!({ "id": 999999 })), 404),
        call(
            "update to a taken name",
            "POST",
            "/api/admin/user/update",
            &admin_jwt,
            update(json!({ "id": alice_id, "username": "admin" })),
            409,
        ),
        call(
            "update as a user",
            "POST",
            "/api/admin/user/update",
            &alice_jwt,
            update(json!({ "id": alice_id, "role": 2 })),
            403,
        ),
        // alice turns her own 2FA off with the next code (the enrolment's step is used up).
        call("turn 2FA off without a code", "POST", "/api/auth/2fa/cancel", &alice_jwt, Some(json!({})), 400),
        call("turn 2FA off with a wrong code", "POST", "/api/auth/2fa/cancel", &alice_jwt, cancel(wrong), 400),
        call("turn 2FA off", "POST", "/api/auth/2fa/cancel", &alice_jwt, cancel(&next_code), 200),
        call("turn 2FA off again", "POST", "/api/auth/2fa/cancel", &alice_jwt, cancel(&next_code), 400),
        call("cancel 2FA", "POST", admin_path("cancel_2fa", format!("id={alice_id}")), &admin_jwt, None, 200),
        call("cancel 2FA without id", "POST", "/api/admin/user/cancel_2fa", &admin_jwt, None, 400),
        call("cancel 2FA of nobody", "POST", "/api/admin/user/cancel_2fa?id=999999", &admin_jwt, None, 404),
        call("cancel 2FA as a user", "POST", admin_path("cancel_2fa", format!("id={alice_id}")), &alice_jwt, None, 403),
        call(
            "drop a cache",
            "POST",
            alist_path(format!("/api/admin/user/del_cache?username={ALICE}")),
            &admin_jwt,
            None,
            200,
        ),
        call("drop a cache, no name", "POST", "/api/admin/user/del_cache", &admin_jwt, None, 400),
        call("drop nobody's cache", "POST", "/api/admin/user/del_cache?username=nobody", &admin_jwt, None, 404),
        call("drop a cache as a user", "POST", "/api/admin/user/del_cache?username=admin", &alice_jwt, None, 403),
        call("delete as a user", "POST", admin_path("delete", format!("id={bob_id}")), &alice_jwt, None, 403),
        call("delete", "POST", admin_path("delete", format!("id={bob_id}")), &admin_jwt, None, 200),
        call("delete again", "POST", admin_path("delete", format!("id={bob_id}")), &admin_jwt, None, 404),
        call("delete without id", "POST", "/api/admin/user/delete", &admin_jwt, None, 400),
        // The audit log.
        call("read the audit log", "GET", "/api/audit", &admin_jwt, None, 200),
        call("read a page of logins", "GET", "/api/audit?kind=login&per_page=2&page=2", &admin_jwt, None, 200),
        call("read the audit log as a user", "GET", "/api/audit", &alice_jwt, None, 403),
        call("read an unknown kind", "GET", "/api/audit?kind=nonsense", &admin_jwt, None, 400),
        call("read a page too large", "GET", "/api/audit?per_page=501", &admin_jwt, None, 400),
        call(
            "delete the last administrator",
            "POST",
            admin_path("delete", format!("id={admin_id}")),
            &admin_jwt,
            None,
            409,
        ),
    ];
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    for &(method, path, authenticated) in ALIST_CALLS {
        if authenticated {
            scenarios.push(call(&format!("{path} without credentials"), method, path, "", None, 401));
            scenarios.push(call(
                &format!("{path} with a revoked JWT"),
                method,
                path,
                "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
                None,
                401,
            ));
        }
        let mut oversized = call(&format!("{path} with a body over 1 MiB"), method, path, &admin_jwt, None, 413);
        oversized.body = huge.clone();
        scenarios.push(oversized);
    }
    check.run_all(&client, scenarios).await;

    // Keys, listed and deleted.
    let keys = check.run(&client, call("list keys", "GET", "/api/me/sshkey/list", &alice_jwt, None, 200)).await;
    let key_id = keys.json["data"]["content"][0]["id"].as_i64().unwrap();
    let delete_key = alist_path(format!("/api/me/sshkey/delete?id={key_id}"));
    check.run(&client, call("delete a key", "POST", delete_key, &alice_jwt, None, 200)).await;

    // Last: lock the loopback address out of password logins, then every route refuses a
    // password with 429 (tokens and JWTs still work).
    for _ in 0..20 {
        let reply =
            client.json("POST", "/api/auth/login", &[], &json!({ "username": "admin", "password": "no" })).await;
        if reply.status == 429 {
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    let basic = format!("Basic {}", STANDARD.encode(format!("admin:{ADMIN_PASSWORD}")));
    let mut locked = Vec::new();
    for &(method, path, authenticated) in ALIST_CALLS {
        let name = format!("{path} while locked out");
        locked.push(if authenticated {
            call(&name, method, path, &basic, None, 429)
        } else {
            let body = if path.ends_with("/hash") { &digest } else { ADMIN_PASSWORD };
            call(&name, method, path, "", login_body("admin", body), 429)
        });
    }
    locked.push(call("me with a JWT while locked out", "GET", "/api/me", &admin_jwt, None, 200));
    check.run_all(&client, locked).await;

    check.assert_covered(Surface::Alist);
    eprintln!(
        "alist: {} scenarios reached {} documented (path, operation, status)",
        check.scenarios,
        check.covered.len()
    );
}

/// Starts a live shell as `authorization` over the native framing and returns its id, with the
/// connection that keeps it attached.
async fn live_shell(
    server: &Server,
    authorization: &str,
) -> (String, tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/bash", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "wssh.v1".parse().unwrap());
    request.headers_mut().insert("authorization", authorization.parse().unwrap());
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await.expect("a native shell");
    socket.send(Message::Binary(vec![1, 0, 80, 0, 24].into())).await.unwrap();
    loop {
        if let Some(Ok(Message::Binary(frame))) = socket.next().await
            && frame[0] == 0x04
        {
            let hello: Value = serde_json::from_slice(&frame[1..]).unwrap();
            return (hello["shell"].as_str().unwrap().to_owned(), socket);
        }
    }
}

#[tokio::test]
async fn shells_surface() {
    let server = Server::start();
    let client = server.client();
    let mut check = Conformance::load();
    let admin = basic_auth("admin", ADMIN_PASSWORD);
    support::create_user(&client, ALICE, ALICE_PASSWORD).await;
    let alice = basic_auth(ALICE, ALICE_PASSWORD);
    let guest = guest_user(&client).await;
    let (id, _attached) = live_shell(&server, &admin).await;
    let (doomed, _doomed_attached) = live_shell(&server, &admin).await;
    let with = |scenario: Scenario, authorization: &str| scenario.header("authorization", authorization.to_owned());
    let shell = leaked(format!("/api/shells/{id}"));
    let shares = leaked(format!("/api/shells/{id}/shares"));
    let as_shell = "/api/shells/{id}";
    let as_shares = "/api/shells/{id}/shares";
    let as_share = "/api/shells/{id}/shares/{share}";

    check
        .run_all(
            &client,
            vec![
                with(bare("list shells", "GET", "/api/shells", 200), &admin),
                with(bare("alice sees none", "GET", "/api/shells", 200), &alice),
                bare("list without credentials", "GET", "/api/shells", 401),
                with(bare("a guest may not", "GET", "/api/shells", 403), &guest),
                with(
                    Scenario::new("share", "POST", shares, &json!({ "mode": "control", "expires_in": 60 }), 201),
                    &admin,
                )
                .documented_as(as_shares),
                with(Scenario::new("share, defaults", "POST", shares, &json!({}), 201), &admin)
                    .documented_as(as_shares),
                with(Scenario::new("bad mode", "POST", shares, &json!({ "mode": "boss" }), 400), &admin)
                    .documented_as(as_shares),
                with(Scenario::raw("not JSON", "POST", shares, b"{".to_vec(), 400), &admin).documented_as(as_shares),
                with(Scenario::new("share as alice", "POST", shares, &json!({}), 404), &alice).documented_as(as_shares),
                with(Scenario::new("share as a guest", "POST", shares, &json!({}), 403), &guest)
                    .documented_as(as_shares),
                Scenario::new("share without credentials", "POST", shares, &json!({}), 401).documented_as(as_shares),
                with(Scenario::raw("too large", "POST", shares, vec![b' '; MAX_BODY_BYTES + 1], 413), &admin)
                    .documented_as(as_shares),
                with(Scenario::new("no such shell", "POST", "/api/shells/nope/shares", &json!({}), 404), &admin)
                    .documented_as(as_shares),
                with(bare("list shares", "GET", shares, 200), &admin).documented_as(as_shares),
                with(bare("alice lists shares", "GET", shares, 404), &alice).documented_as(as_shares),
                with(bare("a guest lists shares", "GET", shares, 403), &guest).documented_as(as_shares),
                bare("list shares without credentials", "GET", shares, 401).documented_as(as_shares),
            ],
        )
        .await;
    // As many share links as allowed, then one more.
    for _ in 0..30 {
        check
            .run(
                &client,
                with(Scenario::new("share", "POST", shares, &json!({}), 201), &admin).documented_as(as_shares),
            )
            .await;
    }
    check
        .run(
            &client,
            with(Scenario::new("one too many", "POST", shares, &json!({}), 429), &admin).documented_as(as_shares),
        )
        .await;
    let listed = client.raw("GET", shares, &[("authorization", &admin)], Vec::new()).await;
    let share_id = listed.json["shares"][0]["id"].as_str().unwrap().to_owned();
    let share = leaked(format!("/api/shells/{id}/shares/{share_id}"));
    check
        .run_all(
            &client,
            vec![
                with(bare("revoke as alice", "DELETE", share, 404), &alice).documented_as(as_share),
                with(bare("revoke as a guest", "DELETE", share, 403), &guest).documented_as(as_share),
                bare("revoke without credentials", "DELETE", share, 401).documented_as(as_share),
                with(bare("revoke", "DELETE", share, 204), &admin).documented_as(as_share),
                with(bare("revoke again", "DELETE", share, 404), &admin).documented_as(as_share),
                with(bare("end as alice", "DELETE", shell, 404), &alice).documented_as(as_shell),
                with(bare("end as a guest", "DELETE", shell, 403), &guest).documented_as(as_shell),
                bare("end without credentials", "DELETE", shell, 401).documented_as(as_shell),
                with(bare("end", "DELETE", leaked(format!("/api/shells/{doomed}")), 204), &admin)
                    .documented_as(as_shell),
                with(bare("end no such shell", "DELETE", "/api/shells/nope", 404), &admin).documented_as(as_shell),
            ],
        )
        .await;
    check.assert_covered(Surface::Shells);
}

#[tokio::test]
async fn recordings_surface() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let mut config = support::default_config();
    config["record_all_shells"] = json!(true);
    let server = Server::start_with(config);
    let client = server.client();
    let mut check = Conformance::load();
    let admin = basic_auth("admin", ADMIN_PASSWORD);
    support::create_user(&client, ALICE, ALICE_PASSWORD).await;
    let alice = basic_auth(ALICE, ALICE_PASSWORD);
    let (id, mut socket) = live_shell(&server, &admin).await;
    socket.send(Message::Binary(b"\0exit\n".to_vec().into())).await.unwrap();
    while let Some(Ok(message)) = socket.next().await {
        if matches!(message, Message::Close(_)) {
            break;
        }
    }
    // The recording ends on a blocking thread; wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = client.raw("GET", "/api/recordings", &[("authorization", &admin)], Vec::new()).await;
        if !reply.json["data"]["content"][0]["ended_at"].is_null() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the recording did not end: {}", reply.text);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let with = |scenario: Scenario, authorization: &str| scenario.header("authorization", authorization.to_owned());
    let one = leaked(format!("/api/recordings/{id}"));
    let as_one = "/api/recordings/{id}";
    check
        .run_all(
            &client,
            vec![
                with(bare("list recordings", "GET", "/api/recordings", 200), &admin),
                with(bare("alice lists her own", "GET", "/api/recordings", 200), &alice),
                with(bare("a bad page", "GET", "/api/recordings?per_page=0", 400), &admin)
                    .documented_as("/api/recordings"),
                with(bare("alice asks for the admin's", "GET", "/api/recordings?user=admin", 403), &alice)
                    .documented_as("/api/recordings"),
                bare("list without credentials", "GET", "/api/recordings", 401),
                with(bare("play", "GET", one, 200), &admin).documented_as(as_one),
                with(bare("alice plays the admin's", "GET", one, 404), &alice).documented_as(as_one),
                bare("play without credentials", "GET", one, 401).documented_as(as_one),
                with(bare("alice deletes", "DELETE", one, 403), &alice).documented_as(as_one),
                bare("delete without credentials", "DELETE", one, 401).documented_as(as_one),
                with(bare("delete", "DELETE", one, 200), &admin).documented_as(as_one),
                with(bare("delete again", "DELETE", one, 404), &admin).documented_as(as_one),
            ],
        )
        .await;
    check.assert_covered(Surface::Recordings);
}
