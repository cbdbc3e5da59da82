//! Behind a reverse proxy: the client's address and scheme from `Forwarded` or
//! `X-Forwarded-For`/`X-Forwarded-Proto` when (and only when) the connection comes from a
//! trusted proxy, and the base path the server is mounted under.

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use ipnet::IpNet;

use crate::respond::{self, Body};

/// Where and behind what the server runs.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The path prefix everything is served under (`/wssh`), or empty.
    pub base_path: String,
}

/// What a connection carries, set by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionInfo {
    /// The connection is TLS.
    pub(crate) tls: bool,
}

/// How the client reached the server, for links the server hands out: over TLS (directly or
/// through a trusted proxy), and under which base path.
#[derive(Debug, Clone)]
pub(crate) struct PublicBase {
    /// The client's side of the connection is TLS.
    pub(crate) secure: bool,
    /// The base path, empty at the root.
    pub(crate) base_path: String,
}

/// Who the client is, as far as can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Client {
    /// The client's address (a trusted proxy's report of it, or the peer's).
    pub(crate) addr: SocketAddr,
    /// The client reached us over TLS, directly or through a trusted proxy.
    pub(crate) secure: bool,
}

impl Deployment {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.trusted_proxies.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`: the nearest untrusted address in the forwarding chain when
    /// `peer` is a trusted proxy, `peer` itself otherwise.
    pub(crate) fn client(&self, headers: &HeaderMap, peer: SocketAddr, tls: bool) -> Client {
        let direct = Client { addr: SocketAddr::new(canonical(peer.ip()), peer.port()), secure: tls };
        if !self.trusts(peer.ip()) {
            return direct;
        }
        let hops = hops(headers);
        let mut client = direct;
        // Right to left: from the proxy next to us towards the client, while the hops are ours.
        for hop in hops.iter().rev() {
            let Some(address) = hop.address else { break };
            client = Client { addr: address, secure: hop.https.unwrap_or(client.secure) };
            if !self.trusts(address.ip()) {
                break;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// One hop of a forwarding chain: the address a proxy saw, and whether that hop was https.
#[derive(Debug)]
struct Hop {
    address: Option<SocketAddr>,
    https: Option<bool>,
}

/// The forwarding chain, client first: `Forwarded` when present, else `X-Forwarded-For` (with
/// `X-Forwarded-Proto`'s values for its last hops).
fn hops(headers: &HeaderMap) -> Vec<Hop> {
    let joined = |name: &str| -> Option<String> {
        let values: Vec<&str> = headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    if let Some(forwarded) = joined("forwarded") {
        let mut hops = Vec::new();
        for element in rfc7239::parse(&forwarded) {
            let Ok(element) = element else {
                // A malformed chain is believed no further than its last good hop.
                return Vec::new();
            };
            let address = element
                .forwarded_for
                .as_ref()
                .and_then(|node| node.ip().map(|ip| SocketAddr::new(canonical(*ip), node.port.unwrap_or(0))));
            let https = element.protocol.map(|protocol| protocol.eq_ignore_ascii_case("https"));
            hops.push(Hop { address, https });
        }
        return hops;
    }
    let Some(forwarded_for) = joined("x-forwarded-for") else { return Vec::new() };
    // X-Forwarded-Proto is aligned from the right: a proxy that sets it (nginx's `$scheme`,
    // Caddy) states the scheme of the connection whose address it appended last, whatever a
    // client put in front of that; a proxy that appends adds one value per hop.
    let protos: Vec<bool> = joined("x-forwarded-proto")
        .map(|proto| proto.split(',').map(|item| item.trim().eq_ignore_ascii_case("https")).collect())
        .unwrap_or_default();
    let count = forwarded_for.split(',').count();
    let skipped = count.saturating_sub(protos.len());
    forwarded_for
        .split(',')
        .enumerate()
        .map(|(index, item)| {
            let item = item.trim();
            let address = item
                .parse::<IpAddr>()
                .map(|ip| SocketAddr::new(canonical(ip), 0))
                .or_else(|_| item.parse::<SocketAddr>().map(|addr| SocketAddr::new(canonical(addr.ip()), addr.port())))
                .ok();
            Hop { address, https: index.checked_sub(skipped).and_then(|proto| protos.get(proto).copied()) }
        })
        .collect()
}

/// Takes the base path off the request's path. `Err` is the answer instead: a redirect from
/// the bare prefix to the prefix with a slash (so the page's relative URLs resolve), 404
/// outside the prefix.
pub(crate) fn strip_base_path<B>(request: &mut Request<B>, base: &str) -> Result<(), Box<Response<Body>>> {
    if base.is_empty() {
        return Ok(());
    }
    let path = request.uri().path();
    let query = request.uri().query().map(|query| format!("?{query}")).unwrap_or_default();
    if path == base {
        let mut response = respond::empty(StatusCode::PERMANENT_REDIRECT);
        if let Ok(location) = HeaderValue::from_str(&format!("{base}/{query}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return Err(Box::new(response));
    }
    let Some(rest) = path.strip_prefix(base).filter(|rest| rest.starts_with('/')) else {
        return Err(Box::new(respond::error(&crate::error::ApiError::not_found("Not found"))));
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = format!("{rest}{query}").parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    Ok(())
}

/// Cookies as the client sees them: `Secure` when it came over TLS, and their `Path` under
/// the base path.
pub(crate) fn adjust_cookies(response: &mut Response<Body>, secure: bool, base: &str) {
    if !secure && base.is_empty() {
        return;
    }
    let cookies: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect();
    if cookies.is_empty() {
        return;
    }
    response.headers_mut().remove(header::SET_COOKIE);
    for cookie in cookies {
        let mut attributes: Vec<String> = cookie.split(';').map(|part| part.trim().to_owned()).collect();
        for attribute in attributes.iter_mut().skip(1) {
            if let Some(path) = attribute.strip_prefix("Path=").filter(|_| !base.is_empty()) {
                *attribute = format!("Path={base}{path}");
            }
        }
        if secure && !attributes.iter().skip(1).any(|attribute| attribute.eq_ignore_ascii_case("secure")) {
            attributes.push("Secure".to_owned());
        }
        if let Ok(value) = HeaderValue::from_str(&attributes.join("; ")) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(trusted: &[&str]) -> Deployment {
        Deployment {
            trusted_proxies: trusted.iter().map(|net| net.parse().unwrap()).collect(),
            base_path: String::new(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5000)
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies = deployment(&["10.0.0.0/8", "::1/128"]);
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")]);
        let client = proxies.client(&forwarded, peer("10.1.1.1"), false);
        assert_eq!(client.addr.ip().to_string(), "203.0.113.9");
        assert!(client.secure);
        // From anyone else the headers are ignored.
        let client = proxies.client(&forwarded, peer("198.51.100.7"), false);
        assert_eq!(client, Client { addr: peer("198.51.100.7"), secure: false });
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let proxies = deployment(&["10.0.0.0/8"]);
        // A client that forges its own X-Forwarded-For gets its real address appended.
        let forged = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(proxies.client(&forged, peer("10.0.0.1"), false).addr.ip().to_string(), "203.0.113.9");
        let chain = headers(&[("forwarded", r#"for=1.2.3.4;proto=http, for="[2001:db8::1]:4711";proto=https"#)]);
        let client = proxies.client(&chain, peer("::ffff:10.0.0.1"), false);
        assert_eq!(client.addr.to_string(), "[2001:db8::1]:4711");
        assert!(client.secure);
        // Forwarded wins over X-Forwarded-For; unknown stops the walk at the last trusted hop.
        let both = headers(&[("forwarded", "for=unknown"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(proxies.client(&both, peer("10.0.0.1"), true), Client { addr: peer("10.0.0.1"), secure: true });
        // nginx's `$scheme` behind a forged X-Forwarded-For: the scheme of the real client's hop.
        let nginx = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9"), ("x-forwarded-proto", "https")]);
        assert_eq!(
            proxies.client(&nginx, peer("10.0.0.1"), false),
            Client { addr: "203.0.113.9:0".parse().unwrap(), secure: true }
        );
        let appended = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "http, https")]);
        assert!(!proxies.client(&appended, peer("10.0.0.1"), false).secure);
        let garbage = headers(&[("x-forwarded-for", "not-an-address")]);
        assert_eq!(proxies.client(&garbage, peer("10.0.0.1"), false).addr, peer("10.0.0.1"));
    }

    #[test]
    fn base_path_is_stripped_redirected_or_refused() {
        let mut request = Request::get("/wssh/sessions?x=1").body(()).unwrap();
        assert!(strip_base_path(&mut request, "/wssh").is_ok());
        assert_eq!(request.uri().to_string(), "/sessions?x=1");
        let mut request = Request::get("/wssh").body(()).unwrap();
        let response = strip_base_path(&mut request, "/wssh").unwrap_err();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[header::LOCATION], "/wssh/");
        for outside in ["/", "/wsshx/", "/sessions"] {
            let mut request = Request::get(outside).body(()).unwrap();
            assert_eq!(strip_base_path(&mut request, "/wssh").unwrap_err().status(), StatusCode::NOT_FOUND);
        }
    }

    #[test]
    fn cookies_get_secure_and_the_base_path() {
        let mut response = respond::empty(StatusCode::OK);
        response.headers_mut().append(header::SET_COOKIE, "r=1; Path=/auth; HttpOnly".parse().unwrap());
        adjust_cookies(&mut response, true, "/wssh");
        assert_eq!(response.headers()[header::SET_COOKIE], "r=1; Path=/wssh/auth; HttpOnly; Secure");
        let mut response = respond::empty(StatusCode::OK);
        response.headers_mut().append(header::SET_COOKIE, "r=1; Path=/auth; HttpOnly".parse().unwrap());
        adjust_cookies(&mut response, false, "");
        assert_eq!(response.headers()[header::SET_COOKIE], "r=1; Path=/auth; HttpOnly");
    }
}
