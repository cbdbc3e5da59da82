//! The skeleton every API surface shares: find the route (404) and check the method (405,
//! with `Allow`), read the body (413), answer from memory when the surface can, else run the
//! operation on a blocking thread, and put any refusal in the surface's own envelope. Each
//! surface supplies only its routes, its operations and its envelope ([`Surface`]).

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::SharedState;
use crate::error::ApiError;
use crate::input::Query;
use crate::respond::Body;
use crate::router::read_incoming;

/// One request to a surface, read off the connection.
pub(crate) struct Call {
    /// Its method.
    pub(crate) method: Method,
    /// Its headers.
    pub(crate) headers: HeaderMap,
    /// Its query string, parsed.
    pub(crate) query: Query,
    /// Its query string as sent.
    pub(crate) raw_query: String,
    /// Its body (at most 1 MiB).
    pub(crate) body: Bytes,
    /// Where it came from.
    pub(crate) peer: SocketAddr,
}

/// Why a request has no route on a surface.
pub(crate) enum Misroute {
    /// No route at the path: 404.
    NotFound,
    /// The route does not answer the method: 405, with these methods in `Allow` (the router's
    /// default list when `None`).
    MethodNotAllowed(Option<&'static str>),
}

/// A seed's API surface: its routes, its operations, its envelope.
pub(crate) trait Surface {
    /// A route, with what the path carries.
    type Route: Send + 'static;

    /// The route a request takes, from its path, method and headers.
    fn route(path: &str, method: &Method, headers: &HeaderMap) -> Result<Self::Route, Misroute>;

    /// A refusal in the surface's envelope.
    fn refuse(failure: &ApiError) -> Response<Body>;

    /// The answer, when it can be given from memory without blocking; `None` runs
    /// [`Surface::run`] on a blocking thread.
    fn answer_from_memory(_state: &SharedState, _route: &Self::Route, _call: &Call) -> Option<Response<Body>> {
        None
    }

    /// Runs the operation (it may block): the response, or a refusal.
    fn run(state: &SharedState, route: Self::Route, call: &Call) -> Result<Response<Body>, ApiError>;
}

/// Answers one request of surface `S`.
pub(crate) async fn handle<S: Surface>(
    request: Request<Incoming>,
    state: SharedState,
    peer: SocketAddr,
) -> Response<Body> {
    let route = match S::route(request.uri().path(), request.method(), request.headers()) {
        Ok(route) => route,
        Err(Misroute::NotFound) => return S::refuse(&ApiError::not_found("Not found")),
        Err(Misroute::MethodNotAllowed(allow)) => {
            let mut response = S::refuse(&ApiError::method_not_allowed());
            if let Some(allow) = allow {
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            return response;
        }
    };
    let (parts, incoming) = request.into_parts();
    let body = match read_incoming(&parts.headers, incoming).await {
        Ok(body) => body,
        Err(failure) => return S::refuse(&failure),
    };
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let call = Call {
        method: parts.method,
        query: Query::parse(Some(&raw_query)),
        raw_query,
        headers: parts.headers,
        body,
        peer,
    };
    if let Some(response) = S::answer_from_memory(&state, &route, &call) {
        return response;
    }
    tokio::task::spawn_blocking(move || S::run(&state, route, &call))
        .await
        .unwrap_or_else(|join_error| Err(ApiError::internal(&join_error)))
        .unwrap_or_else(|failure| S::refuse(&failure))
}
