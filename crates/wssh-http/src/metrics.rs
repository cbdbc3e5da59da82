//! Metrics in the Prometheus text format (`prometheus-client`, the Prometheus project's own
//! Rust client), served by [`serve_metrics`] on a listener of their own.
//!
//! Counted as they happen: requests by route and status with their latency, shell bytes in
//! and out. Read when scraped: live shells, attached clients, password logins by outcome and
//! lockouts (from the authenticator), the password-hashing queue and the database pool.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

use crate::SharedState;

/// The database pool as a probe reads it: connections open, and of those idle.
pub type PoolProbe = Arc<dyn Fn() -> (u32, u32) + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Every metric, and the registry that names them.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    shell_bytes_in: Counter,
    shell_bytes_out: Counter,
    gows_shells: Gauge,
    live_shells: Gauge,
    clients: Gauge,
    logins: Family<OutcomeLabels, Counter>,
    lockouts: Counter,
    hashing_queue: Gauge,
    hashing_capacity: Gauge,
    pool_connections: Gauge,
    pool_idle: Gauge,
    /// One scrape at a time: counters read from elsewhere are brought up to date in it.
    scraping: Mutex<()>,
    pool: Mutex<Option<PoolProbe>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wssh");
        let metrics = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            shell_bytes_in: Counter::default(),
            shell_bytes_out: Counter::default(),
            gows_shells: Gauge::default(),
            live_shells: Gauge::default(),
            clients: Gauge::default(),
            logins: Family::default(),
            lockouts: Counter::default(),
            hashing_queue: Gauge::default(),
            hashing_capacity: Gauge::default(),
            pool_connections: Gauge::default(),
            pool_idle: Gauge::default(),
            scraping: Mutex::new(()),
            pool: Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests answered, by route and status", metrics.requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            metrics.latency.clone(),
        );
        registry.register(
            "shell_received_bytes",
            "WebSocket bytes received from shell clients",
            metrics.shell_bytes_in.clone(),
        );
        registry.register("shell_sent_bytes", "WebSocket bytes sent to shell clients", metrics.shell_bytes_out.clone());
        registry.register(
            "shells",
            "Programs running for shells (live shells and go_ws_sh connections)",
            metrics.live_shells.clone(),
        );
        registry.register("shell_clients", "WebSocket clients attached to shells", metrics.clients.clone());
        registry.register("logins", "Password logins, by outcome (success, failure, locked)", metrics.logins.clone());
        registry.register("lockouts", "Password logins refused by the lockout", metrics.lockouts.clone());
        registry.register(
            "password_hashing_queue",
            "Password hashing jobs waiting or running",
            metrics.hashing_queue.clone(),
        );
        registry.register(
            "password_hashing_capacity",
            "Password hashing jobs admitted at once",
            metrics.hashing_capacity.clone(),
        );
        registry.register("db_pool_connections", "Database connections open", metrics.pool_connections.clone());
        registry.register("db_pool_idle_connections", "Database connections open and idle", metrics.pool_idle.clone());
        Metrics { registry, ..metrics }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn request(&self, route: &'static str, status: StatusCode, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { route, status: status.as_u16() }).inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(elapsed.as_secs_f64());
    }

    /// Sets how the database pool is read.
    pub(crate) fn set_pool_probe(&self, probe: PoolProbe) {
        *self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(probe);
    }

    /// Counts a go_ws_sh shell's program as running until the guard drops.
    pub(crate) fn gows_shell_running(&self) -> GaugeGuard {
        self.gows_shells.inc();
        GaugeGuard(self.gows_shells.clone())
    }

    /// `io` with its bytes counted as shell bytes.
    pub(crate) fn count_shell_bytes<T>(&self, io: T) -> CountingIo<T> {
        CountingIo { inner: io, received: self.shell_bytes_in.clone(), sent: self.shell_bytes_out.clone() }
    }

    /// The text exposition, with everything read at scrape time brought up to date.
    fn scrape(&self, state: &crate::AppState) -> String {
        let _one_at_a_time = self.scraping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = state.auth.stats();
        let sync = |counter: &Counter, total: u64| counter.inc_by(total.saturating_sub(counter.get()));
        sync(&self.logins.get_or_create(&OutcomeLabels { outcome: "success" }), stats.logins_succeeded);
        sync(&self.logins.get_or_create(&OutcomeLabels { outcome: "failure" }), stats.logins_failed);
        sync(&self.logins.get_or_create(&OutcomeLabels { outcome: "locked" }), stats.logins_throttled);
        sync(&self.lockouts, stats.logins_throttled);
        let gauge = |gauge: &Gauge, value: usize| gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        gauge(&self.hashing_queue, stats.hashing_in_queue);
        gauge(&self.hashing_capacity, stats.hashing_capacity);
        gauge(&self.live_shells, state.shells.live() + usize::try_from(self.gows_shells.get()).unwrap_or(0));
        gauge(&self.clients, state.open_shells());
        let probe = self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(probe) = probe {
            let (connections, idle) = probe();
            self.pool_connections.set(i64::from(connections));
            self.pool_idle.set(i64::from(idle));
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Takes one off a gauge when dropped.
pub(crate) struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The route a request is counted under: a fixed name per route or surface, `unmatched` for
/// anything that found none, so no client can grow the label set.
pub(crate) fn route_label(path: &str, upgrade: bool, status: StatusCode) -> &'static str {
    const EXACT: &[&str] = &[
        "/",
        "/healthz",
        "/tokens",
        "/credentials",
        "/sessions",
        "/test",
        "/auth/login",
        "/auth/session",
        "/auth/logout",
        "/api/openapi.json",
    ];
    if upgrade {
        return if status == StatusCode::NOT_FOUND { "unmatched" } else { "shell" };
    }
    if status == StatusCode::NOT_FOUND {
        return "unmatched";
    }
    if let Some(route) = EXACT.iter().find(|route| **route == path) {
        return route;
    }
    if path.starts_with("/assets/") {
        return "/assets/*";
    }
    if crate::shell::api::matches(path) {
        return "/api/shells/*";
    }
    if crate::access_token::matches(path) {
        return "access_token";
    }
    if crate::alist::matches(path) {
        return "alist";
    }
    if crate::rbac::matches(path) {
        return "rbac";
    }
    "other"
}

/// Serves `GET /metrics` (and nothing else) on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&request, &state)) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            // A scraper that holds a connection open gets at most a minute.
            let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
        });
    }
}

fn answer(request: &Request<hyper::body::Incoming>, state: &crate::AppState) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if request.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: metrics are at /metrics\n".to_owned())
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "GET /metrics\n".to_owned())
    } else {
        (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", state.metrics.scrape(state))
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A byte stream whose reads and writes are counted.
pub(crate) struct CountingIo<T> {
    inner: T,
    received: Counter,
    sent: Counter,
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.received.inc_by(read as u64);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &result {
            self.sent.inc_by(*written as u64);
        }
        result
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
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = &result {
            self.sent.inc_by(*written as u64);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_fixed_set() {
        assert_eq!(route_label("/sessions", false, StatusCode::OK), "/sessions");
        assert_eq!(route_label("/assets/app.js", false, StatusCode::OK), "/assets/*");
        assert_eq!(route_label("/whatever/123", false, StatusCode::NOT_FOUND), "unmatched");
        assert_eq!(route_label("/bash", true, StatusCode::SWITCHING_PROTOCOLS), "shell");
        assert_eq!(route_label("/no-such", true, StatusCode::NOT_FOUND), "unmatched");
    }
}
