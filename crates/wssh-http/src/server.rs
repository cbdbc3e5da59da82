//! The accept loop: plain TCP or TLS, HTTP/1.1 and HTTP/2 with upgrades, graceful shutdown,
//! and the listener limits ([`crate::ListenerLimits`]): connection caps, header-read, idle,
//! TLS-handshake and write timeouts.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::limits::{Activity, LimitedIo};
use crate::{SharedState, router};

/// How long in-flight requests may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` resolves, then stops accepting, lets in-flight requests
/// finish (up to ten seconds) and returns. With `tls`, every connection is TLS. The state's
/// [`crate::ListenerLimits`] apply; its connection caps are shared by every listener.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: SharedState,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = state.listener_limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    // Connections still speaking HTTP hold a sender; shutdown waits until all are dropped.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let (closing_tx, closing_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(permit) = state.connections.admit(peer.ip(), &limits) else {
            // Over a cap: closed at once, before a byte is read.
            tracing::debug!(%peer, open = state.connections.open(), "connection refused: limit reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let stream = LimitedIo::new(stream, activity.clone(), limits.write_timeout, permit);
        let connection = Connection {
            state: state.clone(),
            builder: builder.clone(),
            activity,
            peer,
            tls: tls.is_some(),
            closing: closing_rx.clone(),
            _open: open_tx.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection.serve(stream).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection.serve(stream).await,
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(open_tx);
    if tokio::time::timeout(SHUTDOWN_GRACE, open_rx.recv()).await.is_err() {
        tracing::warn!("in-flight requests did not finish in time");
    }
    Ok(())
}

/// One accepted connection.
struct Connection {
    state: SharedState,
    builder: auto::Builder<TokioExecutor>,
    activity: Arc<Activity>,
    peer: SocketAddr,
    /// The connection is TLS (the router tells the client's scheme from it).
    tls: bool,
    closing: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

impl Connection {
    /// Serves HTTP on `stream` until the client leaves, the connection falls idle or stalls,
    /// it upgrades to a WebSocket, or the server shuts down.
    async fn serve<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.state.listener_limits;
        let (state, activity, peer) = (self.state.clone(), self.activity.clone(), self.peer);
        let info = crate::proxy::ConnectionInfo { tls: self.tls };
        let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(info);
            let state = state.clone();
            let activity = activity.clone();
            async move {
                let _request = activity.request();
                let response = router::handle(request, state, peer).await;
                if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                    activity.mark_upgraded();
                }
                Ok::<_, Infallible>(response)
            }
        });
        let connection = self.builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut ticks = tokio::time::interval(tick);
        let mut ending = false;
        let result = loop {
            tokio::select! {
                result = connection.as_mut() => break result,
                changed = self.closing.changed(), if !ending => {
                    if changed.is_err() || *self.closing.borrow() {
                        connection.as_mut().graceful_shutdown();
                        ending = true;
                    }
                }
                _ = ticks.tick() => {
                    let quiet = self.activity.quiet_for();
                    if quiet < limits.idle_timeout {
                        continue;
                    }
                    if self.activity.in_flight() == 0 && !ending {
                        // Idle: close between requests.
                        connection.as_mut().graceful_shutdown();
                        ending = true;
                    } else {
                        // A request or a goodbye that moves no byte (a body trickling in, a
                        // client that will not take its reply): dropped.
                        tracing::debug!(%peer, "connection stalled; dropped");
                        return;
                    }
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, %peer, "connection ended with an error");
        }
    }
}
