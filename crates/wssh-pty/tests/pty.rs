//! The PTY engine on real pseudo-terminals: terminal semantics, sizes, bulk output, exit
//! statuses, and that ending a session leaves no process behind.

use std::time::Duration;

use wssh_pty::{BlockingRead, PtyCommand, PtyProcess, PtyReader, WindowSize};

/// Reads until `needle` appears (or 10 s pass); returns everything read.
async fn read_until(reader: &PtyReader, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buffer = vec![0; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let read = tokio::time::timeout_at(deadline, reader.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}; got {:?}", String::from_utf8_lossy(&seen)))
            .unwrap();
        if read == 0 {
            break;
        }
        seen.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn sh() -> PtyProcess {
    PtyCommand::new("sh").size(WindowSize { cols: 101, rows: 33 }).dir("/tmp").spawn().unwrap()
}

#[tokio::test]
async fn a_real_terminal_with_the_requested_size() {
    let process = sh();
    let writer = process.writer();
    writer.write_all(b"tty; stty size; echo TERM=$TERM; pwd; echo done-$((40+2))\n").await.unwrap();
    let output = read_until(&process.reader(), "done-42").await;
    assert!(output.contains("/dev/pts/"), "{output}");
    assert!(output.contains("33 101"), "{output}");
    assert!(output.contains("TERM=xterm-256color"), "{output}");
    assert!(output.contains("/tmp"), "{output}");

    process.resize(WindowSize { cols: 132, rows: 50 }).unwrap();
    writer.write_all(b"stty size; echo resized-$((1+1))\n").await.unwrap();
    let output = read_until(&process.reader(), "resized-2").await;
    assert!(output.contains("50 132"), "{output}");
}

#[tokio::test]
async fn bulk_output_arrives_complete_and_in_order() {
    let process = PtyCommand::new("seq").args(["1", "100000"]).spawn().unwrap();
    let reader = process.reader();
    let mut all = Vec::new();
    let mut buffer = vec![0; 65536];
    loop {
        let read = reader.read(&mut buffer).await.unwrap();
        if read == 0 {
            break;
        }
        all.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8(all).unwrap();
    let numbers: Vec<u32> = text.lines().map(|line| line.trim_end_matches('\r').parse().unwrap()).collect();
    assert_eq!(numbers.len(), 100_000);
    assert!(numbers.iter().enumerate().all(|(index, number)| *number == index as u32 + 1));
}

#[tokio::test]
async fn read_with_hands_over_bounded_chunks_in_order_then_none() {
    // Two terminals read alternately on one thread share its buffer; each sees only its own.
    let first = PtyCommand::new("seq").args(["1", "30000"]).spawn().unwrap();
    let second = PtyCommand::new("seq").args(["30001", "60000"]).spawn().unwrap();
    let readers = [first.reader(), second.reader()];
    let mut outputs = [Vec::new(), Vec::new()];
    let mut open = [true, true];
    while open.iter().any(|open| *open) {
        for index in 0..2 {
            if !open[index] {
                continue;
            }
            let chunk = readers[index].read_with(4096, <[u8]>::to_vec).await.unwrap();
            match chunk {
                Some(chunk) => {
                    assert!(!chunk.is_empty() && chunk.len() <= 4096, "{}", chunk.len());
                    outputs[index].extend_from_slice(&chunk);
                }
                None => open[index] = false,
            }
        }
    }
    for (output, first_number) in outputs.iter().zip([1u32, 30_001]) {
        let text = String::from_utf8(output.clone()).unwrap();
        let numbers: Vec<u32> = text.lines().map(|line| line.trim_end_matches('\r').parse().unwrap()).collect();
        assert_eq!(numbers, (first_number..first_number + 30_000).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn read_framed_keeps_the_head_and_taken_buffers_hold_their_output_uncopied() {
    // Every other buffer is taken (kept as read), the rest left for reuse: the output comes out
    // whole and in order either way, each buffer starting with the head, none over its limit.
    let process = PtyCommand::new("seq").args(["1", "60000"]).spawn().unwrap();
    let reader = process.reader();
    let lock = std::sync::Mutex::new(());
    let (mut output, mut kept, mut reads) = (Vec::new(), 0, 0);
    loop {
        let hold = || lock.lock().unwrap();
        let read = reader
            .read_framed_with_held(b"HD", 8192, hold, |frame| {
                reads += 1;
                assert!(frame.starts_with(b"HD"), "the head comes first");
                assert!(frame.len() > 2 && frame.len() <= 2 + 8192, "{}", frame.len());
                if reads % 2 == 0 { std::mem::take(frame) } else { frame.clone() }
            })
            .await
            .unwrap();
        let Some(frame) = read else { break };
        kept += usize::from(reads % 2 == 0);
        output.extend_from_slice(&frame[2..]);
    }
    assert!(kept > 0, "some buffers were taken");
    let text = String::from_utf8(output).unwrap();
    let numbers: Vec<u32> = text.lines().map(|line| line.trim_end_matches('\r').parse().unwrap()).collect();
    assert_eq!(numbers, (1..=60_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn read_blocking_appends_bounded_chunks_times_out_when_quiet_then_reports_closed() {
    // `read` waits for a line, so the terminal is quiet until it gets one.
    let process = PtyCommand::new("sh").args(["-c", "read line; seq 1 50000"]).spawn().unwrap();
    let reader = process.reader();
    let writer = process.writer();
    let (quiet_over, quiet_is_over) = tokio::sync::oneshot::channel();
    let reading = tokio::task::spawn_blocking(move || {
        let mut all = b"already here|".to_vec();
        let quiet = reader.read_blocking(&mut all, 4096, Duration::from_millis(50)).unwrap();
        quiet_over.send(()).unwrap();
        loop {
            let before = all.len();
            match reader.read_blocking(&mut all, 4096, Duration::from_secs(10)).unwrap() {
                BlockingRead::Read(count) => {
                    assert!(count > 0 && count <= 4096, "{count}");
                    assert_eq!(all.len(), before + count);
                }
                BlockingRead::Closed => break,
                BlockingRead::TimedOut => panic!("timed out with output pending"),
            }
        }
        (quiet, all)
    });
    // Only after the quiet read timed out.
    quiet_is_over.await.unwrap();
    writer.write_all(b"go\n").await.unwrap();
    let (quiet, all) = reading.await.unwrap();
    assert_eq!(quiet, BlockingRead::TimedOut);
    let text = String::from_utf8(all).unwrap();
    let rest = text.strip_prefix("already here|").unwrap().strip_prefix("go\r\n").unwrap();
    let numbers: Vec<u32> = rest.lines().map(|line| line.trim_end_matches('\r').parse().unwrap()).collect();
    assert_eq!(numbers, (1..=50_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn exit_status_is_reported() {
    let mut process = PtyCommand::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    let mut buffer = [0; 1024];
    while process.reader().read(&mut buffer).await.unwrap() > 0 {}
    assert_eq!(process.wait().await.unwrap().code(), Some(7));
}

#[tokio::test]
async fn a_missing_program_is_an_error_not_a_panic() {
    let error = PtyCommand::new("/definitely/not/here").spawn().unwrap_err();
    assert!(error.to_string().contains("/definitely/not/here"), "{error}");
    let error = PtyCommand::new("sh").dir("/definitely/not/a/dir").spawn().unwrap_err();
    assert!(matches!(error, wssh_pty::PtyError::Spawn { .. }), "{error}");
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[tokio::test]
async fn terminate_leaves_no_process_behind() {
    // An interactive shell with a background job in its own process group, and a program
    // that ignores SIGHUP: both must be gone afterwards.
    let mut process = PtyCommand::new("bash").args(["--norc", "-i"]).spawn().unwrap();
    let writer = process.writer();
    writer
        .write_all(b"sleep 1000 & echo bg=$!; (trap '' HUP; exec sleep 1001) & echo nohup=$!; echo start$((1+1))ed\r")
        .await
        .unwrap();
    let output = read_until(&process.reader(), "start2ed").await;
    let pid_of = |key: &str| -> i32 {
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {output:?}"))
    };
    let (background, ignores_hup, shell) = (pid_of("bg="), pid_of("nohup="), process.pid() as i32);
    assert!(alive(background) && alive(ignores_hup) && alive(shell));
    process.terminate(Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for pid in [background, ignores_hup, shell] {
        assert!(!alive(pid), "process {pid} survived");
    }
    // The shell itself was reaped: no zombie of ours.
    assert!(std::fs::metadata(format!("/proc/{shell}")).is_err(), "the shell was not reaped");
}

#[tokio::test]
async fn run_as_switches_user_groups_environment_and_terminal_owner() {
    assert!(nix::unistd::geteuid().is_root(), "switching accounts needs the tests to run as root");
    let account = wssh_pty::OsAccount::lookup("nobody").unwrap();
    assert_ne!(account.uid, 0);
    let script = "echo \"ids=$(id -u):$(id -g):$(id -G) env=$HOME:$USER:$LOGNAME cwd=$(pwd) tty=$(stat -c %u $(tty))\"";
    let mut process = PtyCommand::new("sh").args(["-c", script]).run_as(account.clone()).spawn().unwrap();
    // Read to the end of the output (the needle never appears).
    let output = read_until(&process.reader(), "\u{0}").await;
    let groups = account.groups.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    assert!(output.contains(&format!("ids={}:{}:{groups} ", account.uid, account.gid)), "{output}");
    let home = account.home.display();
    assert!(output.contains(&format!("env={home}:nobody:nobody ")), "{output}");
    // The home of `nobody` usually does not exist: the shell starts in `/` then.
    let cwd = if account.home.is_dir() { home.to_string() } else { "/".to_owned() };
    assert!(output.contains(&format!("cwd={cwd} tty={}", account.uid)), "{output}");
    assert_eq!(process.wait().await.unwrap().code(), Some(0));

    let unknown = wssh_pty::OsAccount::lookup("wssh-no-such-account").unwrap_err();
    assert!(matches!(unknown, wssh_pty::PtyError::UnknownAccount(_)), "{unknown}");
}
