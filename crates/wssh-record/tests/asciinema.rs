//! Recordings read back by the real asciinema CLI (`asciinema cat`, which needs a terminal: it
//! runs under `script`), and the two policies under a disk that cannot keep up.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wssh_record::{Header, Options, Policy, Recorder};

/// What `asciinema cat` prints for `path`.
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

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn header() -> Header {
    Header { width: 100, height: 30, timestamp: 1_700_000_000, title: None, command: Some("sh".into()) }
}

/// Output with every awkward part: multi-byte characters split across writes, escapes, CR LF,
/// and quotes and backslashes for the JSON encoder.
fn sample_output() -> Vec<Vec<u8>> {
    let text = "plain \"quoted\" back\\slash\r\n\x1b[1;31mred\x1b[0m tab\tend\r\nwörld € 漢字 🙂\r\n".repeat(50);
    let bytes = text.as_bytes();
    // Chunks of 7 bytes split most multi-byte characters.
    bytes.chunks(7).map(<[u8]>::to_vec).collect()
}

#[test]
fn asciinema_cat_prints_exactly_the_output_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.cast");
    let recorder = Recorder::create(&path, &header(), Options::default()).unwrap();
    let chunks = sample_output();
    for (index, chunk) in chunks.iter().enumerate() {
        recorder.output(chunk);
        recorder.input(b"secret typed\r");
        if index == 10 {
            recorder.resize(120, 40);
        }
    }
    let summary = recorder.finish(Some(3)).unwrap();
    let written: Vec<u8> = chunks.concat();
    assert_eq!(summary.output_bytes, written.len() as u64);
    assert_eq!((summary.dropped_bytes, summary.gaps), (0, 0));
    assert_eq!(asciinema_cat(&path), written);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("secret typed"), "input is not recorded unless asked for");
    let events = lines(&text);
    assert_eq!(events[0]["version"], 2);
    assert_eq!((events[0]["width"].as_u64(), events[0]["height"].as_u64()), (Some(100), Some(30)));
    assert_eq!(events[0]["timestamp"], 1_700_000_000);
    let resizes: Vec<&serde_json::Value> = events.iter().filter(|event| event[1] == "r").collect();
    assert_eq!(resizes.len(), 1);
    assert_eq!(resizes[0][2], "120x40");
    assert_eq!(events.last().unwrap()[1], "x");
    assert_eq!(events.last().unwrap()[2], "3");
    let times: Vec<f64> = events[1..].iter().map(|event| event[0].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "times never go back");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(Recorder::create(&path, &header(), Options::default()).is_err(), "never overwrites");
}

#[test]
fn gzip_and_input_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.cast.gz");
    let options = Options { gzip: true, input: true, ..Options::default() };
    let recorder = Recorder::create(&path, &header(), options).unwrap();
    recorder.input(b"ls\r");
    recorder.output(b"file-a  file-b\r\n");
    recorder.finish(None).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
    let events = lines(&text);
    assert_eq!(events[1][1], "i");
    assert_eq!(events[1][2], "ls\r");
    assert_eq!(events[2][2], "file-a  file-b\r\n");
    assert_eq!(events.last().unwrap()[1], "x");
    let plain = dir.path().join("two.cast");
    std::fs::write(&plain, text).unwrap();
    assert_eq!(asciinema_cat(&plain), b"file-a  file-b\r\n");
}

/// A disk that takes `delay` per write, and what reached it.
#[derive(Clone)]
struct SlowDisk {
    delay: Duration,
    written: Arc<Mutex<Vec<u8>>>,
}

impl Write for SlowDisk {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(self.delay);
        self.written.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn record_through_slow_disk(policy: Policy) -> (wssh_record::Summary, String, usize) {
    let disk = SlowDisk { delay: Duration::from_millis(20), written: Arc::default() };
    let options = Options { policy, queue_bytes: 4096, ..Options::default() };
    let recorder = Recorder::with_writer(Box::new(disk.clone()), &header(), options).unwrap();
    let chunk = vec![b'y'; 1000];
    for _ in 0..200 {
        recorder.output(&chunk);
    }
    let summary = recorder.finish(Some(0)).unwrap();
    let text = String::from_utf8(disk.written.lock().unwrap().clone()).unwrap();
    let recorded: usize =
        lines(&text).iter().filter(|event| event[1] == "o").map(|event| event[2].as_str().unwrap().len()).sum();
    (summary, text, recorded)
}

#[test]
fn a_full_queue_drops_and_marks_the_gap_or_blocks_as_configured() {
    let (summary, text, recorded) = record_through_slow_disk(Policy::Drop);
    assert!(summary.dropped_bytes > 0, "the slow disk fell behind: {summary:?}");
    assert_eq!(recorded as u64, summary.output_bytes);
    assert_eq!(summary.output_bytes + summary.dropped_bytes, 200_000);
    let markers: Vec<serde_json::Value> = lines(&text).into_iter().filter(|event| event[1] == "m").collect();
    assert_eq!(markers.len() as u64, summary.gaps);
    assert!(summary.gaps >= 1);
    let marked: u64 = markers
        .iter()
        .map(|marker| marker[2].as_str().unwrap().split(' ').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(marked, summary.dropped_bytes, "every dropped byte is accounted for in a marker");

    let (summary, text, recorded) = record_through_slow_disk(Policy::Block);
    assert_eq!((summary.dropped_bytes, summary.gaps, recorded), (0, 0, 200_000));
    assert!(!text.contains("\"m\""));
}
