//! Listener limits: timeouts for every phase of a connection, caps on connections in total and
//! per client address, and the I/O wrapper that enforces them.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The limits every listener applies. See `docs/security.md` for each default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// A request's headers must arrive within this; it is also how long an idle HTTP/1
    /// keep-alive connection waits for its next request.
    pub header_read_timeout: Duration,
    /// A connection that moves no byte for this long (outside a WebSocket) is closed.
    pub idle_timeout: Duration,
    /// A TLS handshake must complete within this.
    pub tls_handshake_timeout: Duration,
    /// A reply that the client does not read for this long is dropped with its connection.
    pub write_timeout: Duration,
    /// Open connections (HTTP and WebSocket) across all listeners.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64).
    pub max_connections_per_address: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_address: 256,
        }
    }
}

impl ListenerLimits {
    /// The default total cap for a process allowed `open_files` descriptors: three quarters of
    /// them, less a reserve for the database, the log and the shells' terminals.
    pub fn max_connections_for(open_files: u64) -> usize {
        let usable = open_files.saturating_mul(3) / 4;
        usize::try_from(usable.saturating_sub(64).max(16)).unwrap_or(usize::MAX)
    }
}

/// The key a client address is counted under: an IPv4 address, or an IPv6 /64 (one host's
/// usual allocation), with IPv4-mapped IPv6 addresses counted as IPv4.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Counts open connections, in total and per client address.
#[derive(Debug, Default)]
pub(crate) struct ConnectionGate {
    total: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionGate {
    /// A permit for one more connection from `address`, or `None` when a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr, limits: &ListenerLimits) -> Option<ConnectionPermit> {
        let key = address_key(address);
        let mut per_address = self.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.total.load(Ordering::Relaxed) >= limits.max_connections {
            return None;
        }
        let count = per_address.entry(key).or_insert(0);
        if *count >= limits.max_connections_per_address {
            return None;
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionPermit { gate: self.clone(), key })
    }

    /// Open connections in total.
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    gate: Arc<ConnectionGate>,
    key: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut per_address = self.gate.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_address.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                per_address.remove(&self.key);
            }
        }
        self.gate.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Milliseconds since the first call, a cheap monotonic clock for activity stamps.
fn now_millis() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What the accept loop watches on one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    /// When a byte last moved, in [`now_millis`].
    last: AtomicU64,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Whether the connection became a WebSocket (its own layer then owns its liveness).
    upgraded: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Activity {
            last: AtomicU64::new(now_millis()),
            in_flight: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        self.last.store(now_millis(), Ordering::Relaxed);
    }

    /// How long no byte has moved.
    pub(crate) fn quiet_for(&self) -> Duration {
        Duration::from_millis(now_millis().saturating_sub(self.last.load(Ordering::Relaxed)))
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Marks a request as started; the guard marks it answered.
    pub(crate) fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        RequestGuard(self.clone())
    }

    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Relaxed)
    }
}

/// A request being answered (see [`Activity::request`]).
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A connection's stream with its permit: notes activity, and fails a write the client has
/// not accepted for the write timeout (outside WebSockets). The permit lives as long as the
/// stream, through an upgrade to a WebSocket.
pub(crate) struct LimitedIo<S> {
    inner: S,
    activity: Arc<Activity>,
    write_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    _permit: ConnectionPermit,
}

impl<S> LimitedIo<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>, write_timeout: Duration, permit: ConnectionPermit) -> Self {
        LimitedIo { inner, activity, write_timeout, stalled: None, _permit: permit }
    }

    /// Called when a write or flush is pending: errors once it has been pending too long.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.activity.is_upgraded() {
            self.stalled = None;
            return Poll::Pending;
        }
        let timeout = self.write_timeout;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))
    }

    fn progressed(&mut self) {
        self.stalled = None;
        self.activity.touch();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LimitedIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.touch();
        }
        Poll::Ready(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LimitedIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.check_stall(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, buffers) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.check_stall(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.check_stall(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_total() {
        let gate = Arc::new(ConnectionGate::default());
        let limits = ListenerLimits { max_connections: 3, max_connections_per_address: 2, ..ListenerLimits::default() };
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let first = gate.admit(one, &limits).unwrap();
        let _second = gate.admit(one, &limits).unwrap();
        assert!(gate.admit(one, &limits).is_none(), "per-address cap");
        let _third = gate.admit(two, &limits).unwrap();
        assert!(gate.admit(two, &limits).is_none(), "total cap");
        drop(first);
        assert_eq!(gate.open(), 2);
        assert!(gate.admit(one, &limits).is_some(), "a freed place is reusable");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_as_ipv4() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let c: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn default_total_cap_fits_a_small_descriptor_limit() {
        assert!(ListenerLimits::max_connections_for(1024) < 1024 - 200);
        assert!(ListenerLimits::max_connections_for(1_048_576) > 100_000);
    }
}
