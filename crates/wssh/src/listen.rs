//! Listen addresses as people write them: `PORT`, `:PORT`, `HOST:PORT`, `[V6]:PORT`, with
//! host names resolved.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where to listen, before host names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListenAddress {
    /// An address as it is.
    Socket(SocketAddr),
    /// A host name and port, resolved when binding.
    Name(String, u16),
}

/// What `--listen` accepts, for messages.
pub(crate) const LISTEN_FORMS: &str = "PORT, :PORT, HOST:PORT or [IPV6]:PORT";

impl ListenAddress {
    /// Reads `text`: `PORT` is loopback (127.0.0.1), `:PORT` every IPv4 interface, `HOST:PORT`
    /// an address or host name, `[V6]:PORT` an IPv6 address.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || format!("invalid listen address {text:?}: expected {LISTEN_FORMS}");
        let port = |port: &str| port.parse::<u16>().map_err(|_| invalid());
        if text.bytes().all(|byte| byte.is_ascii_digit()) && !text.is_empty() {
            return Ok(ListenAddress::Socket(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port(text)?)));
        }
        if let Some(rest) = text.strip_prefix(':') {
            return Ok(ListenAddress::Socket(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port(rest)?)));
        }
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(ListenAddress::Socket(address));
        }
        let (host, rest) = text.rsplit_once(':').ok_or_else(invalid)?;
        let valid_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                    && !label.starts_with('-')
            });
        if !valid_name {
            return Err(invalid());
        }
        Ok(ListenAddress::Name(host.to_owned(), port(rest)?))
    }

    /// The address or host name with `port`, as a listener's `host` and `port` say.
    pub(crate) fn from_host(host: &str, port: u16) -> Result<Self, String> {
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => Ok(ListenAddress::Socket(SocketAddr::new(ip, port))),
            Err(_) => ListenAddress::parse(&format!("{host}:{port}")),
        }
    }

    /// Every address to bind: one, or each address the host name resolves to.
    pub(crate) async fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        match self {
            ListenAddress::Socket(address) => Ok(vec![*address]),
            ListenAddress::Name(host, port) => {
                let mut addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .map_err(|error| format!("cannot resolve {host}: {error}"))?
                    .collect();
                addresses.sort();
                addresses.dedup();
                if addresses.is_empty() {
                    return Err(format!("{host} resolves to no address"));
                }
                Ok(addresses)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form() {
        let socket = |text: &str| match ListenAddress::parse(text).unwrap() {
            ListenAddress::Socket(address) => address.to_string(),
            ListenAddress::Name(host, port) => format!("name {host} {port}"),
        };
        assert_eq!(socket("7681"), "127.0.0.1:7681");
        assert_eq!(socket(":7681"), "0.0.0.0:7681");
        assert_eq!(socket("10.1.2.3:80"), "10.1.2.3:80");
        assert_eq!(socket("[::1]:7681"), "[::1]:7681");
        assert_eq!(socket("localhost:7681"), "name localhost 7681");
        assert_eq!(socket("web-1.example.org:443"), "name web-1.example.org 443");
        for bad in ["", "70000", ":x", "host", "ho st:1", "::1:80", "a:b:c", "-x:1", "localhost:"] {
            let error = ListenAddress::parse(bad).unwrap_err();
            assert!(error.contains(LISTEN_FORMS), "{bad}: {error}");
        }
        assert_eq!(ListenAddress::from_host("::1", 5).unwrap(), ListenAddress::parse("[::1]:5").unwrap());
    }
}
