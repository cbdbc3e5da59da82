//! A native-framing connection to a live shell: a new one, or one attached by id.
//!
//! The connection first says which shell and offset it serves (`0x04`), then sends output
//! from the shell's history at its own pace (an output task per connection), while the
//! connection's own loop takes input (dropped for observers), resizes, and pings. When the
//! connection goes, the shell stays; when the shell ends, the connection gets the exit frame
//! and a close.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::framing::{ClientMessage, Framing};
use super::output::{Sink, send_frame};
use super::registry::{Attachment, LiveShell, Mode, Next, Progress, READ_CHUNK, ShellEnd, short};
use super::{Delivered, IDLE_TIMEOUT, PING_INTERVAL, PING_SEND_LIMIT, close, next_message};

/// Native message types of live shells (server → client).
const SHELL_TAG: u8 = 0x04;
const GAP_TAG: u8 = 0x05;
const RESTORE_TAG: u8 = 0x06;
/// How long the last frames (output still owed, exit, close) may take once the shell ended.
const LAST_WORDS_LIMIT: Duration = Duration::from_secs(5);

/// How the connection ended.
enum Ending {
    /// The shell is over.
    ShellEnded(ShellEnd),
    /// The client went away or closed.
    ClientGone,
    /// The client sent something malformed.
    Rejected(String, CloseCode),
    /// The client's credential stopped working.
    AccessEnded,
}

/// Serves one client of `shell` (already attached as `client`) from output offset `offset`
/// until either goes.
pub(super) async fn serve<S>(
    sink: Sink<S>,
    mut stream: SplitStream<WebSocketStream<S>>,
    shell: Arc<LiveShell>,
    attachment: Attachment,
    mode: Mode,
    offset: u64,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let delivered = Arc::new(Delivered::new());
    let kick = attachment.kick.clone();
    let client = attachment.id;
    let mut output = tokio::spawn(forward(shell.clone(), sink.clone(), delivered.clone(), client, mode, offset));
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = tokio::time::Instant::now();
    let ending = loop {
        tokio::select! {
            finished = &mut output => match finished {
                Ok(Some(end)) => break Ending::ShellEnded(end),
                _ => break Ending::ClientGone,
            },
            () = kick.notified() => break Ending::AccessEnded,
            _ = pings.tick() => {
                if last_heard.max(delivered.last()).elapsed() >= IDLE_TIMEOUT {
                    break Ending::ClientGone;
                }
                if let Ok(mut sink) = sink.try_lock() {
                    let _ = tokio::time::timeout(PING_SEND_LIMIT, sink.send(Message::Ping(Default::default()))).await;
                }
            }
            incoming = next_message(&mut stream, Framing::Native, &mut last_heard) => match incoming {
                Some(Ok(ClientMessage::Stdin(bytes))) => {
                    // An observer's input is dropped here, whatever its client does.
                    if mode == Mode::Control {
                        let _ = shell.write(&bytes).await;
                    }
                }
                Some(Ok(ClientMessage::Resize { cols, rows })) => {
                    if mode == Mode::Control {
                        shell.resize(wssh_pty::WindowSize { cols, rows });
                    }
                }
                Some(Err(error)) => break Ending::Rejected(error.to_string(), error.close_code()),
                None => break Ending::ClientGone,
            },
        }
    };
    if !output.is_finished() {
        output.abort();
    }
    shell.detach(client);
    // Boxed: the connection's task is only as large as its long wait above.
    Box::pin(last_words(sink, stream, &shell, ending)).await;
}

/// What the client is told as its connection ends, and how long it is given.
async fn last_words<S>(sink: Sink<S>, mut stream: SplitStream<WebSocketStream<S>>, shell: &LiveShell, ending: Ending)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match ending {
        Ending::ShellEnded(end) => {
            let last_words = async {
                let mut sink = sink.lock().await;
                let reason = match end {
                    ShellEnd::Exited(code) => {
                        let _ = sink.send(Message::Binary(Framing::Native.exited(code).unwrap_or_default())).await;
                        (CloseCode::Normal, format!("process exited with status {code}"))
                    }
                    ShellEnd::Ended => (CloseCode::Away, "shell ended".to_owned()),
                };
                let _ = sink.send(close(reason.0, reason.1)).await;
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), last_words).await;
            let _ =
                tokio::time::timeout(Duration::from_secs(1), async { while stream.next().await.is_some() {} }).await;
        }
        Ending::AccessEnded => {
            let last_words = async {
                let mut sink = sink.lock().await;
                let _ = sink.send(Message::Binary(Framing::Native.rejected("access ended"))).await;
                let _ = sink.send(close(CloseCode::Policy, "access ended".to_owned())).await;
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), last_words).await;
        }
        Ending::ClientGone => {
            super::answer_close(&sink).await;
            tracing::info!(shell = %short(&shell.id), session = %shell.session, "client detached");
        }
        Ending::Rejected(reason, code) => {
            tracing::info!(shell = %short(&shell.id), reason, "malformed frame, client detached");
            let last_words = async {
                let mut sink = sink.lock().await;
                let _ = sink.send(Message::Binary(Framing::Native.rejected(&reason))).await;
                let _ = sink.send(close(code, reason.clone())).await;
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), last_words).await;
        }
    }
}

/// A frame of `tag` with a JSON body.
fn json_frame(tag: u8, value: &serde_json::Value) -> Bytes {
    let mut frame = vec![tag];
    // Serializing a Value to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut frame, value);
    Bytes::from(frame)
}

/// Gives the reading turn back when dropped (a no-op when it was given back already).
struct TurnHeld<'a>(&'a LiveShell, u64);

impl Drop for TurnHeld<'_> {
    fn drop(&mut self) {
        self.0.give_back_reading(self.1);
    }
}

/// Sends one frame for the client that reads the terminal; a send that does not complete on
/// its first poll (the client's socket is full, mostly; also a busy sink or the task's spent
/// budget) gives the reading turn back first, so that the shell's task reads on while this
/// client takes its time: a client never holds the program. `false` once the client is gone.
async fn send_reading<S>(
    shell: &LiveShell,
    client: u64,
    (sink, delivered): (&Sink<S>, &Delivered),
    frame: Bytes,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let sending = send_frame(sink, delivered, frame);
    tokio::pin!(sending);
    let first =
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::future::Future::poll(sending.as_mut(), cx))).await;
    match first {
        std::task::Poll::Ready(sent) => sent,
        std::task::Poll::Pending => {
            shell.give_back_reading(client);
            sending.await
        }
    }
}

/// While `client` holds the shell's reading turn (see
/// [`LiveShell::take_reading`]): reads the terminal and sends what it read at once, from
/// `offset` on (and whatever else the history holds past it). Returns the offset reached once
/// the client no longer reads (the terminal closed, the shell is ending, another client
/// attached, a send did not complete at once: the program runs on without it, or the client
/// fell behind the history); `None` when the client is gone. However it stops, even
/// cancelled, the turn is given back.
async fn read_and_send<S>(
    shell: &LiveShell,
    client: u64,
    progress: &mut tokio::sync::watch::Receiver<Progress>,
    mut offset: u64,
    (sink, delivered): (&Sink<S>, &Delivered),
) -> Option<u64>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _turn = TurnHeld(shell, client);
    loop {
        if progress.borrow_and_update().ended.is_some() || !shell.reads(client) {
            return Some(offset);
        }
        match shell.read(offset) {
            Next::Frames(frames, next) => {
                for frame in frames {
                    // Boxed: an idle client's task is only as large as its wait for output.
                    if !Box::pin(send_reading(shell, client, (sink, delivered), frame)).await {
                        return None;
                    }
                }
                offset = next;
                continue;
            }
            Next::Gap => return Some(offset),
            Next::Nothing => {}
        }
        tokio::select! {
            biased;
            // Every way out gives the turn back (`TurnHeld`).
            read = shell.read_output(READ_CHUNK, Some(client)) => {
                if read.is_none() {
                    return Some(offset);
                }
            }
            // Another task appended, or the shell is ending: look again.
            changed = progress.changed() => {
                if changed.is_err() {
                    return Some(offset);
                }
            }
        }
    }
}

/// The output task: the shell message, then output from `offset` on as the shell makes it,
/// with a gap notice and a restore whenever the client is behind what the history holds.
/// Returns how the shell ended once everything it wrote was sent; `None` when the client is
/// gone.
async fn forward<S>(
    shell: Arc<LiveShell>,
    sink: Sink<S>,
    delivered: Arc<Delivered>,
    client: u64,
    mode: Mode,
    requested: u64,
) -> Option<ShellEnd>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: an idle client's task is only as large as its wait for output.
    let send = async |frame: Bytes| -> bool { Box::pin(send_frame(&sink, &delivered, frame)).await };
    let mut progress = shell.watch();
    let (start, _) = shell.span();
    // A gap still to announce: (the offset asked for, where output goes on, the screen there).
    let mut gap = (requested < start).then(|| {
        let (from, screen) = shell.restore_point();
        (requested, from, screen)
    });
    let mut offset = gap.as_ref().map_or(requested, |(_, from, _)| *from);
    let hello = json_frame(SHELL_TAG, &serde_json::json!({ "shell": shell.id, "offset": offset, "mode": mode }));
    if !send(hello).await {
        return None;
    }
    let mut ended_at: Option<tokio::time::Instant> = None;
    loop {
        if let Some((requested, from, screen)) = gap.take() {
            let notice = serde_json::json!({ "requested": requested, "from": from });
            if !send(json_frame(GAP_TAG, &notice)).await {
                return None;
            }
            let mut restore = Vec::with_capacity(screen.len() + 1);
            restore.push(RESTORE_TAG);
            restore.extend_from_slice(&screen);
            if !send(Bytes::from(restore)).await {
                return None;
            }
        }
        let seen = *progress.borrow_and_update();
        match shell.read(offset) {
            Next::Frames(frames, next) => {
                for frame in frames {
                    if !send(frame).await {
                        return None;
                    }
                }
                offset = next;
            }
            Next::Gap => {
                let (from, screen) = shell.restore_point();
                gap = Some((offset, from, screen));
                offset = from;
            }
            Next::Nothing => match seen.ended {
                Some(end) => return Some(end),
                None => {
                    if mode == Mode::Control && shell.take_reading(client, offset) {
                        offset = read_and_send(&shell, client, &mut progress, offset, (&sink, &delivered)).await?;
                        continue;
                    }
                    if progress.changed().await.is_err() {
                        return None;
                    }
                }
            },
        }
        if let Some(end) = seen.ended {
            // A client that takes what is left only slowly does not keep the connection forever.
            let since = *ended_at.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= LAST_WORDS_LIMIT {
                return Some(end);
            }
        }
    }
}
