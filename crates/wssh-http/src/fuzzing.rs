//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not an API): every decoder
//! a client reaches, driven the way the server drives it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::shell::framing::Framing;
use crate::{AppState, SharedState, router};

/// Decodes one client frame of the native (`native`) or the go_ws_sh framing.
pub fn decode_frame(native: bool, payload: &[u8]) -> bool {
    let framing = if native { Framing::Native } else { Framing::GoWsSh };
    framing.decode(payload).is_ok()
}

/// Reads `Sec-WebSocket-Protocol` header values as the shell endpoint does; whether they
/// offered credentials.
pub fn read_subprotocols(values: &[&[u8]]) -> bool {
    let mut headers = http::HeaderMap::new();
    for value in values {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.append(http::header::SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    crate::shell::offers_credentials(&headers)
}

/// A server state over a fresh database, and a runtime to send requests to it through the
/// real router over an in-memory connection.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    state: SharedState,
    /// An administrator's access token, for requests that should get past authentication.
    pub admin_token: String,
}

impl Harness {
    /// A server around `auth` (over a store the fuzz target prepared), whose administrator
    /// holds the access token `admin_token`.
    pub fn new(auth: wssh_auth::Authenticator, admin_token: String) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let state = Arc::new(AppState::new(auth, Default::default(), true));
        Harness { runtime, state, admin_token }
    }

    /// Sends one HTTP/1.1 request through the router; returns the status.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> Option<u16> {
        let mut request = http::Request::builder().method(http::Method::from_bytes(method.as_bytes()).ok()?).uri(path);
        for (name, value) in headers {
            request = request.header(*name, http::HeaderValue::from_bytes(value).ok()?);
        }
        let request = request.header("host", "fuzz").body(Full::new(Bytes::from(body))).ok()?;
        let state = self.state.clone();
        self.runtime.block_on(async move {
            let (client, server) = tokio::io::duplex(1 << 20);
            let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(router::handle(request, state, peer).await) }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(server), service));
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client)).await.ok()?;
            tokio::spawn(connection);
            let response = sender.send_request(request).await.ok()?;
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            Some(status)
        })
    }
}
