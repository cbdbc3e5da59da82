//! A client of wssh's live shells for the live-shell and recording figures (8 to 11): the
//! native framing's `0x04` shell, `0x05` gap and `0x06` restore messages, attaching by id and
//! offset (`docs/protocol.md`), and the `/api/shells` calls.

use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::framing::{Framing, NATIVE_SUBPROTOCOL};
use super::target::{COLS, ROWS, Result};
use super::ws::{HANDSHAKE_TIMEOUT, Socket};
use super::wssh::ApiAccess;

/// The `0x04` message: which shell a connection is on and the offset of its first data byte.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ShellInfo {
    /// The shell's id.
    pub(crate) shell: String,
    /// The offset of the first data byte this connection receives.
    pub(crate) offset: u64,
    /// `control` or `observe`.
    pub(crate) mode: String,
}

/// What a live-shell connection received.
#[derive(Debug)]
pub(crate) enum Event {
    /// `0x04`.
    Shell(ShellInfo),
    /// `0x05`: output from `requested` on is gone; data goes on from `from`.
    Gap {
        /// The offset asked for.
        requested: u64,
        /// Where data resumes.
        from: u64,
    },
    /// `0x06`: a restored screen (not counted in offsets).
    Restore,
    /// `0x00`: output.
    Data(Bytes),
    /// `0x02`: the program exited.
    Exit(i32),
    /// The connection closed.
    Closed,
}

/// One native-framing connection to a live shell, authenticated with the access token.
pub(crate) struct LiveSocket {
    /// The WebSocket.
    socket: Socket,
}

impl LiveSocket {
    /// Connects to `path` (`/SESSION` or `/SESSION?shell=ID&offset=N&mode=…`); sends the
    /// 80×24 resize first when `resize` (a new shell needs it; an attaching client need not).
    pub(crate) async fn connect(access: &ApiAccess, path: &str, resize: bool) -> Result<LiveSocket> {
        let mut request = format!("ws://{}{path}", access.addr).into_client_request()?;
        request.headers_mut().insert("authorization", access.bearer.parse()?);
        request.headers_mut().insert("sec-websocket-protocol", NATIVE_SUBPROTOCOL.parse()?);
        let mut socket = Socket::connect(access.addr, request).await?;
        if resize {
            socket.stream.send(Message::Binary(Framing::Native.resize(COLS, ROWS).into())).await?;
        }
        Ok(LiveSocket { socket })
    }

    /// The next message.
    pub(crate) async fn next(&mut self) -> Result<Event> {
        loop {
            let Some(message) = self.socket.next_message().await? else { return Ok(Event::Closed) };
            let frame = match message {
                Message::Binary(frame) => frame,
                Message::Close(_) => return Ok(Event::Closed),
                Message::Text(_) => return Err("the server sent a text frame".into()),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            return match frame.first() {
                Some(0) => Ok(Event::Data(frame.slice(1..))),
                Some(2) if frame.len() == 5 => {
                    Ok(Event::Exit(i32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]])))
                }
                Some(3) => Err(format!("server error: {}", String::from_utf8_lossy(&frame[1..])).into()),
                Some(4) => Ok(Event::Shell(serde_json::from_slice(&frame[1..])?)),
                Some(5) => {
                    let gap: serde_json::Value = serde_json::from_slice(&frame[1..])?;
                    let number = |key: &str| gap[key].as_u64().ok_or_else(|| format!("gap without {key}"));
                    Ok(Event::Gap { requested: number("requested")?, from: number("from")? })
                }
                Some(6) => Ok(Event::Restore),
                other => Err(format!("unknown native frame {other:?}").into()),
            };
        }
    }

    /// Waits (within `limit`) for the `0x04` message, the first of every connection.
    pub(crate) async fn hello(&mut self, limit: Duration) -> Result<ShellInfo> {
        match tokio::time::timeout(limit, self.next()).await.map_err(|_| "no shell message in time")?? {
            Event::Shell(info) => Ok(info),
            other => Err(format!("expected the shell message first, got {other:?}").into()),
        }
    }

    /// The next output, within `limit`; a gap, an exit or the end is an error (the figures
    /// never let a client fall behind the history).
    pub(crate) async fn data(&mut self, limit: Duration) -> Result<Bytes> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next())
                .await
                .map_err(|_| format!("no output within {limit:?}"))??;
            match event {
                Event::Data(bytes) => return Ok(bytes),
                Event::Gap { requested, from } => {
                    return Err(format!("gap: output from {requested} lost, resumed at {from}").into());
                }
                Event::Restore | Event::Shell(_) => {}
                Event::Exit(code) => return Err(format!("the program exited ({code})").into()),
                Event::Closed => return Err("the connection closed".into()),
            }
        }
    }

    /// Sends keystrokes.
    pub(crate) async fn send(&mut self, input: &[u8]) -> Result<()> {
        self.socket.stream.send(Message::Binary(Framing::Native.stdin(input).into())).await?;
        Ok(())
    }

    /// Drops the connection without a WebSocket close, as a lost network does (the TCP
    /// connection ends; the shell stays).
    pub(crate) fn drop_connection(self) {
        drop(self);
    }

    /// Closes the connection properly.
    pub(crate) async fn close(self) {
        self.socket.close().await;
    }
}

/// One shell of `GET /api/shells`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListedShell {
    /// The offset after its last output byte.
    pub(crate) output_bytes: u64,
    /// When its last client left, if none is attached.
    pub(crate) detached_since: Option<String>,
}

/// `GET /api/shells` with the administrator's token.
pub(crate) async fn list_shells(access: &ApiAccess) -> Result<Vec<ListedShell>> {
    let reply = api(access, http::Method::GET, "/api/shells").await?;
    if reply.status != 200 {
        return Err(format!("GET /api/shells answered {}", reply.status).into());
    }
    let body: serde_json::Value = serde_json::from_slice(&reply.body)?;
    // The list, bare or under `shells`.
    let list = body.get("shells").cloned().unwrap_or(body);
    Ok(serde_json::from_value(list)?)
}

/// `DELETE /api/shells/{id}`: ends the shell.
pub(crate) async fn end_shell(access: &ApiAccess, id: &str) -> Result<()> {
    delete_shell(access, id, false).await
}

/// [`end_shell`] for a shell that may have ended by itself already (its server ends a shell
/// with its last connection): a 404 is fine too.
pub(crate) async fn end_shell_unless_ended(access: &ApiAccess, id: &str) -> Result<()> {
    delete_shell(access, id, true).await
}

/// `DELETE /api/shells/{id}`; `gone_is_fine`: a 404 counts as done.
async fn delete_shell(access: &ApiAccess, id: &str, gone_is_fine: bool) -> Result<()> {
    let reply = api(access, http::Method::DELETE, &format!("/api/shells/{id}")).await?;
    let done = (200..300).contains(&reply.status) || (gone_is_fine && reply.status == 404);
    if !done {
        return Err(format!("DELETE /api/shells/{id} answered {}", reply.status).into());
    }
    Ok(())
}

/// One API request with the token, on a new connection.
async fn api(access: &ApiAccess, method: http::Method, path: &str) -> Result<super::http::Reply> {
    let request = super::http::request(method, access.addr, path, Some(&access.bearer), None)?;
    let mut connection = super::http::Connection::open(access.addr).await?;
    connection.exchange(request, HANDSHAKE_TIMEOUT).await
}
