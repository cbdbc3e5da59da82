//! Session recordings in asciicast v2, the format `asciinema play`/`asciinema cat` and the
//! `asciinema-player` read: a JSON header line (`version`, `width`, `height`, `timestamp`),
//! then one JSON array per event, `[seconds, code, data]`: `o` for output, `r` for a resize
//! (`"COLSxROWS"`), `i` for input (only when input recording is on: keystrokes carry
//! passwords), `m` for a marker (wssh marks a gap where output was dropped), and at the end an
//! `x` event with the exit status (asciicast v3's exit event; v2 readers skip codes they do not
//! know).
//!
//! A [`Recorder`] never writes on the caller's thread: events go into a bounded queue (by
//! bytes) and a dedicated thread encodes and writes them. When the disk cannot keep up and the
//! queue is full, the [`Policy`] decides: [`Policy::Drop`] drops the output and marks the gap,
//! [`Policy::Block`] makes the caller wait until the queue has room. Output is decoded as
//! UTF-8 across chunk boundaries (a character split between two reads is written whole);
//! bytes that are not UTF-8 are written as U+FFFD, as asciinema's own recorder does.
//!
//! [`retention`] removes the oldest recordings of a folder beyond a maximum age or total size.
//! Nothing here knows users, HTTP or terminals.

pub mod retention;

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be created or written.
    #[error("recording I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The writer thread could not start or ended abnormally.
    #[error("the recording thread failed")]
    Thread,
}

/// What happens to output when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Keep the program running: drop the output and mark the gap in the recording.
    #[default]
    Drop,
    /// Make the caller wait until the recording has room (no byte is lost; output pauses).
    Block,
}

/// How a recording is written.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// What to do when the queue is full.
    pub policy: Policy,
    /// The most bytes of events waiting to be written.
    pub queue_bytes: usize,
    /// Compress the file with gzip.
    pub gzip: bool,
    /// Record input (`i` events). Off by default: keystrokes carry passwords.
    pub input: bool,
}

impl Default for Options {
    /// Drop on a full queue of 4 MiB, no gzip, no input.
    fn default() -> Self {
        Options { policy: Policy::Drop, queue_bytes: 4 * 1024 * 1024, gzip: false, input: false }
    }
}

/// The recording's header.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// Columns at the start.
    pub width: u16,
    /// Rows at the start.
    pub height: u16,
    /// When it started, in seconds since the Unix epoch.
    pub timestamp: i64,
    /// A title, if any.
    pub title: Option<String>,
    /// The command recorded, if known.
    pub command: Option<String>,
}

/// What a finished recording did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Output bytes written.
    pub output_bytes: u64,
    /// Output bytes dropped (policy [`Policy::Drop`] with a full queue).
    pub dropped_bytes: u64,
    /// Gaps marked.
    pub gaps: u64,
}

enum Event {
    Output(f64, Vec<u8>),
    Input(f64, Vec<u8>),
    Resize(f64, u16, u16),
    Gap(f64, u64),
    Exit(f64, Option<i32>),
}

impl Event {
    fn cost(&self) -> usize {
        match self {
            Event::Output(_, bytes) | Event::Input(_, bytes) => bytes.len() + 16,
            _ => 16,
        }
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    bytes: usize,
    closed: bool,
    /// Output dropped since the last gap marker, and when the gap began.
    pending_gap: Option<(f64, u64)>,
    summary: Summary,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when events arrive or the queue closes.
    filled: Condvar,
    /// Signalled when the writer took events.
    drained: Condvar,
    limit: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One recording being written. Dropping it without [`Recorder::finish`] ends the file
/// without an exit status.
pub struct Recorder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), RecordError>>>,
    started: Instant,
    options: Options,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates `path` (mode 0600; it must not exist) and starts recording into it.
    pub fn create(path: &Path, header: &Header, options: Options) -> Result<Recorder, RecordError> {
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        let writer: Box<dyn Write + Send> = if options.gzip {
            Box::new(flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default()))
        } else {
            Box::new(BufWriter::new(file))
        };
        Recorder::with_writer(writer, header, options)
    }

    /// Starts recording into `writer` (which [`Recorder::finish`] flushes and drops; a gzip
    /// encoder given here is finished when dropped).
    pub fn with_writer(
        mut writer: Box<dyn Write + Send>,
        header: &Header,
        options: Options,
    ) -> Result<Recorder, RecordError> {
        let mut line = serde_json::json!({
            "version": 2,
            "width": header.width,
            "height": header.height,
            "timestamp": header.timestamp,
        });
        if let Some(title) = &header.title {
            line["title"] = title.clone().into();
        }
        if let Some(command) = &header.command {
            line["command"] = command.clone().into();
        }
        writeln!(writer, "{line}")?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            filled: Condvar::new(),
            drained: Condvar::new(),
            limit: options.queue_bytes.max(1),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wssh-record".into())
            .spawn(move || write_events(&thread_shared, writer))
            .map_err(|_| RecordError::Thread)?;
        Ok(Recorder { shared, thread: Some(thread), started: Instant::now(), options })
    }

    fn now(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e6
    }

    /// Records output. With a full queue: [`Policy::Drop`] drops it (and marks the gap before
    /// the next output that fits), [`Policy::Block`] waits for room.
    pub fn output(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let at = self.now();
        let event = Event::Output(at, bytes.to_vec());
        let mut queue = self.shared.lock();
        if self.options.policy == Policy::Block {
            while !queue.closed && !queue.events.is_empty() && queue.bytes + event.cost() > self.shared.limit {
                queue = self.shared.drained.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        } else if !queue.events.is_empty() && queue.bytes + event.cost() > self.shared.limit {
            let gap = queue.pending_gap.get_or_insert((at, 0));
            gap.1 += bytes.len() as u64;
            queue.summary.dropped_bytes += bytes.len() as u64;
            return;
        }
        if let Some((since, dropped)) = queue.pending_gap.take() {
            queue.summary.gaps += 1;
            push(&mut queue, Event::Gap(since, dropped));
        }
        queue.summary.output_bytes += bytes.len() as u64;
        push(&mut queue, event);
        drop(queue);
        self.shared.filled.notify_one();
    }

    /// Records input, when the options say so; otherwise does nothing. Input is never
    /// waited for: with a full queue it is dropped.
    pub fn input(&self, bytes: &[u8]) {
        if !self.options.input || bytes.is_empty() {
            return;
        }
        let event = Event::Input(self.now(), bytes.to_vec());
        let mut queue = self.shared.lock();
        if queue.bytes + event.cost() <= self.shared.limit {
            push(&mut queue, event);
            drop(queue);
            self.shared.filled.notify_one();
        }
    }

    /// Records a resize to `cols` x `rows` (never dropped: it is small and the picture
    /// depends on it).
    pub fn resize(&self, cols: u16, rows: u16) {
        let event = Event::Resize(self.now(), cols, rows);
        push(&mut self.shared.lock(), event);
        self.shared.filled.notify_one();
    }

    /// Ends the recording with the program's exit status, waits until everything is written,
    /// and says what was recorded.
    pub fn finish(mut self, exit_status: Option<i32>) -> Result<Summary, RecordError> {
        let at = self.now();
        {
            let mut queue = self.shared.lock();
            if let Some((since, dropped)) = queue.pending_gap.take() {
                queue.summary.gaps += 1;
                push(&mut queue, Event::Gap(since, dropped));
            }
            push(&mut queue, Event::Exit(at, exit_status));
        }
        self.close()?;
        Ok(self.shared.lock().summary)
    }

    fn close(&mut self) -> Result<(), RecordError> {
        self.shared.lock().closed = true;
        self.shared.filled.notify_all();
        self.shared.drained.notify_all();
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| RecordError::Thread)?,
            None => Ok(()),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shared.lock().closed = true;
            self.shared.filled.notify_all();
            self.shared.drained.notify_all();
        }
    }
}

fn push(queue: &mut Queue, event: Event) {
    queue.bytes += event.cost();
    queue.events.push_back(event);
}

/// Text from bytes that may end in the middle of a character: the complete part (invalid
/// sequences as U+FFFD), with an incomplete tail kept in `pending` for the next call.
fn decode(pending: &mut Vec<u8>, bytes: &[u8], finished: bool) -> String {
    pending.extend_from_slice(bytes);
    let mut text = String::with_capacity(pending.len());
    let mut rest: &[u8] = pending;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match error.error_len() {
                    Some(length) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[length..];
                    }
                    None if finished => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &[];
                        break;
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let kept = rest.to_vec();
    *pending = kept;
    text
}

/// The writer thread: takes events in batches, encodes and writes them, flushes whenever the
/// queue runs empty.
fn write_events(shared: &Shared, mut writer: Box<dyn Write + Send>) -> Result<(), RecordError> {
    let mut output_pending = Vec::new();
    let mut input_pending = Vec::new();
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        let (batch, closed) = {
            let mut queue = shared.lock();
            while queue.events.is_empty() && !queue.closed {
                queue = shared.filled.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
            let batch: Vec<Event> = queue.events.drain(..).collect();
            queue.bytes = 0;
            (batch, queue.closed)
        };
        shared.drained.notify_all();
        for event in batch {
            line.clear();
            let value = match event {
                Event::Output(at, bytes) => {
                    let text = decode(&mut output_pending, &bytes, false);
                    if text.is_empty() {
                        continue;
                    }
                    serde_json::json!([at, "o", text])
                }
                Event::Input(at, bytes) => {
                    let text = decode(&mut input_pending, &bytes, false);
                    if text.is_empty() {
                        continue;
                    }
                    serde_json::json!([at, "i", text])
                }
                Event::Resize(at, cols, rows) => serde_json::json!([at, "r", format!("{cols}x{rows}")]),
                Event::Gap(at, dropped) => {
                    serde_json::json!([at, "m", format!("gap: {dropped} bytes of output not recorded")])
                }
                Event::Exit(at, status) => {
                    let tail = decode(&mut output_pending, &[], true);
                    if !tail.is_empty() {
                        serde_json::to_writer(&mut line, &serde_json::json!([at, "o", tail]))
                            .map_err(io::Error::from)?;
                        line.push(b'\n');
                    }
                    let status = status.map_or_else(String::new, |status| status.to_string());
                    serde_json::json!([at, "x", status])
                }
            };
            serde_json::to_writer(&mut line, &value).map_err(io::Error::from)?;
            line.push(b'\n');
            writer.write_all(&line)?;
        }
        if closed && shared.lock().events.is_empty() {
            break;
        }
        if shared.lock().events.is_empty() {
            writer.flush()?;
        }
    }
    writer.flush()?;
    drop(writer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_split_across_reads_are_written_whole() {
        let mut pending = Vec::new();
        let word = "wörld €".as_bytes();
        let mut text = String::new();
        for byte in word {
            text.push_str(&decode(&mut pending, &[*byte], false));
        }
        assert_eq!(text, "wörld €");
        assert!(pending.is_empty());
        assert_eq!(decode(&mut pending, b"a\xffb\xe2\x82", false), "a\u{fffd}b");
        assert_eq!(decode(&mut pending, b"", true), "\u{fffd}");
    }
}
