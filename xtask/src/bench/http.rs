//! A minimal HTTP/1.1 client for the API figures: keep-alive requests on one connection,
//! replies framed by `Content-Length` (what wssh sends for JSON), every read bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::target::Result;

/// The longest reply head or body accepted.
const MAX_REPLY: usize = 1 << 20;

/// One keep-alive connection.
pub(crate) struct Connection {
    /// The socket.
    stream: TcpStream,
    /// Bytes read beyond the last reply.
    buffer: Vec<u8>,
}

/// A reply: status and body.
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Connection {
    /// Connects to `addr` (TCP_NODELAY).
    pub(crate) async fn open(addr: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream, buffer: Vec::with_capacity(8192) })
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads the reply, within `limit`.
    pub(crate) async fn exchange(&mut self, request: &[u8], limit: Duration) -> Result<Reply> {
        tokio::time::timeout(limit, async {
            self.stream.write_all(request).await?;
            self.read_reply().await
        })
        .await
        .map_err(|_| format!("no reply within {limit:?}"))?
    }

    /// Reads one `Content-Length`-framed reply.
    async fn read_reply(&mut self) -> Result<Reply> {
        let head_end = loop {
            if let Some(end) = self.buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("malformed status line: {:.80}", head))?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
            })
            .ok_or("a reply without Content-Length")?;
        if length > MAX_REPLY {
            return Err(format!("a reply of {length} bytes").into());
        }
        let body_start = head_end + 4;
        while self.buffer.len() < body_start + length {
            self.fill().await?;
        }
        let body = self.buffer[body_start..body_start + length].to_vec();
        self.buffer.drain(..body_start + length);
        Ok(Reply { status, body })
    }

    /// Reads more into the buffer.
    async fn fill(&mut self) -> Result<()> {
        if self.buffer.len() > MAX_REPLY * 2 {
            return Err("reply too large".into());
        }
        let mut chunk = [0u8; 16 * 1024];
        let count = self.stream.read(&mut chunk).await?;
        if count == 0 {
            return Err("the server closed the connection".into());
        }
        self.buffer.extend_from_slice(&chunk[..count]);
        Ok(())
    }
}
