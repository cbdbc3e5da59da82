//! A shell's output path: PTY → WebSocket.
//!
//! Output is read on the async worker that sends it: each read takes everything available, up
//! to [`OUTPUT_CHUNK`], into the worker thread's buffer, and becomes one frame. An idle shell
//! therefore holds no output buffer, and an echo goes out with no hand-over between threads.
//!
//! With go_ws_sh's framing every frame is gzipped, which costs two to three times what reading
//! the terminal does. There a read that brings [`BULK_READ`] bytes or more (a program writing
//! faster than one frame at a time) hands reading to a *pump*: a blocking thread drains the
//! terminal while the worker compresses and sends, so that the two overlap instead of taking
//! turns (the kernel's terminal buffer is small, and a program stalls whenever nobody empties
//! it). The pump hands each buffer over as soon as the previous one was taken, reads on while
//! the worker sends, and stops when the terminal has been quiet for [`PUMP_QUIET`], when the
//! client has taken nothing for as long, or when the terminal closes; reading then goes back to
//! the worker. Only one of the two reads at any time, so the output's order is kept. At most
//! one pump per core runs at a time; shells beyond that read on the worker. Native frames cost
//! a copy, less than the hand-over between threads would, so they never use a pump.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, LazyLock, PoisonError};
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use wssh_pty::{BlockingRead, PtyReader};

use super::Delivered;
use super::framing::Framing;
use super::recording::SharedRecording;

/// Bytes read from the PTY per frame at most. On the worker they are read into a buffer per
/// thread, not per shell.
const OUTPUT_CHUNK: usize = 64 * 1024;
/// A read at least this large hands reading to a pump (go_ws_sh's framing only).
const BULK_READ: usize = 16 * 1024;
/// A pump stops after this long without output, or without the client taking any.
const PUMP_QUIET: Duration = Duration::from_millis(20);

/// Pumps running now, at most one per core.
static PUMPS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))));

/// The sending half of a shell's WebSocket, shared with the pings of the input loop.
pub(super) type Sink<S> = Arc<Mutex<SplitSink<WebSocketStream<S>, Message>>>;

/// Forwards the terminal's output to the client until the terminal closes (every process
/// holding it has exited) or the client is gone. Each frame the client takes is noted in
/// `delivered`.
pub(super) async fn forward<S>(
    reader: PtyReader,
    framing: Framing,
    sink: Sink<S>,
    delivered: Arc<Delivered>,
    recording: Option<SharedRecording>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let output = Output { framing, sink, delivered, recording };
    loop {
        let read = reader
            .read_with(OUTPUT_CHUNK, |bytes| {
                output.record(bytes);
                (framing.stdout(bytes), bytes.len())
            })
            .await;
        let Ok(Some((frame, length))) = read else { return };
        if !output.send(frame).await {
            return;
        }
        if framing.compresses()
            && length >= BULK_READ
            && let Ok(permit) = PUMPS.clone().try_acquire_owned()
        {
            let (end, bytes) = output.send_pumped(&reader, permit).await;
            tracing::debug!(bytes, ?end, "output pump stopped");
            match end {
                Some(PumpEnd::Quiet) => {}
                Some(PumpEnd::Closed) | None => return,
            }
        }
    }
}

/// Sends one frame on a shell's socket; `false` once the client is gone. Each frame taken is
/// noted in `delivered`.
pub(super) async fn send_frame<S>(sink: &Sink<S>, delivered: &Delivered, frame: Bytes) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let sent = sink.lock().await.send(Message::Binary(frame)).await.is_ok();
    if sent {
        delivered.now();
    }
    sent
}

/// Where output goes.
struct Output<S> {
    framing: Framing,
    sink: Sink<S>,
    delivered: Arc<Delivered>,
    /// The shell's recording, if it is recorded.
    recording: Option<SharedRecording>,
}

impl<S> Output<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    /// Records output read from the terminal, when the shell is recorded.
    fn record(&self, bytes: &[u8]) {
        if let Some(recording) = &self.recording {
            super::recording::output_into(recording, bytes);
        }
    }

    /// Sends one frame; `false` once the client is gone.
    async fn send(&self, frame: Bytes) -> bool {
        send_frame(&self.sink, &self.delivered, frame).await
    }

    /// Sends what a pump reads, until it stops: why it stopped (`None` if the client is gone),
    /// and how many bytes of output it sent.
    async fn send_pumped(&self, reader: &PtyReader, permit: OwnedSemaphorePermit) -> (Option<PumpEnd>, usize) {
        let handoff = Arc::new(Handoff::default());
        let _sender_gone = SenderGone(handoff.clone());
        let (pump_handoff, pump_reader) = (handoff.clone(), reader.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _ended = PumpEnded(&pump_handoff);
            pump(&pump_handoff, &pump_reader);
        });
        let mut bytes = 0;
        loop {
            let handed = handoff.handed.notified();
            let (buffers, ended) = handoff.take();
            if buffers.is_empty() {
                match ended {
                    Some(end) => return (Some(end), bytes),
                    None => {
                        handed.await;
                        continue;
                    }
                }
            }
            for buffer in buffers {
                bytes += buffer.len();
                self.record(&buffer);
                if !self.send(self.framing.stdout(&buffer)).await {
                    return (None, bytes);
                }
            }
        }
    }
}

/// Why a pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpEnd {
    /// No output, or the client took none, for [`PUMP_QUIET`]: reading goes back to the worker.
    Quiet,
    /// The terminal is closed on the program's side (or reading it failed, or the pump failed).
    Closed,
}

/// Buffers passed from a pump to the sender.
#[derive(Default)]
struct Handoff {
    /// What is passed, under one lock.
    state: std::sync::Mutex<HandoffState>,
    /// Wakes the sender: a buffer was handed over, or the pump ended.
    handed: Notify,
    /// Wakes a pump waiting for the sender to take its buffers.
    taken: Condvar,
}

/// What a [`Handoff`] holds.
#[derive(Default)]
struct HandoffState {
    /// Output not yet taken; two buffers at most.
    buffers: VecDeque<Vec<u8>>,
    /// Set as the pump's last act, after its last buffer.
    ended: Option<PumpEnd>,
    /// Whether the pump waits on `taken`.
    pump_waits: bool,
    /// Set when the sender is gone (client gone, shell ending): the pump stops.
    sender_gone: bool,
}

impl Handoff {
    /// The state; a panic elsewhere while holding it leaves nothing half-changed that matters.
    fn lock(&self) -> std::sync::MutexGuard<'_, HandoffState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sender's side: every buffer handed over so far, and whether the pump has ended.
    fn take(&self) -> (VecDeque<Vec<u8>>, Option<PumpEnd>) {
        let mut state = self.lock();
        let buffers = std::mem::take(&mut state.buffers);
        if !buffers.is_empty() && state.pump_waits {
            self.taken.notify_one();
        }
        (buffers, state.ended)
    }
}

/// Tells the pump that the sender is gone, however the sender stops.
struct SenderGone(Arc<Handoff>);

impl Drop for SenderGone {
    fn drop(&mut self) {
        self.0.lock().sender_gone = true;
        self.0.taken.notify_one();
    }
}

/// Wakes the sender once the pump has ended, however it ends: a pump that panicked, and so
/// set no end, counts as a closed terminal, instead of leaving the sender waiting for output
/// that never comes.
struct PumpEnded<'a>(&'a Handoff);

impl Drop for PumpEnded<'_> {
    fn drop(&mut self) {
        self.0.lock().ended.get_or_insert(PumpEnd::Closed);
        self.0.handed.notify_one();
    }
}

/// The pump, on a blocking thread: reads the terminal and hands buffers over until it stops,
/// or until the sender is gone. It records how it stopped together with its last buffer, and
/// does not read again after.
fn pump(handoff: &Handoff, reader: &PtyReader) {
    let new_buffer = || Vec::with_capacity(OUTPUT_CHUNK);
    let mut filling = new_buffer();
    loop {
        let room_left = OUTPUT_CHUNK - filling.len();
        let end = match reader.read_blocking(&mut filling, room_left, PUMP_QUIET) {
            Ok(BlockingRead::Read(_)) => None,
            Ok(BlockingRead::TimedOut) => Some(PumpEnd::Quiet),
            Ok(BlockingRead::Closed) | Err(_) => Some(PumpEnd::Closed),
        };
        let mut state = handoff.lock();
        if state.sender_gone {
            return;
        }
        if end.is_none() && !state.buffers.is_empty() {
            if filling.len() < OUTPUT_CHUNK {
                // The sender is busy with the last buffer: read on into this one.
                continue;
            }
            // This one is full too: wait for the sender, but only so long.
            state.pump_waits = true;
            state = handoff
                .taken
                .wait_timeout_while(state, PUMP_QUIET, |state| !state.buffers.is_empty() && !state.sender_gone)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.pump_waits = false;
            if state.sender_gone {
                return;
            }
        }
        let client_stalled = !state.buffers.is_empty();
        if !filling.is_empty() {
            state.buffers.push_back(std::mem::replace(&mut filling, new_buffer()));
        }
        if let Some(end) = end.or(client_stalled.then_some(PumpEnd::Quiet)) {
            state.ended = Some(end);
            return;
        }
        drop(state);
        handoff.handed.notify_one();
    }
}
