//! What the hardening figures (11 to 13, issue 18) share: clients on many loopback addresses
//! (on Linux every 127.0.0.0/8 address can be bound, so the server sees each as a client of
//! its own), a `/healthz` prober, and a password login.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::http::{self, Connection};
use super::stats::percentile;
use super::target::Result;

/// The `/healthz` prober's address.
pub(crate) const PROBER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The real user's address.
pub(crate) const USER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// How long one probe or login may take before it counts as an error.
pub(crate) const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// The `index`-th address of the loopback block `127.0.BLOCK.0/24` (1 to 250).
pub(crate) fn address(block: u8, index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, block, (index % 250 + 1) as u8))
}

/// `/healthz` probes, each on a new connection (as a load balancer's), one every `period`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Probes {
    /// Round trips of the probes answered 200, in microseconds.
    pub(crate) samples_us: Vec<f64>,
    /// Probes not answered 200 within [`REQUEST_LIMIT`].
    pub(crate) errors: usize,
}

impl Probes {
    /// The `p`-th percentile, in milliseconds.
    pub(crate) fn ms(&self, p: f64) -> f64 {
        percentile(&self.samples_us, p) / 1e3
    }
}

/// Probes `/healthz` of `addr` from [`PROBER`] every `period` (a probe runs to its end before
/// the next) until `stop` resolves.
pub(crate) async fn probe_healthz(
    addr: SocketAddr,
    period: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Probes {
    let mut stop = std::pin::pin!(stop);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = Probes::default();
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let sent = Instant::now();
        let probe = async {
            let mut connection = Connection::open_from(addr, PROBER).await?;
            let request = http::request(::http::Method::GET, addr, "/healthz", None, None)?;
            Ok::<u16, super::target::Error>(connection.exchange(request, REQUEST_LIMIT).await?.status)
        };
        match tokio::time::timeout(REQUEST_LIMIT, probe).await {
            Ok(Ok(200)) => probes.samples_us.push(sent.elapsed().as_secs_f64() * 1e6),
            _ => probes.errors += 1,
        }
    }
    probes
}

/// `POST /auth/login` for `username` from `source` on a new connection: the status and the
/// time from connecting to the whole reply.
pub(crate) async fn login(addr: SocketAddr, source: IpAddr, username: &str, password: &str) -> Result<(u16, Duration)> {
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let request = http::request(::http::Method::POST, addr, "/auth/login", None, Some(&body))?;
    let sent = Instant::now();
    let mut connection = Connection::open_from(addr, source).await?;
    let reply = connection.exchange(request, REQUEST_LIMIT).await?;
    Ok((reply.status, sent.elapsed()))
}
