//! `wssh connect` end to end: the real binary on a real pseudo-terminal (wssh's own PTY engine)
//! against a real server, with password, prompted password and token logins, the remote
//! terminal sized from the local one, exit codes passed through, refusals reported, the local
//! terminal's modes restored after a normal exit and after SIGTERM, and TLS with go_ws_sh's
//! client-config.json.

mod support;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::termios::{LocalFlags, tcgetattr};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, default_config, login};
use wssh_pty::{PtyCommand, PtyProcess, PtyReader, PtyWriter, WindowSize};

const WSSH: &str = env!("CARGO_BIN_EXE_wssh");

/// The test config with a plain `sh` session.
fn sh_config() -> Value {
    let mut config = default_config();
    config["initial_sessions"] = json!([{ "name": "sh", "cmd": "sh", "args": [], "dir": "/tmp" }]);
    config
}

/// A program on a PTY, with everything it printed so far.
struct Terminal {
    process: PtyProcess,
    reader: PtyReader,
    writer: PtyWriter,
    seen: Vec<u8>,
}

impl Terminal {
    fn spawn(command: PtyCommand) -> Terminal {
        let process = command.spawn().expect("spawn on a PTY");
        let (reader, writer) = (process.reader(), process.writer());
        Terminal { process, reader, writer, seen: Vec::new() }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads until the output so far contains `needle`.
    async fn read_until(&mut self, needle: &str) -> String {
        let mut buffer = vec![0; 65536];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !self.text().contains(needle) {
            let read = tokio::time::timeout_at(deadline, self.reader.read(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}; got {:?}", self.text()))
                .expect("read the PTY");
            if read == 0 {
                panic!("the terminal closed before {needle:?}; got {:?}", self.text());
            }
            self.seen.extend_from_slice(&buffer[..read]);
        }
        self.text()
    }

    async fn type_text(&self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.expect("write the PTY");
    }

    /// Reads everything until the program exits; returns its exit code.
    async fn exit_code(&mut self) -> i32 {
        let mut buffer = vec![0; 65536];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.reader.read(&mut buffer)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(read)) => self.seen.extend_from_slice(&buffer[..read]),
                Err(_) => panic!("the program did not finish; got {:?}", self.text()),
            }
        }
        let status =
            tokio::time::timeout_at(deadline, self.process.wait()).await.expect("the program exits").expect("wait");
        status.code().unwrap_or_else(|| panic!("killed: {status:?}; got {:?}", self.text()))
    }
}

/// `wssh connect URL ARGS…` on a fresh PTY of `size`.
fn connect(url: &str, args: &[&str], size: WindowSize) -> PtyCommand {
    PtyCommand::new(WSSH).arg("connect").arg(url).args(args.iter().copied()).size(size).dir("/tmp")
}

#[tokio::test]
async fn a_password_login_runs_a_shell_and_passes_its_exit_code_through() {
    let server = Server::start_with(sh_config());
    let command = connect(&format!("http://{}/sh", server.addr), &["--user", "admin"], WindowSize::default())
        .env("WSSH_PASSWORD", ADMIN_PASSWORD);
    let mut terminal = Terminal::spawn(command);
    terminal.type_text("echo hi-$((6*7))\r").await;
    terminal.read_until("hi-42").await;
    terminal.type_text("exit 3\r").await;
    assert_eq!(terminal.exit_code().await, 3, "{}", terminal.text());
}

#[tokio::test]
async fn a_token_login_gets_a_remote_terminal_of_the_local_size() {
    let server = Server::start_with(sh_config());
    let (_identifier, secret) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let size = WindowSize { cols: 101, rows: 33 };
    let mut terminal = Terminal::spawn(connect(&format!("http://{}/sh", server.addr), &["--token", &secret], size));
    terminal.type_text("stty size; echo size-$((1+1))\r").await;
    let output = terminal.read_until("size-2").await;
    assert!(output.contains("33 101"), "{output}");

    // A local resize reaches the remote terminal (SIGWINCH → resize frame); asked until it
    // shows, since the signal and the frame take their time.
    terminal.process.resize(WindowSize { cols: 132, rows: 50 }).unwrap();
    let mut attempt = 0;
    while !terminal.text().contains("50 132") {
        attempt += 1;
        assert!(attempt <= 50, "the resize never arrived: {}", terminal.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
        terminal.type_text(&format!("stty size; echo resized-$(({attempt}+1000))\r")).await;
        terminal.read_until(&format!("resized-{}", attempt + 1000)).await;
    }

    terminal.type_text("exit\r").await;
    assert_eq!(terminal.exit_code().await, 0, "{}", terminal.text());
}

#[tokio::test]
async fn a_token_with_its_identifier_works_too() {
    let server = Server::start_with(sh_config());
    let (identifier, secret) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let args = ["--token", secret.as_str(), "--identifier", identifier.as_str()];
    let mut terminal = Terminal::spawn(connect(&format!("http://{}/sh", server.addr), &args, WindowSize::default()));
    terminal.type_text("exit 7\r").await;
    assert_eq!(terminal.exit_code().await, 7, "{}", terminal.text());
}

#[tokio::test]
async fn a_wrong_password_exits_1_with_the_status() {
    let server = Server::start_with(sh_config());
    let command = connect(&format!("http://{}/sh", server.addr), &["--user", "admin"], WindowSize::default())
        .env("WSSH_PASSWORD", "not-the-password");
    let mut terminal = Terminal::spawn(command);
    assert_eq!(terminal.exit_code().await, 1, "{}", terminal.text());
    let output = terminal.text();
    assert!(output.contains("401"), "{output}");
    assert_eq!(output.trim().lines().count(), 1, "one line: {output:?}");
}

#[tokio::test]
async fn a_missing_session_and_a_dead_server_exit_1() {
    let server = Server::start_with(sh_config());
    let command = connect(&format!("http://{}/nope", server.addr), &["--user", "admin"], WindowSize::default())
        .env("WSSH_PASSWORD", ADMIN_PASSWORD);
    let mut terminal = Terminal::spawn(command);
    assert_eq!(terminal.exit_code().await, 1);
    assert!(terminal.text().contains("404"), "{}", terminal.text());

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let command = connect(&format!("http://{closed}/sh"), &["--token", "wssh_x"], WindowSize::default());
    let mut terminal = Terminal::spawn(command);
    assert_eq!(terminal.exit_code().await, 1);
    assert!(terminal.text().contains("cannot connect"), "{}", terminal.text());
}

#[tokio::test]
async fn the_password_prompt_does_not_echo() {
    let server = Server::start_with(sh_config());
    let mut terminal =
        Terminal::spawn(connect(&format!("http://{}/sh", server.addr), &["--user", "admin"], WindowSize::default()));
    terminal.read_until("Password for admin: ").await;
    terminal.type_text(&format!("{ADMIN_PASSWORD}\r")).await;
    terminal.type_text("echo in-$((5*5))\r").await;
    terminal.read_until("in-25").await;
    terminal.type_text("exit\r").await;
    assert_eq!(terminal.exit_code().await, 0, "{}", terminal.text());
    assert!(!terminal.text().contains(ADMIN_PASSWORD), "the password was echoed: {}", terminal.text());
}

/// Runs `wssh connect …` from a shell script on the PTY that records the terminal's modes
/// (`stty -g`) before and after and says whether they match. `$tty` names the terminal.
const RECORD_MODES: &str = r#"
echo "tty=$(tty)"
before=$(stty -g)
"$@" </dev/tty &
pid=$!
echo "wssh-pid=$pid"
wait $pid
code=$?
if [ "$before" = "$(stty -g)" ]; then echo modes-restored; else echo modes-changed; fi
echo "exit-code=$code"
"#;

fn recorded(url: &str, args: &[&str], size: WindowSize) -> PtyCommand {
    PtyCommand::new("sh")
        .args(["-c", RECORD_MODES, "sh", WSSH, "connect", url])
        .args(args.iter().copied())
        .size(size)
        .dir("/tmp")
}

/// The value after `key=` on a line of `output`.
fn value_of<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {output:?}"))
        .trim()
}

/// Whether the terminal at `path` has echo and line editing on.
fn cooked(path: &str) -> bool {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(path)
        .unwrap_or_else(|error| panic!("open {path}: {error}"));
    let flags = tcgetattr(&tty).unwrap().local_flags;
    flags.contains(LocalFlags::ECHO | LocalFlags::ICANON)
}

#[tokio::test]
async fn raw_mode_is_on_during_the_session_and_off_after_it() {
    let server = Server::start_with(sh_config());
    let command = recorded(&format!("http://{}/sh", server.addr), &["--user", "admin"], WindowSize::default())
        .env("WSSH_PASSWORD", ADMIN_PASSWORD);
    let mut terminal = Terminal::spawn(command);
    let output = terminal.read_until("wssh-pid=").await;
    let tty = value_of(&output, "tty").to_owned();
    terminal.type_text("echo up-$((2+2))\r").await;
    terminal.read_until("up-4").await;
    assert!(!cooked(&tty), "raw mode during the session");
    terminal.type_text("exit 9\r").await;
    terminal.read_until("exit-code=").await;
    assert_eq!(terminal.exit_code().await, 0);
    let output = terminal.text();
    assert_eq!(value_of(&output, "exit-code"), "9", "{output}");
    assert!(output.contains("modes-restored"), "{output}");
    assert!(cooked(&tty) || !Path::new(&tty).exists(), "cooked again");
}

#[tokio::test]
async fn sigterm_ends_the_session_and_restores_the_terminal() {
    let server = Server::start_with(sh_config());
    let (_identifier, secret) = login(&server.client(), "admin", ADMIN_PASSWORD).await;
    let mut terminal =
        Terminal::spawn(recorded(&format!("http://{}/sh", server.addr), &["--token", &secret], WindowSize::default()));
    let output = terminal.read_until("wssh-pid=").await;
    let pid = value_of(&output, "wssh-pid").to_owned();
    terminal.type_text("echo up-$((3+3))\r").await;
    terminal.read_until("up-6").await;
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    terminal.read_until("exit-code=").await;
    terminal.exit_code().await;
    let output = terminal.text();
    assert_eq!(value_of(&output, "exit-code"), "143", "{output}");
    assert!(output.contains("modes-restored"), "{output}");
}

/// A self-signed certificate for localhost and 127.0.0.1 in `dir`.
fn make_certificate(dir: &Path) {
    let generated = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
}

/// Runs `wssh connect ARGS…` with piped standard input (not a terminal); returns the exit
/// code, standard output and standard error.
fn run_piped(dir: &Path, args: &[&str], env: &[(&str, &str)], input: &str) -> (i32, String, String) {
    let mut child = Command::new(WSSH)
        .arg("connect")
        .args(args)
        .env_remove("WSSH_PASSWORD")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wssh connect");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().expect("exited"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tls_with_a_go_ws_sh_client_config() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    make_certificate(root);
    let mut config = sh_config();
    config["servers"] = json!([{ "port": "0", "protocol": "https", "cert": "cert.pem", "key": "key.pem" }]);
    std::fs::write(root.join("config.json"), config.to_string()).unwrap();
    let server = Server::spawn(root, &["--config", "config.json", "--data-dir", "data"]);
    let port = server.addr.port();
    let client_config = json!({
        "credentials": { "type": "password", "username": "admin", "password": ADMIN_PASSWORD },
        "sessions": { "name": "sh" },
        "servers": { "port": port.to_string(), "protocol": "https", "ca": "cert.pem", "insecure": false,
                     "host": "localhost", "ip": "127.0.0.1" }
    });
    std::fs::write(root.join("client-config.json"), client_config.to_string()).unwrap();

    // Everything from the file; piped input ends with Ctrl-D.
    let (code, stdout, stderr) =
        run_piped(root, &["--config", "client-config.json"], &[], "echo tls-$((2+3)); stty size\nexit 4\n");
    assert_eq!(code, 4, "stdout {stdout:?} stderr {stderr:?}");
    assert!(stdout.contains("tls-5"), "{stdout}");
    assert!(stdout.contains("24 80"), "80x24 without a terminal: {stdout}");

    // A shell that is left reading gets end of input.
    let (code, stdout, stderr) = run_piped(root, &["--config", "client-config.json"], &[], "echo eof-$((1+1))\n");
    assert_eq!(code, 0, "stdout {stdout:?} stderr {stderr:?}");
    assert!(stdout.contains("eof-2"), "{stdout}");

    // Without --ca the system's roots decide: they do not know this self-signed certificate,
    // and the refusal says what to do; --insecure connects anyway.
    let url = format!("https://127.0.0.1:{port}/sh");
    let env = [("WSSH_PASSWORD", ADMIN_PASSWORD)];
    let (code, _, stderr) = run_piped(root, &[&url, "--user", "admin"], &env, "exit 5\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--ca") && stderr.contains("--insecure"), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    let (code, _, stderr) = run_piped(root, &[&url, "--user", "admin", "--insecure"], &env, "exit 5\n");
    assert_eq!(code, 5, "{stderr}");
    let (code, _, stderr) = run_piped(root, &[&url, "--user", "admin", "--ca", "cert.pem"], &env, "exit 6\n");
    assert_eq!(code, 6, "{stderr}");

    // The command line overrides the file: a wrong password from the environment.
    let (code, _, stderr) =
        run_piped(root, &["--config", "client-config.json", "--user", "admin"], &[("WSSH_PASSWORD", "wrong")], "");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
}

/// `printf … | wssh connect …` with the default `bash -i` session.
#[tokio::test]
async fn piped_input_ends_with_end_of_file_and_the_program_exits() {
    let server = Server::start();
    let temp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/bash", server.addr);
    let (code, stdout, stderr) = run_piped(
        temp.path(),
        &[&url, "--user", "admin"],
        &[("WSSH_PASSWORD", ADMIN_PASSWORD)],
        "echo piped-$((6*7))\n",
    );
    assert_eq!(code, 0, "stdout {stdout:?} stderr {stderr:?}");
    assert!(stdout.contains("piped-42"), "{stdout:?}");
}

/// A TCP proxy in front of the server whose connections can all be cut at once, and which
/// can turn every new connection away (as a server that is down does).
struct Proxy {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    refusing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        let refusing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refuse = refusing.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refuse.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, cut, refusing }
    }

    /// Turns every new connection away from now on.
    fn refuse(&self) {
        self.refusing.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every connection open now (as a lost network does).
    fn cut(&self) {
        self.cut.send_modify(|count| *count += 1);
    }
}

fn number_after(text: &str, key: &str) -> u32 {
    text.split(key)
        .skip(1)
        .find_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

/// `wssh shells` as admin: its table (it must succeed).
fn list_shells(server: &Server) -> String {
    let listed = Command::new(WSSH)
        .args(["shells", &format!("http://{}", server.addr), "--user", "admin"])
        .env("WSSH_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.status.success(), "{table} {}", String::from_utf8_lossy(&listed.stderr));
    table
}

/// `wssh connect` as admin to the server's bash through a [`Proxy`].
async fn connected_through_a_proxy(server: &Server) -> (Proxy, Terminal) {
    let proxy = Proxy::start(server.addr).await;
    let command = connect(&format!("http://{}/bash", proxy.addr), &["--user", "admin"], WindowSize::default())
        .env("WSSH_PASSWORD", ADMIN_PASSWORD);
    (proxy, Terminal::spawn(command))
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_on_its_own_with_a_notice() {
    let server = Server::start();
    let (proxy, mut terminal) = connected_through_a_proxy(&server).await;
    terminal.type_text("echo pid=$$; echo one-$((1+1))\r").await;
    let output = terminal.read_until("one-2").await;
    let pid = number_after(&output, "pid=");

    proxy.cut();
    terminal.read_until("connection lost; reconnecting").await;
    // Typed while away: sent once back, to the same shell.
    terminal.type_text("echo two=$$\r").await;
    terminal.read_until(&format!("two={pid}")).await;
    assert!(terminal.text().contains("wssh: reconnected"), "{}", terminal.text());
    terminal.type_text("exit 4\r").await;
    assert_eq!(terminal.exit_code().await, 4, "{}", terminal.text());
}

#[tokio::test]
async fn ctrl_c_stops_reconnecting_and_leaves_the_shell_running() {
    let server = Server::start();
    let (proxy, mut terminal) = connected_through_a_proxy(&server).await;
    terminal.type_text("echo one-$((1+1))\r").await;
    terminal.read_until("one-2").await;

    // The server is out of reach: the client keeps trying, says why, and Ctrl-C stops it.
    proxy.refuse();
    proxy.cut();
    terminal.read_until("Ctrl-C stops trying").await;
    terminal.read_until("still trying").await;
    terminal.type_text("\u{3}").await;
    assert_eq!(terminal.exit_code().await, 130, "{}", terminal.text());
    assert!(terminal.text().contains("detached from shell"), "{}", terminal.text());

    // The shell is still there to come back to.
    let table = list_shells(&server);
    assert_eq!(table.lines().count(), 2, "{table}");
}

#[tokio::test]
async fn shells_are_listed_attached_to_and_observed() {
    let server = Server::start();
    let url = format!("http://{}/bash", server.addr);
    let with_password = |command: PtyCommand| command.env("WSSH_PASSWORD", ADMIN_PASSWORD);
    let mut first = Terminal::spawn(with_password(connect(&url, &["--user", "admin"], WindowSize::default())));
    first.type_text("echo pid=$$; echo one-$((1+1))\r").await;
    let pid = number_after(&first.read_until("one-2").await, "pid=");

    // `wssh shells` lists it.
    let table = list_shells(&server);
    let line = table.lines().find(|line| line.contains("admin/control")).unwrap_or_else(|| panic!("{table}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&columns[1..4], ["bash", "admin", "80x24"], "{table}");
    let id = columns[0].to_owned();
    assert!(table.starts_with("ID"), "{table}");

    // An observer sees the shell's output, earlier output included, and sends nothing.
    let mut watcher = Terminal::spawn(with_password(connect(
        &url,
        &["--attach", &id, "--observe", "--user", "admin"],
        WindowSize::default(),
    )));
    watcher.read_until("one-2").await;
    watcher.type_text("echo observer-$((2+3))\r").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Output as the program wrote it: the observer's terminal is raw too (no `\r` added).
    first.type_text("stty -opost; printf 'AB\\nCD-%d\\n' $((3+4)); stty opost\r").await;
    first.type_text("echo two-$((2+2))\r").await;
    first.read_until("two-4").await;
    watcher.read_until("two-4").await;
    assert!(!first.text().contains("observer"), "an observer's typing reached the shell: {}", first.text());
    assert!(!watcher.text().contains("observer"), "an observer's typing was echoed: {}", watcher.text());
    assert!(watcher.text().contains("AB\nCD-7\n"), "{:?}", watcher.text());

    // Another observer stops watching with Ctrl-C; the shell goes on.
    let mut quitter = Terminal::spawn(with_password(connect(
        &url,
        &["--attach", &id, "--observe", "--user", "admin"],
        WindowSize::default(),
    )));
    quitter.read_until("two-4").await;
    quitter.type_text("\u{3}").await;
    assert_eq!(quitter.exit_code().await, 130, "{}", quitter.text());
    assert!(quitter.text().contains("stopped watching shell"), "{}", quitter.text());

    // Piped input into an attached shell: it runs, and the client detaches without ending it.
    let temp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_piped(
        temp.path(),
        &[&url, "--attach", &id, "--user", "admin"],
        &[("WSSH_PASSWORD", ADMIN_PASSWORD)],
        "echo piped-$((6*7))\n",
    );
    assert_eq!(code, 0, "stdout {stdout:?} stderr {stderr:?}");
    assert!(stdout.contains("piped-42"), "{stdout:?}");
    assert!(stderr.contains("detached from shell"), "{stderr:?}");
    // How to come back, with the URL given (not a placeholder).
    assert!(stderr.contains(&format!("to come back: wssh connect {url} --attach {id}")), "{stderr:?}");
    first.read_until("piped-42").await;

    // A second controller reaches the same shell, with only the server's address given.
    let server_url = format!("http://{}", server.addr);
    let mut second = Terminal::spawn(with_password(connect(
        &server_url,
        &["--attach", &id, "--user", "admin"],
        WindowSize::default(),
    )));
    second.read_until("two-4").await;
    second.type_text("echo again=$$\r").await;
    second.read_until(&format!("again={pid}")).await;
    first.read_until(&format!("again={pid}")).await;
    second.type_text("exit 5\r").await;
    assert_eq!(first.exit_code().await, 5);
    assert_eq!(second.exit_code().await, 5);
    assert_eq!(watcher.exit_code().await, 5);

    // Attaching to a shell that is gone says so.
    let gone = Command::new(WSSH)
        .args(["connect", &url, "--attach", &id, "--user", "admin"])
        .env("WSSH_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"), "{}", String::from_utf8_lossy(&gone.stderr));
}

#[tokio::test]
async fn piped_input_into_a_busy_shell_detaches_within_the_limit_and_a_share_token_attaches_by_session() {
    let server = Server::start();
    let url = format!("http://{}/bash", server.addr);
    let mut owner = Terminal::spawn(
        connect(&url, &["--user", "admin"], WindowSize::default()).env("WSSH_PASSWORD", ADMIN_PASSWORD),
    );
    owner.type_text("echo pid=$$; echo one-$((1+1))\r").await;
    let pid = number_after(&owner.read_until("one-2").await, "pid=");
    let table = list_shells(&server);
    let id = table.lines().nth(1).and_then(|line| line.split_whitespace().next()).unwrap_or_else(|| panic!("{table}"));

    // A shell that never goes quiet: piped input still detaches, within its limit.
    owner.type_text("while :; do echo tick; sleep 0.2; done\r").await;
    owner.read_until("tick").await;
    let temp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (code, _, stderr) =
        run_piped(temp.path(), &[&url, "--attach", id, "--user", "admin"], &[("WSSH_PASSWORD", ADMIN_PASSWORD)], "");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("detached from shell"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    owner.type_text("\u{3}").await;

    // A share token cannot list shells, but attaches with the session in the URL.
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{ADMIN_PASSWORD}"))
    );
    let reply = server
        .client()
        .json("POST", &format!("/api/shells/{id}/shares"), &[("authorization", &auth)], &json!({ "mode": "control" }))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let token = reply.json["token"].as_str().unwrap().to_owned();
    let mut guest = Terminal::spawn(connect(&url, &["--token", &token, "--attach", id], WindowSize::default()));
    guest.read_until("one-2").await;
    guest.type_text("echo guest=$$\r").await;
    guest.read_until(&format!("guest={pid}")).await;
    // An observe link without --observe: the client says it is watching only, and Ctrl-C ends it.
    let reply = server
        .client()
        .json("POST", &format!("/api/shells/{id}/shares"), &[("authorization", &auth)], &json!({ "mode": "observe" }))
        .await;
    let observe_token = reply.json["token"].as_str().unwrap().to_owned();
    let mut watcher =
        Terminal::spawn(connect(&url, &["--token", &observe_token, "--attach", id], WindowSize::default()));
    watcher.read_until("watching only").await;
    watcher.type_text("\u{3}").await;
    assert_eq!(watcher.exit_code().await, 130, "{}", watcher.text());
    assert!(watcher.text().contains("stopped watching shell"), "{}", watcher.text());

    guest.type_text("exit 3\r").await;
    assert_eq!(guest.exit_code().await, 3, "{}", guest.text());
    assert_eq!(owner.exit_code().await, 3, "{}", owner.text());
}
