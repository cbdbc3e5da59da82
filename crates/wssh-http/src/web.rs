//! The browser terminal: the page served at `/` and its static assets under `/assets/`.
//!
//! Our own files (`web/index.html`, `app.js`, `account.js`, `recordings.js`, `app.css`,
//! `icon.svg`) are embedded from the source tree; xterm.js, its fit addon and asciinema-player
//! are embedded from `OUT_DIR`, where `build.rs` put
//! them after `npm ci`. Without them (no Node at build time) they are served empty and the
//! page says that the terminal was not built.
//!
//! Every answer carries a strict Content-Security-Policy. The page's scripts come only from
//! this server (`script-src 'self'`, no inline script); style elements need the nonce that is
//! fresh in each page (xterm.js creates `<style>` elements; the page hands them the nonce), and
//! style attributes are allowed (`style-src-attr 'unsafe-inline'`: xterm.js colours cells with
//! them; an attribute styles one element and cannot select or read others). WebAssembly may be
//! compiled (`'wasm-unsafe-eval'`): asciinema-player's terminal emulator is a WebAssembly module
//! inside its own script; this does not allow `eval` or `new Function` on JavaScript.

use std::net::SocketAddr;
use std::sync::{LazyLock, OnceLock};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::SharedState;
use crate::error::ApiError;
use crate::respond::{self, Body};

include!(concat!(env!("OUT_DIR"), "/vendor.rs"));

/// The page, with [`NONCE_PLACEHOLDER`] where each answer's nonce goes.
const INDEX: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/index.html"));
/// Replaced by the nonce in [`INDEX`].
const NONCE_PLACEHOLDER: &str = "__CSP_NONCE__";

/// Where the assets live.
const ASSETS_PREFIX: &str = "/assets/";

/// A file under `/assets/`.
struct Asset {
    /// Its name after `/assets/`.
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

/// Every asset; an empty body means "not built" (only possible for the vendored files).
const ASSETS: [Asset; 10] = [
    Asset {
        name: "account.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/account.js")),
    },
    Asset {
        name: "recordings.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/recordings.js")),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/app.js")),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/app.css")),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/icon.svg")),
    },
    Asset {
        name: "xterm.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(env!("OUT_DIR"), "/xterm.js")),
    },
    Asset {
        name: "xterm.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!(concat!(env!("OUT_DIR"), "/xterm.css")),
    },
    Asset {
        name: "addon-fit.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(env!("OUT_DIR"), "/addon-fit.js")),
    },
    Asset {
        name: "asciinema-player.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(env!("OUT_DIR"), "/asciinema-player.js")),
    },
    Asset {
        name: "asciinema-player.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!(concat!(env!("OUT_DIR"), "/asciinema-player.css")),
    },
];

/// Each asset's version (a hash of its bytes), computed once.
static VERSIONS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|asset| format!("{:016x}", fnv1a(asset.body))).collect());

/// An asset's gzip and brotli copies, where smaller than the original.
type Compressed = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Each asset compressed once, the first time it is asked for: (gzip, brotli), each kept only
/// when smaller than the original. Per asset, so that the first request for a small file does
/// not wait for the large ones.
static COMPRESSED: [OnceLock<Compressed>; ASSETS.len()] = [const { OnceLock::new() }; ASSETS.len()];

/// The compressed copies of the asset at `position` in [`ASSETS`].
fn compressed(position: usize) -> &'static Compressed {
    COMPRESSED[position].get_or_init(|| {
        let body = ASSETS[position].body;
        let smaller = |bytes: Vec<u8>| (bytes.len() < body.len()).then_some(bytes);
        (gzip(body).and_then(smaller), brotli(body).and_then(smaller))
    })
}

/// The OpenAPI document of the API, as served at [`OPENAPI_PATH`].
const OPENAPI: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/openapi.json"));
/// Where the OpenAPI document is served.
const OPENAPI_PATH: &str = "/api/openapi.json";

/// Compresses every asset now (it takes a moment): called on a blocking thread at start, so
/// that requests rarely wait for it (one that comes first compresses just its own asset).
pub fn prepare_assets() {
    for position in 0..ASSETS.len() {
        compressed(position);
    }
}

/// Whether `path` belongs to this surface.
pub(crate) fn matches(path: &str) -> bool {
    path == "/" || path.starts_with(ASSETS_PREFIX) || path == OPENAPI_PATH
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

fn brotli(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut out = Vec::new();
    {
        // Quality 9 of 11: within a few per cent of the best, in a fraction of the time.
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        writer.write_all(bytes).ok()?;
        writer.flush().ok()?;
    }
    Some(out)
}

/// A content coding a response can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Brotli,
}

/// Whether the request's `Accept-Encoding` admits `coding` (a listed coding with a non-zero
/// weight, or `*`).
pub(crate) fn accepts(headers: &http::HeaderMap, coding: &str) -> bool {
    let mut star = false;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
    {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let weight = parts
            .filter_map(|part| part.trim().strip_prefix("q="))
            .find_map(|weight| weight.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return weight > 0.0;
        }
        if name == "*" {
            star = weight > 0.0;
        }
    }
    star
}

/// What `Allow` says on a 405 for one of this surface's paths.
pub(crate) const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Answers one request of this surface.
pub(crate) async fn handle(request: Request<Incoming>, _state: SharedState, _peer: SocketAddr) -> Response<Body> {
    let mut response = answer(&request).unwrap_or_else(|error| respond::error(&error));
    add_security_headers(&mut response);
    response
}

fn answer(request: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(ApiError::method_not_allowed());
    }
    let path = request.uri().path();
    if path == "/" {
        return Ok(index(request));
    }
    if path == OPENAPI_PATH {
        let mut response = Response::new(respond::full(Bytes::from_static(OPENAPI.as_bytes())));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok(response);
    }
    let name = path.strip_prefix(ASSETS_PREFIX).unwrap_or_default();
    let (position, asset) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, asset)| asset.name == name)
        .ok_or_else(|| ApiError::not_found("Not found"))?;
    let version = &VERSIONS[position];
    let (gzipped, brotlied) = compressed(position);
    let coding = match (brotlied, gzipped) {
        (Some(_), _) if accepts(request.headers(), "br") => Coding::Brotli,
        (_, Some(_)) if accepts(request.headers(), "gzip") => Coding::Gzip,
        _ => Coding::Identity,
    };
    // One entity tag per representation: a cache must not answer a gzip request with brotli.
    let etag = match coding {
        Coding::Identity => format!("\"{version}\""),
        Coding::Gzip => format!("\"{version}-gz\""),
        Coding::Brotli => format!("\"{version}-br\""),
    };
    let unchanged = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if unchanged {
        respond::empty(StatusCode::NOT_MODIFIED)
    } else {
        let body: Bytes = match (coding, gzipped, brotlied) {
            (Coding::Brotli, _, Some(bytes)) | (Coding::Gzip, Some(bytes), _) => {
                Bytes::from_static(bytes_static(bytes))
            }
            _ => Bytes::from_static(asset.body),
        };
        let mut response = Response::new(respond::full(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let headers = response.headers_mut();
    match coding {
        Coding::Identity => {}
        Coding::Gzip => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        Coding::Brotli => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        }
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // The page names each asset with its version (`?v=…`): that URL never changes meaning and
    // is cached for a year. Any other URL is revalidated on every use.
    let versioned = request.uri().query().is_some_and(|query| query == format!("v={version}"));
    let cache = if versioned { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

/// The page, with a fresh nonce in it and in its policy.
fn index(request: &Request<Incoming>) -> Response<Body> {
    let nonce = nonce();
    let mut page = INDEX.replace(NONCE_PLACEHOLDER, &nonce);
    for (asset, version) in ASSETS.iter().zip(VERSIONS.iter()) {
        page = page.replace(&format!("\"assets/{}\"", asset.name), &format!("\"assets/{}?v={version}\"", asset.name));
    }
    let mut response = Response::new(respond::full(Bytes::from(page)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(policy) = HeaderValue::from_str(&policy(Some(&nonce), authority(request).as_deref())) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if !VENDOR_BUILT {
        headers.insert("x-wssh-terminal", HeaderValue::from_static("not-built"));
    }
    response
}

/// The host and port the browser used, when it is plainly one (for `connect-src`: not every
/// browser lets `'self'` cover `ws:` and `wss:`).
fn authority(request: &Request<Incoming>) -> Option<String> {
    let authority = match request.uri().authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => request.headers().get(header::HOST)?.to_str().ok()?.to_owned(),
    };
    let plain = !authority.is_empty()
        && !authority.contains('@')
        && authority.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte));
    plain.then_some(authority)
}

/// The Content-Security-Policy: scripts, styles, images, fonts and connections from this
/// origin only; no plugins, no frames, no `<base>`, no form posts elsewhere.
fn policy(nonce: Option<&str>, authority: Option<&str>) -> String {
    let style_elem = match nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}'"),
        None => "'self'".to_owned(),
    };
    let sockets = authority.map(|host| format!(" ws://{host} wss://{host}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; style-src-elem {style_elem}; \
         style-src-attr 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'{sockets}; \
         manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Headers on every answer of this surface, errors included.
fn add_security_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(ASSET_POLICY));
    }
}

/// The policy of everything but the page: nothing may run or load from an asset.
const ASSET_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// 128 random bits in hex: a nonce for one page.
fn nonce() -> String {
    let mut bytes = [0_u8; 16];
    wssh_auth::secret::fill_random(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The compressed bytes, which live as long as the process (they are in a `static`).
fn bytes_static(bytes: &'static Vec<u8>) -> &'static [u8] {
    bytes.as_slice()
}

/// FNV-1a, 64 bits: enough to tell two builds' files apart for `ETag`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surface_paths() {
        assert!(matches("/"));
        assert!(matches("/assets/app.js"));
        assert!(!matches("/assets"));
        assert!(!matches("/bash"));
        assert!(!matches("/sessions"));
    }

    #[test]
    fn the_page_has_a_placeholder_and_no_inline_script() {
        assert!(INDEX.contains(NONCE_PLACEHOLDER));
        // Every <script> has a src: the policy allows no inline script.
        for tag in INDEX.split("<script").skip(1) {
            let head = tag.split('>').next().unwrap_or_default();
            assert!(head.contains("src=\"assets/"), "inline script in index.html: {head}");
        }
    }

    #[test]
    fn policy_is_strict() {
        let policy = policy(Some("abc"), Some("127.0.0.1:8080"));
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval';"));
        assert!(policy.contains("style-src-elem 'self' 'nonce-abc';"));
        assert!(policy.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"));
        assert!(!policy.contains("'unsafe-eval'"));
        assert!(!policy.contains("script-src 'self' 'unsafe-inline'"));
    }

    #[test]
    fn nonces_differ() {
        let (one, two) = (nonce(), nonce());
        assert_eq!(one.len(), 32);
        assert_ne!(one, two);
    }
}
