//! Shared helpers for the integration tests: a real `wssh` process on a loopback port with
//! its own data directory, and a small HTTP client on hyper.

#![allow(dead_code, unreachable_pub)]

pub mod gows;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wssh_store_postgres::scratch::ScratchDatabase;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The password of the administrator every test server is configured with.
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// A running `wssh serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its temporary folder (config and data dir), kept for restarts.
    pub root: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// Everything it printed on standard output before listening.
    pub stdout_head: Vec<String>,
    args: Vec<String>,
    /// With `WSSH_TEST_BACKEND=postgres`: the fresh database this folder's servers share.
    database: Option<Arc<ScratchDatabase>>,
}

/// The variable that runs every test server on PostgreSQL (`postgres`) instead of SQLite,
/// each folder on a fresh database on the server named by `WSSH_TEST_DATABASE_URL`.
pub const TEST_BACKEND: &str = "WSSH_TEST_BACKEND";

/// Whether the test servers run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(TEST_BACKEND).is_ok_and(|backend| backend == "postgres")
}

/// The database of the servers started in `root`: one fresh database per folder, kept while a
/// server of that folder runs (a restart finds it again).
fn database_for(root: &Path) -> Option<Arc<ScratchDatabase>> {
    if !on_postgres() {
        return None;
    }
    static DATABASES: Mutex<Vec<(PathBuf, Weak<ScratchDatabase>)>> = Mutex::new(Vec::new());
    let mut databases = DATABASES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    databases.retain(|(_, database)| database.strong_count() > 0);
    if let Some(database) = databases.iter().find(|(folder, _)| folder == root).and_then(|(_, db)| db.upgrade()) {
        return Some(database);
    }
    let database = Arc::new(
        ScratchDatabase::from_env("wssh_it")
            .expect("WSSH_TEST_BACKEND=postgres needs WSSH_TEST_DATABASE_URL (a server tests may create databases on)"),
    );
    databases.push((root.to_owned(), Arc::downgrade(&database)));
    Some(database)
}

/// The config every test server gets unless told otherwise.
pub fn default_config() -> Value {
    json!({
        "initial_credentials": [{ "username": "admin", "password": ADMIN_PASSWORD }],
        "initial_sessions": [{ "name": "bash", "cmd": "bash", "args": ["-i"], "dir": "/tmp" }],
        "servers": [{ "port": "0", "protocol": "http" }]
    })
}

impl Server {
    /// Starts a server with [`default_config`].
    pub fn start() -> Server {
        Server::start_with(default_config())
    }

    /// Starts a server with `config` in a fresh temporary folder.
    pub fn start_with(config: Value) -> Server {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path().to_owned();
        std::fs::write(root.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let mut server = Server::spawn(&root, &["--config", "config.json", "--data-dir", "data"]);
        server._temp = Some(temp);
        server
    }

    /// Starts `wssh serve` in `root` with `args`, on a free loopback port.
    pub fn spawn(root: &Path, args: &[&str]) -> Server {
        Server::spawn_at(root, args, "127.0.0.1:0")
    }

    /// Starts `wssh serve` in `root` with `args`, listening on `listen`.
    pub fn spawn_at(root: &Path, args: &[&str], listen: &str) -> Server {
        Server::spawn_wrapped(root, args, listen, &[])
    }

    /// Starts `wssh serve` as [`Server::spawn_at`] does, through `wrapper` (a program and its
    /// arguments that runs the binary, e.g. `setpriv` to drop root) when it is not empty.
    pub fn spawn_wrapped(root: &Path, args: &[&str], listen: &str, wrapper: &[&str]) -> Server {
        let database = database_for(root);
        let mut command = match wrapper {
            [] => Command::new(env!("CARGO_BIN_EXE_wssh")),
            [program, rest @ ..] => {
                let mut command = Command::new(program);
                command.args(rest).arg(env!("CARGO_BIN_EXE_wssh"));
                command
            }
        };
        if let Some(database) = &database {
            command.env("WSSH_DATABASE", database.url());
        }
        let mut child = command
            .arg("serve")
            .args(args)
            .args(["--listen", listen])
            .current_dir(root)
            // The output pump's debug lines let tests see which output path a shell took.
            .env("RUST_LOG", "info,wssh_http::shell::output=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wssh");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut stdout_head = Vec::new();
        let addr = loop {
            let line = lines.next().expect("wssh exited before listening").unwrap();
            if let Some((_scheme, address)) = line.strip_prefix("listening on ").and_then(|url| url.split_once("://")) {
                break address.parse().unwrap();
            }
            stdout_head.push(line);
        };
        // Keep draining both pipes so the server never blocks on a full one.
        std::thread::spawn(move || for _ in lines {});
        let stderr = child.stderr.take().unwrap();
        let log = root.join("stderr.log");
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
            let _ = std::io::copy(&mut BufReader::new(stderr), &mut file);
        });
        Server {
            child: Some(child),
            addr,
            root: root.to_owned(),
            _temp: None,
            stdout_head,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            database,
        }
    }

    /// Where its database is: the PostgreSQL URL, or the SQLite file in its data directory.
    pub fn database_location(&self) -> String {
        match &self.database {
            Some(database) => database.url().to_owned(),
            None => self.root.join("data").join("wssh.db").display().to_string(),
        }
    }

    /// Runs `sqlite` on its SQLite file, or `postgres` on its PostgreSQL database, with one
    /// text parameter (`?1` / `$1`), as another process writing to the database would; the
    /// rows changed.
    pub fn execute_sql(&self, sqlite: &str, postgres: &str, parameter: &str) -> u64 {
        match &self.database {
            None => {
                let database = rusqlite::Connection::open(self.root.join("data").join("wssh.db")).unwrap();
                database.execute(sqlite, [parameter]).unwrap() as u64
            }
            Some(database) => {
                let url = database.url().to_owned();
                let (sql, parameter) = (postgres.to_owned(), parameter.to_owned());
                // The synchronous client must not run inside the test's runtime.
                std::thread::spawn(move || {
                    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    client.execute(&sql, &[&parameter]).unwrap()
                })
                .join()
                .unwrap()
            }
        }
    }

    /// Every stored row as text, when the server runs on PostgreSQL (on SQLite the rows are
    /// in the data directory's files); empty otherwise.
    pub fn postgres_rows(&self) -> Vec<u8> {
        let Some(database) = &self.database else { return Vec::new() };
        let url = database.url().to_owned();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut rows = Vec::new();
            for table in wssh_store::dump::TABLES {
                for row in client.query(&format!("SELECT t::TEXT FROM {table} AS t"), &[]).unwrap() {
                    rows.extend(row.get::<_, String>(0).into_bytes());
                }
            }
            rows
        })
        .join()
        .unwrap()
    }

    /// The stored value of a setting (such as the JWT signing key).
    pub fn setting(&self, key: &str) -> Vec<u8> {
        let sql = "SELECT value FROM settings WHERE key = ";
        match &self.database {
            None => rusqlite::Connection::open(self.root.join("data").join("wssh.db"))
                .unwrap()
                .query_row(&format!("{sql}?1"), [key], |row| row.get(0))
                .unwrap(),
            Some(database) => {
                let (url, key) = (database.url().to_owned(), key.to_owned());
                std::thread::spawn(move || {
                    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    client.query_one(&format!("{sql}$1"), &[&key]).unwrap().get(0)
                })
                .join()
                .unwrap()
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM and waits for the process.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("wssh did not exit within 5 s of SIGTERM");
    }

    /// Stops this server and starts another on the same folder and data dir.
    pub fn restart(self) -> Server {
        self.restart_listening_on("127.0.0.1:0")
    }

    /// Stops this server and starts another on the same folder, data dir and address, as an
    /// operator's restart does: clients see their connections drop and can come back.
    pub fn restart_at_the_same_address(self) -> Server {
        let addr = self.addr.to_string();
        self.restart_listening_on(&addr)
    }

    fn restart_listening_on(mut self, listen: &str) -> Server {
        assert!(self.terminate().success());
        let temp = self._temp.take();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut next = Server::spawn_at(&self.root, &args, listen);
        next._temp = temp;
        next
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("stderr.log")).unwrap_or_default()
    }

    /// A client for this server.
    pub fn client(&self) -> Client {
        Client { addr: self.addr, source: None }
    }

    /// A client whose connections come from `source` (any 127.0.0.0/8 address works on
    /// loopback), to act as another client address.
    pub fn client_from(&self, source: std::net::IpAddr) -> Client {
        Client { addr: self.addr, source: Some(source) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A response, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// A header's value as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("")
    }
}

/// A one-request-per-connection HTTP/1.1 client on hyper.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub addr: SocketAddr,
    /// The local address to connect from; the system's choice when `None`.
    pub source: Option<std::net::IpAddr>,
}

impl Client {
    /// Sends `method path` with `headers` and a raw `body`.
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let (status, headers, bytes) = self.raw_bytes(method, path, headers, body).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, text, json }
    }

    /// Sends `method path` with `headers` and a raw `body`; the status, headers and body bytes.
    pub async fn raw_bytes(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, http::HeaderMap, Vec<u8>) {
        let stream = self.connect().await;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
            .await
            .expect("response within 30 s")
            .expect("response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, headers, bytes.to_vec())
    }

    /// A TCP connection to the server, from [`Client::source`] when set.
    pub async fn connect(&self) -> tokio::net::TcpStream {
        match self.source {
            None => tokio::net::TcpStream::connect(self.addr).await.expect("connect"),
            Some(source) => {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.bind(SocketAddr::new(source, 0)).expect("bind the source address");
                socket.connect(self.addr).await.expect("connect")
            }
        }
    }

    /// Sends a JSON body.
    pub async fn json(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.raw(method, path, &all, serde_json::to_vec(body).unwrap()).await
    }

    /// POST with `x-HTTP-method-override: GET`, go_ws_sh's list call.
    pub async fn list(&self, path: &str, body: &Value) -> Reply {
        self.json("POST", path, &[("x-HTTP-method-override", "GET")], body).await
    }

    /// POST with `x-HTTP-method-override: POST`, go_ws_sh's create call.
    pub async fn create(&self, path: &str, body: &Value) -> Reply {
        self.json("POST", path, &[("x-HTTP-method-override", "POST")], body).await
    }
}

/// go_ws_sh's password `authorization` object.
pub fn password_auth(username: &str, password: &str) -> Value {
    json!({ "type": "password", "username": username, "password": password })
}

/// go_ws_sh's token `authorization` object.
pub fn token_auth(identifier: &str, token: &str) -> Value {
    json!({ "type": "token", "identifier": identifier, "token": token })
}

/// The admin's password `authorization` object.
pub fn admin() -> Value {
    password_auth("admin", ADMIN_PASSWORD)
}

/// Logs in with a password (POST /tokens) and returns (identifier, secret).
pub async fn login(client: &Client, username: &str, password: &str) -> (String, String) {
    let reply = client
        .create(
            "/tokens",
            &json!({ "authorization": password_auth(username, password), "token": { "description": "test" } }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    (
        reply.json["token"]["identifier"].as_str().unwrap().to_owned(),
        reply.json["token"]["token"].as_str().unwrap().to_owned(),
    )
}

/// Creates an ordinary user as the admin.
pub async fn create_user(client: &Client, username: &str, password: &str) {
    let reply = client
        .create(
            "/credentials",
            &json!({ "authorization": admin(), "credential": { "username": username, "password": password } }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}
