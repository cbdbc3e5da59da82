//! Routing: one function from a request to a response, and the request log line.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::SharedState;
use crate::error::ApiError;
use crate::gows;
use crate::respond::{self, Body, LoggedUser};
use crate::shell;
use crate::surface;
use crate::{access_token, alist, api, login_api, rbac, web};

/// The largest request body accepted (1 MiB); larger ones get 413.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Answers one request, and logs it: client, method, path (never the query), status,
/// duration, user. Behind a trusted proxy the client is the one it forwards for; under a base
/// path the routes below see the path without it.
pub(crate) async fn handle(mut request: Request<Incoming>, state: SharedState, peer: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let tls = request.extensions().get::<crate::proxy::ConnectionInfo>().is_some_and(|connection| connection.tls);
    let client = state.deployment.client(request.headers(), peer, tls);
    let peer = client.addr;
    let stripped = crate::proxy::strip_base_path(&mut request, &state.deployment.base_path);
    let routed_path = request.uri().path().to_owned();
    let upgrade = shell::is_upgrade(&request);
    let base_path = state.deployment.base_path.clone();
    request.extensions_mut().insert(crate::proxy::PublicBase { secure: client.secure, base_path: base_path.clone() });
    let metrics = state.clone();
    let metrics = &metrics.metrics;
    let mut response = match stripped {
        Ok(()) => route(request, state, peer).await.unwrap_or_else(|error| respond::error(&error)),
        Err(response) => *response,
    };
    crate::proxy::adjust_cookies(&mut response, client.secure, &base_path);
    // A surface that knows its own methods has set `Allow` already.
    if response.status() == StatusCode::METHOD_NOT_ALLOWED && !response.headers().contains_key(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allowed_methods(&routed_path)));
    }
    respond::add_cors(&mut response);
    let user = response.extensions().get::<LoggedUser>().map(|user| user.0.clone());
    metrics.request(
        crate::metrics::route_label(&routed_path, upgrade, response.status()),
        response.status(),
        started.elapsed(),
    );
    tracing::info!(
        client = %peer.ip(),
        %method,
        path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        user = user.as_deref().unwrap_or("-"),
        "request"
    );
    response
}

async fn route(
    mut request: Request<Incoming>,
    state: SharedState,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    if request.method() == Method::OPTIONS {
        return Ok(respond::preflight(allow_for(request.uri().path())));
    }
    if shell::is_upgrade(&request) {
        return shell::open(request, state, peer).await;
    }
    // HEAD is GET without the body: hyper leaves the body off the wire for a HEAD request and
    // keeps its Content-Length.
    if request.method() == Method::HEAD {
        *request.method_mut() = Method::GET;
    }
    // Each further surface owns its paths and answers in its own envelope.
    let path = request.uri().path();
    if web::matches(path) {
        return Ok(web::handle(request, state, peer).await);
    }
    if shell::api::matches(path) {
        return Ok(shell::api::handle(request, state, peer).await);
    }
    if api::matches(path) {
        return Ok(surface::handle::<api::Api>(request, state, peer).await);
    }
    if alist::matches(path) {
        return Ok(surface::handle::<alist::Alist>(request, state, peer).await);
    }
    if access_token::matches(path) {
        return Ok(surface::handle::<access_token::AccessTokens>(request, state, peer).await);
    }
    if rbac::matches(path) {
        return Ok(surface::handle::<rbac::Rbac>(request, state, peer).await);
    }
    if login_api::Route::at(path).is_some() {
        return Ok(surface::handle::<login_api::LoginApi>(request, state, peer).await);
    }
    match path {
        "/healthz" => healthz(request.method()),
        "/tokens" | "/credentials" | "/sessions" => Ok(surface::handle::<gows::GoWsSh>(request, state, peer).await),
        _ => Err(ApiError::not_found("Not found")),
    }
}

/// What `Allow` says on `OPTIONS` for `path`: the methods of the route there, asked of the
/// surface that owns it (in the order `route` asks them), so that it lists what the path
/// really answers.
fn allow_for(path: &str) -> &'static str {
    fn probe<S: surface::Surface>(path: &str) -> Option<&'static str> {
        match S::route(path, &Method::OPTIONS, &http::HeaderMap::new()) {
            Err(surface::Misroute::MethodNotAllowed(allow)) => Some(allow.unwrap_or_else(|| allowed_methods(path))),
            _ => None,
        }
    }
    if web::matches(path) {
        return web::ALLOWED_METHODS;
    }
    if shell::api::matches(path) {
        return shell::api::allowed_methods(path).unwrap_or("OPTIONS");
    }
    let owned = if api::matches(path) {
        probe::<api::Api>(path)
    } else if alist::matches(path) {
        probe::<alist::Alist>(path)
    } else if access_token::matches(path) {
        probe::<access_token::AccessTokens>(path)
    } else if rbac::matches(path) {
        probe::<rbac::Rbac>(path)
    } else {
        probe::<login_api::LoginApi>(path)
    };
    owned.unwrap_or(match path {
        "/healthz" | "/test" | "/tokens" | "/credentials" | "/sessions" => allowed_methods(path),
        // Anything else is a session's name: a shell's WebSocket upgrade.
        _ => "GET, OPTIONS",
    })
}

/// What `Allow` says on a 405 for `path`.
fn allowed_methods(path: &str) -> &'static str {
    match path {
        "/healthz" => "GET, HEAD, OPTIONS",
        "/test" => "GET, OPTIONS",
        "/auth/login" | "/auth/session" | "/auth/logout" => "POST, OPTIONS",
        "/sessions" => "GET, POST, PUT, DELETE, COPY, MOVE, OPTIONS",
        page if web::matches(page) => web::ALLOWED_METHODS,
        _ => "GET, POST, PUT, DELETE, OPTIONS",
    }
}

fn healthz(method: &Method) -> Result<Response<Body>, ApiError> {
    match *method {
        Method::GET | Method::HEAD => Ok(respond::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
}

/// How much of an oversized body is read and thrown away before answering 413, so that a
/// client still sending gets the answer rather than a connection reset.
const MAX_DISCARD_BYTES: usize = 16 * MAX_BODY_BYTES;

/// Reads the whole body of a request with `headers`, at most [`MAX_BODY_BYTES`].
pub(crate) async fn read_incoming(headers: &HeaderMap, mut body: Incoming) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        discard(&mut body).await;
        return Err(too_large());
    }
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::bad_request("Could not read the request body"))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > MAX_BODY_BYTES {
                discard(&mut body).await;
                return Err(too_large());
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

/// Reads and drops what is left of `body`: up to [`MAX_DISCARD_BYTES`], for at most five
/// seconds, and only while the client keeps sending (a quarter second of silence ends it).
async fn discard(body: &mut Incoming) {
    use std::time::Duration;
    let drain = async {
        let mut seen = 0;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_millis(250), body.frame()).await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > MAX_DISCARD_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}
