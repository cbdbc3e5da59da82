//! Building responses: JSON bodies, the go_ws_sh error envelope, CORS headers.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{Either, Full, StreamBody};

use crate::error::ApiError;

/// The body type of every response: a buffer, or (a recording) streamed from disk.
pub(crate) type Body = Either<Full<Bytes>, Streamed>;

/// A body read piece by piece while it is sent.
pub(crate) type Streamed =
    StreamBody<futures_util::stream::BoxStream<'static, Result<hyper::body::Frame<Bytes>, std::io::Error>>>;

/// A body of `bytes`, whole.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(bytes.into()))
}

/// A body streamed from `chunks` as they come.
pub(crate) fn streamed(
    chunks: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Body {
    use futures_util::StreamExt;
    Either::Right(StreamBody::new(chunks.map(|chunk| chunk.map(hyper::body::Frame::data)).boxed()))
}

/// The name of the authenticated user, left in response extensions for the request log.
#[derive(Debug, Clone)]
pub(crate) struct LoggedUser(pub(crate) String);

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_bytes(status, Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())))
}

/// A response with a JSON body serialized already.
pub(crate) fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

/// The go_ws_sh error envelope: `{"message": "Error: …"}`.
pub(crate) fn error(error: &ApiError) -> Response<Body> {
    refusal(error, &serde_json::json!({ "message": format!("Error: {}", error.message) }))
}

/// A refusal with `envelope` as its body, in every surface's shape: the status, `Retry-After`
/// on 429, and on 401 a challenge (RFC 9110 §15.5.2).
pub(crate) fn refusal(error: &ApiError, envelope: &serde_json::Value) -> Response<Body> {
    let mut response = json(error.status, envelope);
    let headers = response.headers_mut();
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if error.status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"wssh\""));
    }
    response
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Adds the CORS headers go_ws_sh's cross-origin front end relies on. They go on every
/// response, errors included, so a browser can read error bodies too.
pub(crate) fn add_cors(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, X-Refresh-Token, Retry-After"),
    );
}

/// The answer to a CORS preflight or an `OPTIONS` request: `allow`, the methods of the path.
pub(crate) fn preflight(allow: &'static str) -> Response<Body> {
    let mut response = empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, COPY, MOVE, HEAD, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Origin, Authorization, Content-Type, X-Http-Method-Override, X-Refresh-Token"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
