//! The WebSocket side shared by every server target: connecting over loopback with a handshake
//! time limit, and counting the bytes read from the socket (the wire figure).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::target::{Result, WireCount};

/// How long a handshake may take (wssh's includes a password hash).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// A WebSocket over a [`Counted`] TCP stream, with its frame count.
pub(crate) struct Socket {
    /// The connection.
    pub(crate) stream: WebSocketStream<Counted>,
    /// Bytes read from the TCP stream so far.
    received: Arc<AtomicU64>,
    /// `received` when the handshake was done.
    base: u64,
    /// Frames received since the handshake (the caller counts them).
    pub(crate) frames: u64,
}

impl Socket {
    /// Connects to `addr` with `request` (TCP_NODELAY, as browsers do), within
    /// [`HANDSHAKE_TIMEOUT`].
    pub(crate) async fn connect(addr: SocketAddr, request: Request) -> Result<Socket> {
        Socket::connect_from(addr, None, request).await
    }

    /// [`Socket::connect`] from the local address `source` when given.
    pub(crate) async fn connect_from(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        request: Request,
    ) -> Result<Socket> {
        let received = Arc::new(AtomicU64::new(0));
        let handshake = async {
            let stream = match source {
                Some(source) => super::http::connect_from(addr, source).await?,
                None => TcpStream::connect(addr).await?,
            };
            stream.set_nodelay(true)?;
            let stream = Counted { inner: stream, received: received.clone() };
            match tokio_tungstenite::client_async(request, stream).await {
                Ok((socket, _response)) => Ok(socket),
                Err(WsError::Http(response)) => Err(format!("handshake refused: {}", response.status()).into()),
                Err(error) => Err(super::target::Error::from(error)),
            }
        };
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await.map_err(|_| "handshake timed out")??;
        let base = received.load(Ordering::Relaxed);
        Ok(Socket { stream, received, base, frames: 0 })
    }

    /// The next message, counted as a frame; `None` once the connection is closed.
    pub(crate) async fn next_message(&mut self) -> Result<Option<Message>> {
        match self.stream.next().await {
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Ok(None),
            Some(Err(error)) => Err(error.into()),
            Some(Ok(message)) => {
                self.frames += 1;
                Ok(Some(message))
            }
        }
    }

    /// What arrived since the handshake.
    pub(crate) fn wire(&self) -> WireCount {
        WireCount { bytes: self.received.load(Ordering::Relaxed) - self.base, frames: self.frames }
    }

    /// The count of bytes read and its value at the handshake, for terminals that split the
    /// socket.
    pub(crate) fn counter(&self) -> (Arc<AtomicU64>, u64) {
        (self.received.clone(), self.base)
    }

    /// Closes the socket and drains it, at most two seconds.
    pub(crate) async fn close(mut self) {
        use futures_util::StreamExt as _;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.stream.close(None).await;
            while let Some(Ok(_)) = self.stream.next().await {}
        })
        .await;
    }
}

/// A TCP stream that counts the bytes read from it.
pub(crate) struct Counted {
    /// The stream.
    inner: TcpStream,
    /// Bytes read so far.
    received: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            self.received.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// `text` percent-encoded for a URL query value (everything but `A–Z a–z 0–9 - . _ ~`).
pub(crate) fn query_escape(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("sh -c 'a'/b~"), "sh%20-c%20%27a%27%2Fb~");
    }
}
