//! Carrying a client to the node that runs its shell. A client that attaches
//! (`?shell=ID`) through a node that does not run that shell is relayed, frame for frame, over
//! a WebSocket to the owning node: the same path and query (so the same offset and mode), the
//! client's own credential (the `Sec-WebSocket-Protocol` offer and `Authorization`), and the
//! node headers that say where the client is, signed with the cluster's node key. The owning
//! node makes every check it makes for a direct client; its refusal reaches the client as its
//! status. The frames (0x04, 0x05, 0x06, output, input) pass unchanged, so resume is as exact
//! as on the owning node.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::close;
use super::framing::{MAX_WIRE_BYTES, NATIVE_SUBPROTOCOL};
use crate::SharedState;
use crate::error::ApiError;
use crate::respond::{Body, empty};

/// The header with the node signature (`TIME.MAC`).
pub(crate) const NODE_HEADER: &str = "x-wssh-node";
/// The header with the client's address, as the relaying node saw it.
pub(crate) const NODE_CLIENT_HEADER: &str = "x-wssh-node-client";
/// How long connecting to the owning node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a relayed request's client is, when the request carries a valid node signature;
/// `Ok(None)` for a request without one; an error for a signature that does not hold.
pub(crate) async fn relayed_client(
    request: &Request<Incoming>,
    state: &SharedState,
) -> Result<Option<IpAddr>, ApiError> {
    let headers = request.headers();
    let Some(signature) = headers.get(NODE_HEADER) else { return Ok(None) };
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "Invalid node signature");
    let signature = signature.to_str().map_err(|_| refused())?.to_owned();
    let client =
        headers.get(NODE_CLIENT_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned).ok_or_else(refused)?;
    let address: IpAddr = client.parse().map_err(|_| refused())?;
    let target = request.uri().path_and_query().map_or_else(|| request.uri().path().to_owned(), ToString::to_string);
    let key_state = state.clone();
    let key = tokio::task::spawn_blocking(move || key_state.node.key(&key_state))
        .await
        .map_err(|error| ApiError::internal(&error))?
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The node key cannot be read"))?;
    if key.verify(&signature, wssh_domain::Timestamp::now().0, &client, &target) {
        Ok(Some(address))
    } else {
        tracing::warn!("a request with an invalid node signature was refused");
        Err(refused())
    }
}

/// Relays the client's upgrade request to `node_url`, the node that runs the shell: 101 and a
/// relay when that node accepts, its status when it refuses, 502 when it cannot be reached.
pub(crate) async fn relay(
    request: Request<Incoming>,
    state: SharedState,
    peer: SocketAddr,
    accept_key: String,
    node_url: &str,
) -> Result<Response<Body>, ApiError> {
    let target = request.uri().path_and_query().map_or_else(|| request.uri().path().to_owned(), ToString::to_string);
    let Some(authority) = node_url.strip_prefix("http://") else {
        return Err(ApiError::new(StatusCode::BAD_GATEWAY, "The node that runs this shell has no reachable address"));
    };
    let (host, base) = authority.split_once('/').map_or((authority, ""), |(host, base)| (host, base));
    let base = if base.is_empty() { String::new() } else { format!("/{}", base.trim_end_matches('/')) };
    let mut upstream = format!("ws://{host}{base}{target}")
        .into_client_request()
        .map_err(|_| ApiError::new(StatusCode::BAD_GATEWAY, "The node that runs this shell has a malformed address"))?;
    for name in [header::SEC_WEBSOCKET_PROTOCOL, header::AUTHORIZATION] {
        for value in request.headers().get_all(&name) {
            upstream.headers_mut().append(name.clone(), value.clone());
        }
    }
    let key_state = state.clone();
    let key = tokio::task::spawn_blocking(move || key_state.node.key(&key_state))
        .await
        .map_err(|error| ApiError::internal(&error))?
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The node key cannot be read"))?;
    let client = peer.ip().to_string();
    let signature = key.sign(wssh_domain::Timestamp::now().0, &client, &format!("{base}{target}"));
    let header_value = |text: &str| HeaderValue::from_str(text).map_err(|error| ApiError::internal(&error));
    upstream.headers_mut().insert(NODE_HEADER, header_value(&signature)?);
    upstream.headers_mut().insert(NODE_CLIENT_HEADER, header_value(&client)?);

    let unreachable = || ApiError::new(StatusCode::BAD_GATEWAY, "The node that runs this shell cannot be reached");
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(host))
        .await
        .map_err(|_| unreachable())?
        .map_err(|_| unreachable())?;
    let config = WebSocketConfig::default().max_message_size(Some(MAX_WIRE_BYTES)).max_frame_size(Some(MAX_WIRE_BYTES));
    let handshake = tokio_tungstenite::client_async_with_config(upstream, stream, Some(config));
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Err(_) => return Err(unreachable()),
        Ok(Ok((socket, _))) => socket,
        Ok(Err(WsError::Http(response))) => {
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let message = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
                .and_then(|body| body.get("message").and_then(|message| message.as_str()).map(str::to_owned))
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("Refused").to_owned());
            let message = message.strip_prefix("Error: ").unwrap_or(&message).to_owned();
            return Err(ApiError::new(status, message));
        }
        Ok(Err(_)) => return Err(unreachable()),
    };

    let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, header_value(&accept_key)?);
    headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(NATIVE_SUBPROTOCOL));

    let shell_guard = state.shell_opened();
    let mut stopping = state.stopping();
    tokio::spawn(async move {
        let _open = shell_guard;
        let upgraded = match hyper::upgrade::on(request).await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let client = super::server_socket(&state, upgraded).await;
        tracing::debug!("client relayed to the node that runs its shell");
        pipe(client, upstream, &mut stopping).await;
    });
    Ok(response)
}

/// Passes frames both ways until either side closes or the server stops; a close from one
/// side is passed to the other, and a stopping server closes the client with 1001. Pings are
/// answered hop by hop (the owning node's pings by this node), not passed on.
async fn pipe<C, U>(
    client: WebSocketStream<C>,
    upstream: WebSocketStream<U>,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut client_sink, mut client_stream) = client.split();
    let (mut upstream_sink, mut upstream_stream) = upstream.split();
    let down = async {
        while let Some(Ok(message)) = upstream_stream.next().await {
            match message {
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    let _ = client_sink.send(Message::Close(frame)).await;
                    return;
                }
                message => {
                    if client_sink.send(message).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = client_sink.send(close(CloseCode::Away, "the shell's node went away".to_owned())).await;
    };
    let up = async {
        while let Some(Ok(message)) = client_stream.next().await {
            match message {
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    let _ = upstream_sink.send(Message::Close(frame)).await;
                    return;
                }
                message => {
                    if upstream_sink.send(message).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = upstream_sink.close().await;
    };
    let stopped = tokio::select! {
        () = down => false,
        () = up => false,
        _ = stopping.wait_for(|stop| *stop) => true,
    };
    if stopped {
        let _ = client_sink.send(close(CloseCode::Away, "server shutting down".to_owned())).await;
        let _ = upstream_sink.close().await;
    }
}
