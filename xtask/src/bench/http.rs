//! The HTTP/1.1 client of the API figures, on hyper: keep-alive requests on one connection,
//! every exchange bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::target::Result;

/// The longest reply body accepted.
const MAX_REPLY: usize = 1 << 20;

/// A request as the client sends it.
pub(crate) type Request = http::Request<Full<Bytes>>;

/// A request to `addr` for `path`, with `Authorization` when given, and a JSON body when given.
pub(crate) fn request(
    method: http::Method,
    addr: SocketAddr,
    path: &str,
    authorization: Option<&str>,
    json: Option<&str>,
) -> Result<Request> {
    let mut builder = http::Request::builder().method(method).uri(path).header(HOST, addr.to_string());
    if let Some(authorization) = authorization {
        builder = builder.header(http::header::AUTHORIZATION, authorization);
    }
    if json.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    let body = json.map_or_else(Bytes::new, |json| Bytes::copy_from_slice(json.as_bytes()));
    Ok(builder.body(Full::new(body))?)
}

/// One keep-alive connection.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

/// A reply: status and body.
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The body.
    pub(crate) body: Bytes,
}

impl Connection {
    /// Connects to `addr` (TCP_NODELAY); the connection's I/O runs in a task of its own.
    pub(crate) async fn open(addr: SocketAddr) -> Result<Connection> {
        Connection::over(TcpStream::connect(addr).await?).await
    }

    /// Connects to `addr` from the local address `source` (any 127.0.0.0/8 address on Linux).
    pub(crate) async fn open_from(addr: SocketAddr, source: std::net::IpAddr) -> Result<Connection> {
        Connection::over(connect_from(addr, source).await?).await
    }

    /// An HTTP/1.1 connection over `stream`.
    async fn over(stream: TcpStream) -> Result<Connection> {
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    /// Sends `request` and reads the whole reply, within `limit`.
    pub(crate) async fn exchange(&mut self, request: Request, limit: Duration) -> Result<Reply> {
        tokio::time::timeout(limit, async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_REPLY).collect().await?.to_bytes();
            Ok(Reply { status, body })
        })
        .await
        .map_err(|_| format!("no reply within {limit:?}"))?
    }
}

/// A TCP connection to `addr` from the local address `source` (port chosen by the kernel).
pub(crate) async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> std::io::Result<TcpStream> {
    let socket = if source.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}
