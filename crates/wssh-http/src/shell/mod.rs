//! The shell endpoint: `GET /{session}` with a WebSocket upgrade gives a fresh program on a PTY.
//!
//! Before the upgrade: authentication (from `Sec-WebSocket-Protocol` as go_ws_sh's browser
//! client sends it, or from `Authorization`), the `sessions:connect` permission, and the
//! session lookup, each refused with its own status. After it: the first client message must
//! be a resize, which sizes the PTY; then one task reads the PTY and writes the socket (when
//! the client stops reading, the server stops reading the PTY and the program blocks) while
//! input and resizes flow in. The connection ends with a close frame that says how the program
//! exited; a connection that ends first takes the program's whole session down with it.

pub(crate) mod api;
mod audit;
pub(crate) mod framing;
mod live;
mod modes;
mod output;
pub(crate) mod recording;
pub(crate) mod registry;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::sync::Mutex;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use wssh_auth::credentials::AuthorizationObject;
use wssh_auth::{AuthError, Credentials};
use wssh_domain::{Permission, SessionSpec};
use wssh_pty::{PtyCommand, WindowSize};

use self::framing::{ClientMessage, Framing, MAX_WIRE_BYTES, NATIVE_SUBPROTOCOL};
use self::registry::{Holder, LiveShell, Mode};
use crate::SharedState;
use crate::error::ApiError;
use crate::respond::{Body, LoggedUser, empty};

/// How long a client may take to send its first resize.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a disconnected client's programs get between SIGHUP and SIGKILL.
const HANGUP_GRACE: Duration = Duration::from_secs(2);
/// How long output may pause while it drains after the program exits, and how long the last
/// frames (exit status, close) may take to send.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);
/// How long output may drain after the program exits, at most.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How often the server pings an otherwise quiet client.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// How long sending a ping may wait for room in the socket.
const PING_SEND_LIMIT: Duration = Duration::from_secs(1);
/// A client silent this long (no data, no pong) is taken for gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The WebSocket read buffer a shell starts with, and how much one socket read takes.
/// Keystrokes and resizes are a few bytes; a larger frame (a paste) grows the buffer and takes
/// several reads.
const INPUT_BUFFER: usize = 512;

/// Whether `request` asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(request: &Request<Incoming>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        request.headers().get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| value.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
        })
    };
    request.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
}

/// What the `Sec-WebSocket-Protocol` header offered.
#[derive(Default)]
struct Offer {
    /// The native framing was offered.
    native: bool,
    /// The first element that carries credentials, as offered (to echo) and as read.
    credentials: Option<(String, AuthorizationObject)>,
}

/// Reads go_ws_sh's subprotocol credential: a URL-encoded query string
/// (`token=…&identifier=…&type=token`, or `username=…&password=…`), percent-encoded once more.
fn read_offer(headers: &HeaderMap) -> Offer {
    let mut offer = Offer::default();
    let elements = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|element| !element.is_empty());
    for element in elements {
        if element == NATIVE_SUBPROTOCOL {
            offer.native = true;
            continue;
        }
        if offer.credentials.is_some() {
            continue;
        }
        let Ok(query) = percent_decode_str(element).decode_utf8() else { continue };
        let mut object = AuthorizationObject::default();
        let mut any = false;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*key {
                "type" => &mut object.kind,
                "username" => &mut object.username,
                "password" => &mut object.password,
                "token" => &mut object.token,
                "identifier" => &mut object.identifier,
                "otp_code" => &mut object.otp_code,
                _ => continue,
            };
            *slot = value.into_owned();
            any = true;
        }
        if any {
            offer.credentials = Some((element.to_owned(), object));
        }
    }
    offer
}

/// Whether the `Sec-WebSocket-Protocol` headers offer credentials (for the fuzz targets).
#[cfg(feature = "fuzzing")]
pub(crate) fn offers_credentials(headers: &HeaderMap) -> bool {
    read_offer(headers).credentials.is_some()
}

/// Answers an upgrade request: 101 and a shell, or a refusal before upgrading.
pub(crate) async fn open(
    request: Request<Incoming>,
    state: SharedState,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    // RFC 6455: the key is 16 random bytes in base64, always 24 characters ending in "==".
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|key| key.len() == 24 && key.as_bytes().ends_with(b"=="))
        .map(|key| derive_accept_key(key.as_bytes()))
        .ok_or_else(|| ApiError::bad_request("Missing or malformed Sec-WebSocket-Key"))?;
    if request.headers().get(header::SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
        return Err(ApiError::new(StatusCode::UPGRADE_REQUIRED, "Only WebSocket version 13 is supported"));
    }
    let path = request.uri().path();
    let name = percent_decode_str(path.strip_prefix('/').unwrap_or(path))
        .decode_utf8()
        .map_err(|_| ApiError::not_found("Session not found"))?
        .into_owned();
    let offer = read_offer(request.headers());
    let attach = Attach::parse(request.uri().query())?;
    if attach.is_some() && !offer.native {
        return Err(ApiError::bad_request("Attaching to a shell needs the native framing (wssh.v1)"));
    }
    // A request relayed by another node of the cluster: the client is where that node says.
    let relayed = relay::relayed_client(&request, &state).await?;
    let peer = relayed.map_or(peer, |client| SocketAddr::new(client, peer.port()));
    if let Some(wanted) = &attach
        && relayed.is_none()
        && state.shells.get(&wanted.shell).is_none()
    {
        let locate_state = state.clone();
        let id = wanted.shell.clone();
        let found =
            tokio::task::spawn_blocking(move || locate_state.services.locate_remote_shell(&id, &locate_state.node.id))
                .await
                .map_err(|join_error| ApiError::internal(&join_error))??;
        if let Some((_, node_url)) = found {
            return relay::relay(request, state, peer, key, &node_url).await;
        }
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.trim().is_empty())
        .map(str::to_owned);
    let (echo, object) = match offer.credentials {
        Some((echo, object)) => (Some(echo), Some(object)),
        None => (None, None),
    };
    let share_token = share_token(object.as_ref(), authorization.as_deref());
    let session_name = name.clone();
    let lookup_state = state.clone();
    let native = offer.native;
    let attach_requested = attach.is_some();
    let wanted_shell = attach.as_ref().map(|wanted| wanted.shell.clone());
    let (access, spec) = tokio::task::spawn_blocking(move || -> Result<(Access, Option<SessionSpec>), ApiError> {
        if let Some(token) = share_token {
            // A share token opens its own shell, asked for by its id, and nothing else.
            let (shell, share) = lookup_state
                .shells
                .find_share(&token)
                .filter(|(shell, _)| wanted_shell.as_deref() == Some(shell.id.as_str()) && shell.session == name)
                .ok_or(AuthError::InvalidCredentials)?;
            return Ok((Access::Share(shell, share), None));
        }
        let credentials = match (object, authorization) {
            (Some(object), _) => object.into_credentials()?,
            (None, Some(header)) => Credentials::from_authorization_header(&header)?,
            (None, None) => return Err(AuthError::MissingCredentials.into()),
        };
        let origin = wssh_auth::Origin::login(wssh_domain::audit::Surface::Shell, Some(peer.ip()));
        let principal = lookup_state.auth.authenticate_from(&credentials, &origin)?;
        if attach_requested {
            // Attaching runs no program: the shell's own session is what counts.
            return Ok((Access::User(principal), None));
        }
        let session = lookup_state.services.session_to_connect(&principal, &name)?;
        if native {
            lookup_state.shells.check_limits(principal.username.as_str()).map_err(limit_error)?;
        }
        Ok((Access::User(principal), Some(session.spec)))
    })
    .await
    .map_err(|join_error| ApiError::internal(&join_error))??;
    let username = match &access {
        Access::User(principal) => principal.username.to_string(),
        Access::Share(_, share) => format!("share:{}", share.id),
    };
    let (attached, owner) = match (attach, access) {
        (Some(attach), access) => (Some(attach.find(&state, &session_name, access)?), None),
        (None, Access::User(principal)) => (None, Some(principal)),
        (None, Access::Share(..)) => return Err(AuthError::InvalidCredentials.into()),
    };
    if let Some(Attached { shell, holder: Holder::Share(share), .. }) = &attached {
        let event = wssh_domain::audit::AuditEvent::ShareUsed {
            shell: shell.id.clone(),
            share: share.clone(),
            client: Some(peer.ip().to_string()),
        };
        audit::record(&state.auth, None, event);
    }
    let trail = owner.clone().map(|owner| audit::ShellAudit::new(state.auth.clone(), owner));

    let framing = if offer.native { Framing::Native } else { Framing::GoWsSh };
    let protocol = if offer.native { Some(NATIVE_SUBPROTOCOL.to_owned()) } else { echo };
    let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers
        .insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&key).map_err(|error| ApiError::internal(&error))?);
    if let Some(protocol) = protocol.and_then(|protocol| HeaderValue::from_str(&protocol).ok()) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response.extensions_mut().insert(LoggedUser(username.clone()));

    let shell_guard = state.shell_opened();
    let stopping = state.stopping();
    let span = tracing::info_span!("shell", client = %peer.ip());
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let open = shell_guard;
            match hyper::upgrade::on(request).await {
                Ok(upgraded) => {
                    let socket = server_socket(&state, upgraded).await;
                    // A live shell's client goes on in a task of its own, as large as serving
                    // needs: this one, with what upgrading and starting took, ends here.
                    match (framing, attached, owner, spec) {
                        (_, Some(attached), _, _) => go_on(open, attach_client(socket, attached), stopping),
                        (Framing::Native, None, Some(owner), Some(spec)) => {
                            if let Some(client) = Box::pin(start_live(socket, spec, owner, &state)).await {
                                go_on(open, client, stopping);
                            }
                        }
                        (Framing::GoWsSh, None, Some(owner), Some(spec)) => {
                            let _open = open;
                            let _running = state.metrics.gows_shell_running();
                            let Some(trail) = trail else { return };
                            let watch = state.shells.watch_single(owner, &state.auth);
                            let ended = &watch.kick;
                            run_shell(socket, framing, spec, stopping, &trail, ended, &state).await;
                        }
                        _ => {}
                    }
                }
                Err(error) => tracing::debug!(%error, "upgrade failed"),
            }
        },
        span,
    ));
    Ok(response)
}

/// A shell client's upgraded connection as a WebSocket, the server's side: shell messages'
/// size limits, a small input buffer, no write buffer (every frame goes out at once), its
/// bytes counted for the metrics.
async fn server_socket(
    state: &SharedState,
    upgraded: hyper::upgrade::Upgraded,
) -> WebSocketStream<crate::metrics::CountingIo<TokioIo<hyper::upgrade::Upgraded>>> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WIRE_BYTES))
        .max_frame_size(Some(MAX_WIRE_BYTES))
        .read_buffer_size(INPUT_BUFFER)
        .write_buffer_size(0);
    let io = state.metrics.count_shell_bytes(TokioIo::new(upgraded));
    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
}

/// A connection attached to a live shell, ready to be served.
struct LiveClient<S> {
    sink: output::Sink<S>,
    stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    shell: Arc<LiveShell>,
    attachment: registry::Attachment,
    mode: Mode,
    offset: u64,
}

/// Serves a live shell's client in a task of its own (in the current span), counted as an
/// open shell connection until it ends; the server's stopping ends it with 1001.
fn go_on<S>(open: crate::ShellGuard, client: LiveClient<S>, mut stopping: tokio::sync::watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        let _open = open;
        let LiveClient { sink, stream, shell, attachment, mode, offset } = client;
        tokio::select! {
            () = live::serve(sink.clone(), stream, shell, attachment, mode, offset) => {}
            () = server_stopping(&mut stopping) => Box::pin(going_away(&sink)).await,
        }
    }));
}

/// What `?shell=ID&offset=N&mode=…` asked for.
struct Attach {
    shell: String,
    offset: Option<u64>,
    mode: Option<Mode>,
}

impl Attach {
    /// The attach parameters of a query; `None` without `shell`.
    fn parse(query: Option<&str>) -> Result<Option<Attach>, ApiError> {
        let (mut shell, mut offset, mut mode) = (None, None, None);
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            // One of each: a second one would be read differently by whatever sits in front.
            let given = match &*key {
                "shell" => shell.is_some(),
                "offset" => offset.is_some(),
                "mode" => mode.is_some(),
                _ => false,
            };
            if given {
                return Err(ApiError::bad_request(format!("{key} is given more than once")));
            }
            match &*key {
                "shell" => shell = Some(value.into_owned()),
                "offset" => {
                    // Digits only: `u64::from_str` would also take a leading `+`.
                    offset = Some(
                        Some(&value)
                            .filter(|value| value.bytes().all(|byte| byte.is_ascii_digit()))
                            .and_then(|value| value.parse::<u64>().ok())
                            .ok_or_else(|| ApiError::bad_request("offset must be a whole number of bytes"))?,
                    );
                }
                "mode" => {
                    mode = Some(
                        Mode::parse(&value).ok_or_else(|| ApiError::bad_request("mode must be control or observe"))?,
                    );
                }
                _ => {}
            }
        }
        match shell {
            Some(shell) => Ok(Some(Attach { shell, offset, mode })),
            None if offset.is_some() || mode.is_some() => Err(ApiError::bad_request("offset and mode need shell")),
            None => Ok(None),
        }
    }

    /// The shell asked for, if `access` may attach to it in the mode asked for.
    fn find(self, state: &SharedState, session: &str, access: Access) -> Result<Attached, ApiError> {
        let not_found = || ApiError::not_found("Shell not found");
        let (shell, holder, mode) = match access {
            Access::User(principal) => {
                let shell = state
                    .shells
                    .get_live(&self.shell)
                    .filter(|shell| shell.session == session)
                    .filter(|shell| registry::may_attach(&principal, shell, Mode::Observe))
                    .ok_or_else(not_found)?;
                let mode = self.mode.unwrap_or(Mode::Control);
                if !registry::may_attach(&principal, &shell, mode) {
                    return Err(AuthError::Forbidden(Permission::ShellsControl).into());
                }
                (shell, Holder::User(principal), mode)
            }
            Access::Share(shell, share) => {
                if shell.id != self.shell {
                    return Err(AuthError::InvalidCredentials.into());
                }
                let mode = self.mode.unwrap_or(share.mode);
                if mode != share.mode {
                    return Err(ApiError::new(StatusCode::FORBIDDEN, "This share link does not allow that mode"));
                }
                (shell, Holder::Share(share.id), mode)
            }
        };
        let (_, end) = shell.span();
        let offset = self.offset.unwrap_or(0);
        if offset > end {
            return Err(ApiError::bad_request(format!("offset {offset} is beyond the shell's output ({end} bytes)")));
        }
        Ok(Attached { shell, holder, mode, offset })
    }
}

/// Who is connecting: a user, or the holder of a share link.
enum Access {
    User(wssh_auth::Principal),
    Share(Arc<LiveShell>, registry::Share),
}

/// A connection about to attach to a live shell.
struct Attached {
    shell: Arc<LiveShell>,
    holder: Holder,
    mode: Mode,
    offset: u64,
}

/// The share token among the credentials offered, if one is.
fn share_token(object: Option<&AuthorizationObject>, authorization: Option<&str>) -> Option<String> {
    if let Some(object) = object {
        return object.token.starts_with(registry::SHARE_PREFIX).then(|| object.token.clone());
    }
    let token = authorization?.trim().strip_prefix("Bearer ")?.trim();
    token.starts_with(registry::SHARE_PREFIX).then(|| token.to_owned())
}

/// A refused start, naming the limit.
fn limit_error(error: registry::StartError) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, capitalised(&error.to_string()))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// How the conversation with the client ended.
enum Ending {
    /// The program exited (or closed its terminal).
    Exited,
    /// The client went away or closed.
    ClientGone,
    /// The client sent something malformed.
    Rejected(String, CloseCode),
    /// The server is stopping.
    ServerStopping,
    /// The owner's credential or access ended.
    AccessEnded,
}

fn close(code: CloseCode, reason: String) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(reason) }))
}

async fn run_shell<S>(
    socket: WebSocketStream<S>,
    framing: Framing,
    spec: SessionSpec,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    trail: &audit::ShellAudit,
    access_ended: &tokio::sync::Notify,
    state: &SharedState,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let username = trail.owner().username.as_str();
    let (mut sink, mut stream) = socket.split();
    let Some((mut process, size)) = start_program(&mut sink, &mut stream, framing, &spec).await else { return };
    let pid = process.pid();
    tracing::info!(session = %spec.name, user = username, pid, "shell started");
    // Recorded like a live shell when the settings or the template say so, before any output.
    let recording = recording::begin(state, trail.id(), trail.owner(), &spec, size)
        .map(|recording| Arc::new(std::sync::Mutex::new(Some(recording))));
    let finish_recording = |status: Option<&std::process::ExitStatus>| {
        if let Some(recording) = &recording {
            let taken = recording.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some(taken) = taken {
                taken.finish(audit::exit_status(status));
            }
        }
    };
    trail.started(spec.name.as_str(), size.cols, size.rows, recording.is_some());
    if let Some(started) = framing.started(&spec.cmd)
        && sink.send(Message::Binary(started)).await.is_err()
    {
        let status = process.terminate(HANGUP_GRACE).await;
        finish_recording(status.as_ref().ok());
        return;
    }

    // 3. Output: PTY → socket, in one task. While the socket takes no more (a client that
    // stops reading), the PTY is not read and the program blocks.
    let sink = Arc::new(Mutex::new(sink));
    let reader = process.reader();
    let output_sink = sink.clone();
    // Output the client took: a send that completes proves it is reading, even if it never types.
    let delivered = Arc::new(Delivered::new());
    let output_delivered = delivered.clone();
    let mut output = tokio::spawn(output::forward(reader, framing, output_sink, output_delivered, recording.clone()));

    // 4. Input, until the program exits, the terminal closes, or the client leaves.
    let terminal = process.writer();
    let mut output_open = true;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let ending = {
        let exited = process.wait();
        tokio::pin!(exited);
        let mut last_heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut exited => break Ending::Exited,
                () = server_stopping(&mut stopping) => break Ending::ServerStopping,
                () = access_ended.notified() => break Ending::AccessEnded,
                _ = &mut output, if output_open => output_open = false,
                _ = pings.tick() => {
                    if last_heard.max(delivered.last()).elapsed() >= IDLE_TIMEOUT {
                        break Ending::ClientGone;
                    }
                    // Output being sent means the client is reading, or stuck: the ping can wait.
                    // A socket that takes nothing holds the ping back only so long.
                    if let Ok(mut sink) = sink.try_lock() {
                        let _ = tokio::time::timeout(PING_SEND_LIMIT, sink.send(Message::Ping(Default::default()))).await;
                    }
                }
                incoming = next_message(&mut stream, framing, &mut last_heard) => match incoming {
                    Some(Ok(ClientMessage::Stdin(bytes))) => {
                        if let Some(recording) = &recording
                            && let Some(recording) = recording.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
                        {
                            recording.input(&bytes);
                        }
                        if terminal.write_all(&bytes).await.is_err() {
                            break Ending::Exited;
                        }
                    }
                    Some(Ok(ClientMessage::Resize { cols, rows })) => {
                        let size = WindowSize { cols, rows };
                        if terminal.resize(size).is_ok()
                            && let Some(recording) = &recording
                            && let Some(recording) = recording.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
                        {
                            recording.resize(size);
                        }
                    }
                    Some(Err(error)) => break Ending::Rejected(error.to_string(), error.close_code()),
                    None => break Ending::ClientGone,
                },
            }
        }
    };

    match ending {
        Ending::Exited => {
            // Let the last output through while the client keeps taking it (a program's
            // background children may write forever: at most DRAIN_LIMIT), then end whatever the
            // program left behind. (A finished JoinHandle must not be polled again.)
            if output_open {
                let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
                loop {
                    let progress = delivered.last();
                    let wait = DRAIN_TIMEOUT.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    if tokio::time::timeout(wait, &mut output).await.is_ok() {
                        break;
                    }
                    if delivered.last() == progress || tokio::time::Instant::now() >= deadline {
                        break;
                    }
                }
            }
            output.abort();
            let status = process.terminate(Duration::from_millis(100)).await;
            finish_recording(status.as_ref().ok());
            trail.ended(status.as_ref().ok());
            let code = status.as_ref().ok().and_then(std::process::ExitStatus::code).unwrap_or(-1);
            tracing::info!(session = %spec.name, user = username, pid, code, "shell exited");
            let last_words = async {
                let mut sink = sink.lock().await;
                if let Some(exited) = framing.exited(code) {
                    let _ = sink.send(Message::Binary(exited)).await;
                }
                let _ = sink.send(close(CloseCode::Normal, format!("process exited with status {code}"))).await;
            };
            // A client that reads nothing gets no say in how long this takes.
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, last_words).await;
            // Give the client a moment to answer the close handshake.
            let _ =
                tokio::time::timeout(Duration::from_secs(1), async { while stream.next().await.is_some() {} }).await;
            trail.detached();
        }
        Ending::ClientGone => {
            output.abort();
            answer_close(&sink).await;
            trail.detached();
            let status = process.terminate(HANGUP_GRACE).await;
            finish_recording(status.as_ref().ok());
            trail.ended(status.as_ref().ok());
            tracing::info!(session = %spec.name, user = username, pid, "client left, shell ended");
        }
        Ending::ServerStopping => {
            output.abort();
            let last_words = async {
                let mut sink = sink.lock().await;
                let _ = sink.send(close(CloseCode::Away, "server shutting down".to_owned())).await;
            };
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, last_words).await;
            let status = process.terminate(HANGUP_GRACE).await;
            finish_recording(status.as_ref().ok());
            tracing::info!(session = %spec.name, user = username, pid, "server stopping, shell ended");
            let _ =
                tokio::time::timeout(Duration::from_secs(1), async { while stream.next().await.is_some() {} }).await;
        }
        Ending::AccessEnded => {
            output.abort();
            trail.detached();
            let last_words = async {
                let mut sink = sink.lock().await;
                let _ = sink.send(Message::Binary(framing.rejected("access ended"))).await;
                let _ = sink.send(close(CloseCode::Policy, "access ended".to_owned())).await;
            };
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, last_words).await;
            let status = process.terminate(HANGUP_GRACE).await;
            finish_recording(status.as_ref().ok());
            trail.ended(status.as_ref().ok());
            tracing::info!(session = %spec.name, user = username, pid, "access ended, shell ended");
        }
        Ending::Rejected(reason, code) => {
            output.abort();
            trail.detached();
            let status = process.terminate(HANGUP_GRACE).await;
            finish_recording(status.as_ref().ok());
            trail.ended(status.as_ref().ok());
            tracing::info!(session = %spec.name, user = username, pid, reason, "malformed frame, shell ended");
            let last_words = async {
                let mut sink = sink.lock().await;
                let _ = sink.send(Message::Binary(framing.rejected(&reason))).await;
                let _ = sink.send(close(code, reason.clone())).await;
            };
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, last_words).await;
        }
    }
}

/// Resolves once the server stops.
async fn server_stopping(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits for the client's first message, which must be a resize, and spawns the session's
/// program on a PTY of that size. On failure the client has been told why and the socket
/// closed; `None`.
async fn start_program<S>(
    sink: &mut futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<S>>,
    framing: Framing,
    spec: &SessionSpec,
) -> Option<(wssh_pty::PtyProcess, WindowSize)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // 1. The first message sizes the PTY.
    let mut last_heard = tokio::time::Instant::now();
    let first = tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, next_message(stream, framing, &mut last_heard)).await;
    let size = match first {
        Ok(Some(Ok(ClientMessage::Resize { cols, rows }))) => WindowSize { cols, rows },
        Ok(None) => return None,
        other => {
            let reason = match other {
                Ok(Some(Ok(ClientMessage::Stdin(_)))) => {
                    "unknown recv binary,first message console size expected".into()
                }
                Ok(Some(Err(error))) => format!("{error},first message console size expected"),
                _ => "timed out waiting for the first message, console size expected".into(),
            };
            let _ = sink.send(Message::Binary(framing.rejected(&reason))).await;
            let _ = sink.send(close(CloseCode::Protocol, reason)).await;
            return None;
        }
    };

    // 2. Spawn.
    let mut command = PtyCommand::new(spec.cmd.clone()).args(spec.args.clone()).size(size);
    if !spec.dir.is_empty() {
        command = command.dir(&spec.dir);
    }
    // fork() costs time in proportion to the server's memory: keep it off the async workers.
    // The account lookup (NSS) may block too.
    let run_as = spec.run_as.clone();
    let spawned = tokio::task::spawn_blocking(move || match run_as {
        Some(name) => wssh_pty::OsAccount::lookup(&name).and_then(|account| command.run_as(account).spawn()),
        None => command.spawn(),
    })
    .await
    .unwrap_or_else(|join_error| Err(wssh_pty::PtyError::Io(std::io::Error::other(join_error.to_string()))));
    match spawned {
        Ok(process) => Some((process, size)),
        Err(error) => {
            let reason = error.to_string();
            let _ = sink.send(Message::Binary(framing.rejected(&reason))).await;
            let _ = sink.send(close(CloseCode::Error, reason)).await;
            None
        }
    }
}

/// A new live shell (native framing): the program starts as on any connection, and is kept
/// in the registry for clients to come back to. Its first client, to be served; `None` when
/// the program could not start (the client was told why).
async fn start_live<S>(
    socket: WebSocketStream<S>,
    spec: SessionSpec,
    owner: wssh_auth::Principal,
    state: &SharedState,
) -> Option<LiveClient<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    let (process, size) = start_program(&mut sink, &mut stream, Framing::Native, &spec).await?;
    let pid = process.pid();
    let username = owner.username.to_string();
    let record = |id: &str| recording::begin(state, id, &owner, &spec, size);
    let started = state.shells.start(process, owner.clone(), &spec, size, &state.auth, record);
    let (shell, attachment) = match started {
        Ok(started) => started,
        Err(error) => {
            // The process is dropped here, which kills its session at once.
            let reason = error.to_string();
            let _ = sink.send(Message::Binary(Framing::Native.rejected(&reason))).await;
            let _ = sink.send(close(CloseCode::Policy, reason)).await;
            return None;
        }
    };
    tracing::info!(session = %spec.name, user = username, pid, shell = %registry::short(&shell.id), "shell started");
    let sink = Arc::new(Mutex::new(sink));
    Some(LiveClient { sink, stream, shell, attachment, mode: Mode::Control, offset: 0 })
}

/// Another connection to a live shell, attached and ready to be served.
fn attach_client<S>(socket: WebSocketStream<S>, attached: Attached) -> LiveClient<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Attached { shell, holder, mode, offset } = attached;
    let (sink, stream) = socket.split();
    let attachment = shell.attach(holder, mode);
    tracing::info!(shell = %registry::short(&shell.id), ?mode, "client attached");
    LiveClient { sink: Arc::new(Mutex::new(sink)), stream, shell, attachment, mode, offset }
}

/// The client left: when it closed with a close frame, the reply that tungstenite queued on
/// reading it is sent (RFC 6455 §5.5.1: a client that starts the close handshake gets the
/// server's close back, not a dropped connection); a connection already gone has nothing to
/// send. Only [`DRAIN_TIMEOUT`] is given.
async fn answer_close<S>(sink: &Mutex<futures_util::stream::SplitSink<WebSocketStream<S>, Message>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { sink.lock().await.flush().await }).await;
}

/// The server is stopping: the client is told so with 1001 (going away) and a reason.
async fn going_away<S>(sink: &Mutex<futures_util::stream::SplitSink<WebSocketStream<S>, Message>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let last_words = async {
        let mut sink = sink.lock().await;
        let _ = sink.send(close(CloseCode::Away, "server shutting down".to_owned())).await;
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, last_words).await;
}

/// When the client last took output: a clock shared by the output task and the input loop.
struct Delivered {
    since: tokio::time::Instant,
    /// Milliseconds after `since`.
    at: std::sync::atomic::AtomicU64,
}

impl Delivered {
    fn new() -> Self {
        Delivered { since: tokio::time::Instant::now(), at: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Notes that output was delivered now.
    fn now(&self) {
        let elapsed = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at.store(elapsed, std::sync::atomic::Ordering::Relaxed);
    }

    /// When output was last delivered (the start, if never).
    fn last(&self) -> tokio::time::Instant {
        self.since + Duration::from_millis(self.at.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// The next application message: data frames decoded, control frames skipped (but noted in
/// `last_heard`, as every frame is). `None` when the client closed or the connection broke.
async fn next_message<S>(
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<S>>,
    framing: Framing,
    last_heard: &mut tokio::time::Instant,
) -> Option<Result<ClientMessage, framing::FrameError>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let frame = stream.next().await?;
        *last_heard = tokio::time::Instant::now();
        match frame {
            Ok(Message::Binary(payload)) => return Some(framing.decode(&payload)),
            // go_ws_sh ignores the opcode; so do we.
            Ok(Message::Text(text)) => return Some(framing.decode(text.as_bytes())),
            // Too large for the limits set in `server_socket`: refused as such (close 1009).
            Err(tokio_tungstenite::tungstenite::Error::Capacity(_)) => {
                return Some(Err(framing::FrameError::OverLimit));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
        }
    }
}
