//! Live shells: programs that outlive the connection that started them.
//!
//! A [`LiveShell`] is one program on a PTY with an unguessable id, its owner, its session, its
//! size, and an output [`History`]: the last bytes it wrote, with absolute offsets counted from
//! its start. One task per shell ([`LiveShell::run`]) reads the terminal into the history and
//! never waits for a client; each attached client sends from the history at its own pace, so a
//! slow client only falls behind. When its last client goes, the shell waits for the detach
//! timeout, then ends as a connection's shell always did.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::{Notify, watch};
use wssh_auth::{Authenticator, Principal};
use wssh_domain::audit::AuditEvent;
use wssh_domain::{Timestamp, UserId};
use wssh_pty::{PtyProcess, PtyReader, PtyWriter, WindowSize};

use super::modes::ModeScanner;

/// The tag of a native data frame; history chunks are kept as ready-made data frames.
const DATA_TAG: u8 = 0;
/// Bytes read from the PTY at once, at most.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// What one chunk costs beside its bytes, charged against the history's limit so that many
/// small chunks cannot hold more memory than the limit says.
const CHUNK_OVERHEAD: usize = 64;
/// Small outputs (echoes) are merged into the last chunk while it stays this small.
const MERGE_LIMIT: usize = 4096;
/// A read at least this large is kept in the buffer it was read into (see
/// [`History::push_frame`]); smaller ones are copied.
const TAKE_FRAME: usize = 16 * 1024;
/// Frames handed to a client per look at the history, at most, and their bytes at most (beyond
/// the first frame): what a client that stopped taking output keeps alive after it left the
/// history.
const BATCH: usize = 64;
const BATCH_BYTES: usize = 256 * 1024;
/// How long output may pause while it drains after the program exits, and how long at most.
const DRAIN_QUIET: Duration = Duration::from_millis(500);
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How long a detached or deleted shell's programs get between SIGHUP and SIGKILL.
const HANGUP_GRACE: Duration = Duration::from_secs(2);
/// `LiveShell::reading_client` when the shell's own task reads the terminal.
const NO_READER: u64 = u64::MAX;

/// Server settings for live shells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellSettings {
    /// Output bytes each shell keeps for clients that come back (default 4 MiB).
    pub history_bytes: usize,
    /// How long a shell without clients keeps running (default 5 minutes; zero ends it with
    /// its last connection).
    pub detach_timeout: Duration,
    /// Live shells one user may have at once.
    pub max_per_user: usize,
    /// Live shells on the server at once.
    pub max_total: usize,
}

impl Default for ShellSettings {
    fn default() -> Self {
        ShellSettings {
            history_bytes: 4 * 1024 * 1024,
            detach_timeout: Duration::from_secs(5 * 60),
            max_per_user: 50,
            max_total: 1000,
        }
    }
}

/// How a client takes part in a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Input and resizes.
    Control,
    /// Output only; input is dropped.
    Observe,
}

impl Mode {
    /// `control` or `observe`.
    pub(crate) fn parse(text: &str) -> Option<Mode> {
        match text {
            "control" => Some(Mode::Control),
            "observe" => Some(Mode::Observe),
            _ => None,
        }
    }

    /// `control` or `observe`, as the audit log names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Control => "control",
            Mode::Observe => "observe",
        }
    }
}

/// How a shell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShellEnd {
    /// The program exited with this code (-1: killed by a signal).
    Exited(i32),
    /// The server ended it (detach timeout, deleted, its owner's access ended).
    Ended,
}

/// What clients watch: how far the output goes, and whether the shell has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The offset after the last byte of output.
    pub(crate) end: u64,
    /// Set once the shell is over and all its output is in the history.
    pub(crate) ended: Option<ShellEnd>,
}

/// The last output of a shell, as native data frames, with absolute offsets.
#[derive(Debug)]
pub(crate) struct History {
    /// Frames: a data tag, then output bytes.
    chunks: VecDeque<Bytes>,
    /// The offset of the first byte held.
    start: u64,
    /// The offset after the last byte held.
    end: u64,
    /// Bytes held plus [`CHUNK_OVERHEAD`] per chunk.
    charged: usize,
    /// The most `charged` may be (the last chunk is always kept).
    limit: usize,
}

/// What a client at some offset gets next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Frames to send, and the offset after them.
    Frames(Vec<Bytes>, u64),
    /// The offset is older than the history.
    Gap,
    /// Nothing yet.
    Nothing,
}

impl History {
    /// An empty history that holds about `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        History { chunks: VecDeque::new(), start: 0, end: 0, charged: 0, limit }
    }

    /// The offset of the first byte held.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// The offset after the last byte.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Appends output; returns the chunks that fell out of the history.
    #[cfg(test)]
    pub(crate) fn push(&mut self, output: &[u8]) -> Vec<Bytes> {
        let mut frame = Vec::with_capacity(1 + output.len());
        frame.push(DATA_TAG);
        frame.extend_from_slice(output);
        self.push_frame(&mut frame)
    }

    /// Appends a data frame (the tag, then output); returns the chunks that fell out of the
    /// history. Small output is copied into the last chunk while that stays small (echoes),
    /// or into a chunk of its own size (so that an idle shell holds no read buffer); bulk
    /// output ([`TAKE_FRAME`] bytes or more) becomes a chunk as it is: taken out of `frame`,
    /// not copied.
    pub(crate) fn push_frame(&mut self, frame: &mut Vec<u8>) -> Vec<Bytes> {
        let output = frame.get(1..).unwrap_or_default();
        if output.is_empty() {
            return Vec::new();
        }
        let length = output.len();
        match self.chunks.back_mut() {
            Some(last) if last.len() - 1 + length <= MERGE_LIMIT => {
                let mut merged = Vec::with_capacity(last.len() + length);
                merged.extend_from_slice(last);
                merged.extend_from_slice(output);
                *last = Bytes::from(merged);
                self.charged += length;
            }
            _ if length < TAKE_FRAME => {
                self.chunks.push_back(data_frame(output));
                self.charged += length + CHUNK_OVERHEAD;
            }
            _ => {
                let mut chunk = std::mem::take(frame);
                // In place: the allocator gives the unused end back without moving the output.
                chunk.shrink_to_fit();
                self.chunks.push_back(Bytes::from(chunk));
                self.charged += length + CHUNK_OVERHEAD;
            }
        }
        self.end += length as u64;
        let mut evicted = Vec::new();
        while self.charged > self.limit && self.chunks.len() > 1 {
            let Some(chunk) = self.chunks.pop_front() else { break };
            self.start += (chunk.len() - 1) as u64;
            self.charged -= chunk.len() - 1 + CHUNK_OVERHEAD;
            evicted.push(chunk);
        }
        evicted
    }

    /// What a client whose next byte is `offset` gets: at most [`BATCH`] frames, and at most
    /// [`BATCH_BYTES`] once past the first.
    pub(crate) fn read(&self, offset: u64) -> Next {
        if offset < self.start {
            return Next::Gap;
        }
        if offset >= self.end {
            return Next::Nothing;
        }
        // Find the chunk holding `offset`, from the newest (clients are usually near the end).
        let mut chunk_start = self.end;
        let mut index = self.chunks.len();
        while index > 0 && chunk_start > offset {
            index -= 1;
            chunk_start -= (self.chunks[index].len() - 1) as u64;
        }
        let mut frames = Vec::new();
        let mut next = offset;
        for chunk in self.chunks.iter().skip(index).take(BATCH) {
            if next - offset >= BATCH_BYTES as u64 {
                break;
            }
            let skip = (next - chunk_start) as usize;
            frames.push(if skip == 0 { chunk.clone() } else { data_frame(&chunk[1 + skip..]) });
            chunk_start += (chunk.len() - 1) as u64;
            next = chunk_start;
        }
        Next::Frames(coalesce(frames), next)
    }

    /// The bytes held, from the first one on (for a client that needs all of them).
    #[cfg(test)]
    fn bytes(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|chunk| chunk[1..].to_vec()).collect()
    }
}

/// Joins consecutive small data frames into frames of up to [`FRAME_LIMIT`] bytes: the
/// terminal hands output over in reads of a few kilobytes, and a WebSocket message per read
/// would cost a write and a client wakeup each. A frame that is large enough alone is passed
/// on as it is, without a copy.
fn coalesce(frames: Vec<Bytes>) -> Vec<Bytes> {
    if frames.len() < 2 {
        return frames;
    }
    let mut joined = Vec::with_capacity(frames.len());
    let mut group: Vec<Bytes> = Vec::new();
    let mut group_bytes = 0;
    let flush = |group: &mut Vec<Bytes>, joined: &mut Vec<Bytes>| match group.len() {
        0 => {}
        1 => joined.append(group),
        _ => {
            let mut frame = Vec::with_capacity(1 + group.iter().map(|frame| frame.len() - 1).sum::<usize>());
            frame.push(DATA_TAG);
            for part in group.drain(..) {
                frame.extend_from_slice(&part[1..]);
            }
            joined.push(Bytes::from(frame));
        }
    };
    for frame in frames {
        if group_bytes + frame.len() - 1 > FRAME_LIMIT {
            flush(&mut group, &mut joined);
            group_bytes = 0;
        }
        group_bytes += frame.len() - 1;
        group.push(frame);
    }
    flush(&mut group, &mut joined);
    joined
}

/// The largest data frame [`coalesce`] makes.
const FRAME_LIMIT: usize = 64 * 1024;

/// A native data frame: the tag, then `output`.
fn data_frame(output: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(output.len() + 1);
    frame.push(DATA_TAG);
    frame.extend_from_slice(output);
    Bytes::from(frame)
}

/// Share links one shell may have at once.
const MAX_SHARES: usize = 32;
/// Every share token starts with this (and then 256 random bits in hex).
pub(crate) const SHARE_PREFIX: &str = "wsshs_";

/// A share link: one shell, one mode, until it expires or is revoked. Only the token's hash
/// is kept.
#[derive(Debug, Clone)]
pub(crate) struct Share {
    /// The share's id (shown in listings, used to revoke it).
    pub(crate) id: String,
    /// What the link allows.
    pub(crate) mode: Mode,
    /// Who made it.
    pub(crate) created_by: String,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    /// Hex SHA-256 of the token.
    hash: String,
}

impl Share {
    /// Whether the link still works at `now`.
    pub(crate) fn live_at(&self, now: Timestamp) -> bool {
        now.0 < self.expires_at.0
    }
}

/// Who an attached client is: what to check again while it stays.
#[derive(Debug, Clone)]
pub(crate) enum Holder {
    /// A user, as authenticated.
    User(Principal),
    /// Whoever holds the token of this share link.
    Share(String),
}

/// One attached client, as listed.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    /// The client's number within its shell.
    pub(crate) id: u64,
    /// Who it is: a user name, or `share:ID` for a share link.
    pub(crate) user: String,
    /// How it takes part.
    pub(crate) mode: Mode,
    /// What it attached with.
    holder: Holder,
    /// Disconnects it: its credential stopped working.
    kick: Arc<Notify>,
}

/// What a connection gets when it attaches to a shell.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    /// The client's number within its shell.
    pub(crate) id: u64,
    /// Notified when the client's credential stopped working.
    pub(crate) kick: Arc<Notify>,
}

/// What changes in a shell, under one lock.
struct State {
    history: History,
    size: WindowSize,
    clients: Vec<ClientInfo>,
    next_client: u64,
    /// When the last client left (while none is attached).
    detached_since: Option<(Timestamp, tokio::time::Instant)>,
    /// The screen as it stood at the history's first byte: a terminal emulator fed with the
    /// output the history forgets. Made at the first such output, so that shells whose output
    /// still fits the history carry none.
    screen: Option<Box<vt100::Parser>>,
    /// The size as of the history's first byte.
    screen_size: WindowSize,
    /// Size changes not yet applied to `screen`, at their output offsets.
    resizes: VecDeque<(u64, WindowSize)>,
    /// Share links.
    shares: Vec<Share>,
    /// Output that left the history but is not yet fed to `screen` (data frames), from offset
    /// `unfed_start` on: the emulator runs only when a restore needs it or output is
    /// interactive, never for every byte of bulk output (see [`State::defer`]).
    unfed: VecDeque<Bytes>,
    unfed_start: u64,
    unfed_bytes: usize,
    /// Bytes fed to `screen` for interactive output in the current [`FEED_WINDOW`], and when
    /// that window ends (see [`State::feed_due`]).
    window_fed: usize,
    window_end: Option<std::time::Instant>,
    /// Output read in the current window.
    window_output: usize,
    /// When output last came in a bulk read (while some is deferred).
    last_bulk: Option<std::time::Instant>,
    /// Follows the output dropped unfed (see [`State::defer`]) for the modes it sets.
    modes: ModeScanner,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("history", &self.history)
            .field("size", &self.size)
            .field("clients", &self.clients)
            .field("screen", &self.screen.is_some())
            .finish_non_exhaustive()
    }
}

/// Output kept for the screen beyond the history, at most (see [`State::defer`]).
const UNFED_LIMIT: usize = 1 << 20;
/// A read of output smaller than this is taken as interactive: deferred output is fed to the
/// screen then, within [`FEED_BUDGET`].
const INTERACTIVE_OUTPUT: usize = 1024;
/// Deferred output fed to the screen for interactive reads per [`FEED_WINDOW`] while bulk output
/// goes on, at most (once bulk output has stopped for a window, everything deferred is fed): a
/// flood of output, whose reads are often small too when the server reads faster than the
/// program writes, costs the emulator a quarter of a megabyte a second, not every byte (the
/// emulator is far slower than the terminal).
const FEED_BUDGET: usize = 256 * 1024;
const FEED_WINDOW: Duration = Duration::from_secs(1);

/// Size changes remembered for the screen at most; older ones are applied early.
const MAX_RESIZES: usize = 256;

impl State {
    /// A new shell's state: an empty history of about `history_bytes`, one client.
    fn new(history_bytes: usize, size: WindowSize, first: ClientInfo) -> Self {
        State {
            history: History::new(history_bytes),
            size,
            clients: vec![first],
            next_client: 1,
            detached_since: None,
            screen: None,
            screen_size: size,
            resizes: VecDeque::new(),
            shares: Vec::new(),
            unfed: VecDeque::new(),
            unfed_start: 0,
            unfed_bytes: 0,
            window_fed: 0,
            window_end: None,
            window_output: 0,
            last_bulk: None,
            modes: ModeScanner::default(),
        }
    }

    /// Feeds output that fell out of the history (starting at `offset`) to the screen,
    /// applying each size change where it happened.
    fn forget(&mut self, mut offset: u64, evicted: &[Bytes]) {
        // Where the output dropped before this left the modes (and an escape sequence it may
        // have ended inside, which this continues).
        let modes = self.modes.take();
        self.screen().process(&modes);
        let Some(screen) = self.screen.as_mut() else { return };
        for chunk in evicted {
            let mut bytes = &chunk[1..];
            while !bytes.is_empty() {
                while let Some(&(_, size)) = self.resizes.front().filter(|(at, _)| *at <= offset) {
                    screen.screen_mut().set_size(size.rows, size.cols);
                    self.screen_size = size;
                    self.resizes.pop_front();
                }
                let take = match self.resizes.front() {
                    Some(&(at, _)) => ((at - offset) as usize).min(bytes.len()),
                    None => bytes.len(),
                };
                screen.process(&bytes[..take]);
                self.modes.follow_fed(&bytes[..take]);
                bytes = &bytes[take..];
                offset += take as u64;
            }
        }
    }

    /// Keeps output that left the history (starting at `offset`) for the screen, to be fed
    /// later. Past [`UNFED_LIMIT`] the oldest is dropped unfed: a screen is drawn by its last
    /// output, so the restore after a long flood is made from the newest megabyte before the
    /// history's start, and of what was dropped the screen is given only where it left the
    /// modes (the alternate screen, say), which would otherwise be lost with it.
    fn defer(&mut self, offset: u64, evicted: Vec<Bytes>) {
        if self.unfed.is_empty() {
            self.unfed_start = offset;
        }
        for chunk in evicted {
            self.unfed_bytes += chunk.len() - 1;
            self.unfed.push_back(chunk);
        }
        while self.unfed_bytes > UNFED_LIMIT && self.unfed.len() > 1 {
            if let Some(chunk) = self.unfed.pop_front() {
                self.modes.scan(&chunk[1..]);
                self.unfed_bytes -= chunk.len() - 1;
                self.unfed_start += (chunk.len() - 1) as u64;
            }
        }
    }

    /// The emulator the restore is drawn from, made at the size the shell had where it stands.
    fn screen(&mut self) -> &mut vt100::Parser {
        let size = self.screen_size;
        self.screen.get_or_insert_with(|| Box::new(vt100::Parser::new(size.rows, size.cols, 0)))
    }

    /// [`State::take_frame`] for output as bytes.
    #[cfg(test)]
    fn take_output(&mut self, output: &[u8]) -> bool {
        let mut frame = vec![DATA_TAG];
        frame.extend_from_slice(output);
        self.take_frame(&mut frame)
    }

    /// Puts a data frame of output into the history (see [`History::push_frame`]); what falls
    /// out of it is kept for the screen, which is fed when due. Whether the screen was fed.
    fn take_frame(&mut self, frame: &mut Vec<u8>) -> bool {
        let length = frame.len().saturating_sub(1);
        let before = self.history.start();
        let evicted = self.history.push_frame(frame);
        if !evicted.is_empty() {
            self.defer(before, evicted);
        }
        // Interactive output is cheap to emulate as it comes; bulk output waits (and past the
        // limit, is dropped from what the screen is rebuilt from).
        let due = self.feed_due(length);
        if due {
            self.feed();
        }
        due
    }

    /// Whether output deferred so far should be fed to the screen now, after a read of
    /// `output` bytes: for interactive output, within the budget of the current window, or
    /// whatever is deferred once bulk output has stopped for a window. Output counts as bulk
    /// when it comes in a large read, or when the window has already seen more than the budget
    /// (a flood the server reads in small pieces, as `yes` gives: small reads alone would let
    /// the emulator take every byte of it, and sequences such as the alternate screen's cost
    /// the emulator a whole screen each).
    fn feed_due(&mut self, output: usize) -> bool {
        let now = std::time::Instant::now();
        if self.window_end.is_none_or(|end| now >= end) {
            self.window_end = Some(now + FEED_WINDOW);
            self.window_fed = 0;
            self.window_output = 0;
        }
        self.window_output += output;
        if self.unfed.is_empty() {
            return false;
        }
        if output >= INTERACTIVE_OUTPUT || self.window_output > FEED_BUDGET {
            self.last_bulk = Some(now);
            return false;
        }
        self.window_fed + self.unfed_bytes <= FEED_BUDGET || self.last_bulk.is_none_or(|at| now - at >= FEED_WINDOW)
    }

    /// Feeds the screen everything deferred.
    fn feed(&mut self) {
        if self.unfed.is_empty() {
            return;
        }
        let chunks: Vec<Bytes> = self.unfed.drain(..).collect();
        self.window_fed += self.unfed_bytes;
        self.unfed_bytes = 0;
        self.forget(self.unfed_start, &chunks);
    }

    /// The terminal bytes that draw the screen as it stood at the history's first byte.
    fn restore(&self) -> Vec<u8> {
        let Some(screen) = &self.screen else { return Vec::new() };
        let screen = screen.screen();
        let mut bytes = Vec::new();
        if screen.alternate_screen() {
            bytes.extend_from_slice(b"\x1b[?1049h");
        }
        bytes.extend_from_slice(&screen.state_formatted());
        bytes
    }
}

/// A program on a PTY that clients attach to and detach from.
#[derive(Debug)]
pub(crate) struct LiveShell {
    /// The unguessable id (128 random bits, URL-safe base64).
    pub(crate) id: String,
    /// The user who started it.
    pub(crate) owner: String,
    /// Their id.
    pub(crate) owner_id: UserId,
    /// The session it was started from.
    pub(crate) session: String,
    /// When it started.
    pub(crate) created_at: Timestamp,
    /// The program's process id.
    pub(crate) pid: u32,
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
    reader: PtyReader,
    writer: PtyWriter,
    /// Held across each read of the terminal and its append to the history: the shell's task
    /// and a reading client take turns without reordering output.
    read_turn: Mutex<()>,
    /// The client whose output task reads the terminal itself and sends inline (see
    /// [`LiveShell::take_reading`]), or [`NO_READER`].
    reading_client: AtomicU64,
    /// Set once a read found the terminal closed on the program's side, or the shell's task
    /// left its main loop (the program exited, or the shell is ending): no client takes the
    /// reading turn after.
    terminal_closed: AtomicBool,
    /// Wakes the shell's task: clients changed, a client took or gave back the reading turn,
    /// or the shell is to end.
    wake: Notify,
    end_requested: AtomicBool,
    /// Where the shell's audit events go.
    auth: Arc<Authenticator>,
    /// Its recording, while it is recorded.
    recording: Mutex<Option<super::recording::ShellRecording>>,
}

/// A snapshot of a shell for listings.
#[derive(Debug, Clone)]
pub(crate) struct ShellInfo {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) session: String,
    pub(crate) created_at: Timestamp,
    pub(crate) size: WindowSize,
    pub(crate) output_bytes: u64,
    pub(crate) clients: Vec<ClientInfo>,
    pub(crate) detached_since: Option<Timestamp>,
}

impl LiveShell {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client.
    pub(crate) fn attach(&self, holder: Holder, mode: Mode) -> Attachment {
        let mut state = self.lock();
        let id = state.next_client;
        state.next_client += 1;
        let attachment = Attachment { id, kick: Arc::new(Notify::new()) };
        self.audit_client(&holder, AuditEvent::ShellAttached { shell: self.id.clone(), mode: mode.name().into() });
        state.clients.push(ClientInfo { id, user: holder.label(), mode, holder, kick: attachment.kick.clone() });
        state.detached_since = None;
        // Under the state's lock, as `append` looks: from here on every append wakes clients.
        let was_read = self.reading_client.swap(NO_READER, Ordering::AcqRel) != NO_READER;
        drop(state);
        if was_read {
            // The reading client notices at its next look.
            self.progress.send_modify(|_| {});
        }
        self.wake.notify_one();
        attachment
    }

    /// Disconnects the clients whose credential ran out by itself: a share link revoked or
    /// expired, a token or login past its expiry (in memory: cheap, every tick).
    fn kick_expired(&self) {
        let now = Timestamp::now();
        let state = self.lock();
        for client in &state.clients {
            let ended = match &client.holder {
                Holder::Share(id) => !state.shares.iter().any(|share| &share.id == id && share.live_at(now)),
                Holder::User(principal) => principal.has_expired(now),
            };
            if ended {
                client.kick.notify_one();
            }
        }
    }

    /// Checks again, in the store, that the owner may still have this shell (or ends it) and
    /// that each attached user's credential still works and still allows its mode (or
    /// disconnects that client). A failing store decides nothing.
    fn recheck(&self, auth: &Authenticator, checked: &mut Checked) {
        match checked.owner_holds(auth, self.owner_id) {
            Some(true) => {}
            Some(false) => {
                tracing::info!(shell = %short(&self.id), user = %self.owner, "the owner's access ended, shell ended");
                self.end();
                return;
            }
            None => return,
        }
        let clients: Vec<(Principal, Mode, Arc<Notify>)> = self
            .lock()
            .clients
            .iter()
            .filter_map(|client| match &client.holder {
                Holder::User(principal) => Some((principal.clone(), client.mode, client.kick.clone())),
                Holder::Share(_) => None,
            })
            .collect();
        for (principal, mode, kick) in clients {
            let allowed = match checked.credential(auth, &principal) {
                Some(Some(now)) => may_attach(now, self, mode),
                Some(None) => false,
                None => true,
            };
            if !allowed {
                tracing::info!(shell = %short(&self.id), user = %principal.username, "access ended, client disconnected");
                kick.notify_one();
            }
        }
    }

    /// Removes a client; the shell starts its detach timeout when it was the last.
    pub(crate) fn detach(&self, client: u64) {
        let mut state = self.lock();
        if let Some(info) = state.clients.iter().find(|info| info.id == client) {
            let event = AuditEvent::ShellDetached { shell: self.id.clone(), mode: info.mode.name().into() };
            self.audit_client(&info.holder, event);
        }
        state.clients.retain(|info| info.id != client);
        let _ = self.reading_client.compare_exchange(client, NO_READER, Ordering::AcqRel, Ordering::Acquire);
        if state.clients.is_empty() {
            state.detached_since = Some((Timestamp::now(), tokio::time::Instant::now()));
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Makes a share link for `mode`, valid for `lifetime`: the share and its token (the only
    /// time the token exists outside the client).
    pub(crate) fn add_share(&self, mode: Mode, lifetime: Duration, by: &str) -> Result<(Share, String), ShareError> {
        let mut state = self.lock();
        let now = Timestamp::now();
        state.shares.retain(|share| share.live_at(now));
        if state.shares.len() >= MAX_SHARES {
            return Err(ShareError::TooMany(MAX_SHARES));
        }
        let secret = wssh_auth::secret::generate_token_secret();
        let token = format!("{SHARE_PREFIX}{}", secret.trim_start_matches(wssh_auth::secret::TOKEN_PREFIX));
        let share = Share {
            id: new_id()[..11].to_owned(),
            mode,
            created_by: by.to_owned(),
            created_at: now,
            expires_at: Timestamp::end_of(lifetime),
            hash: wssh_auth::secret::hash_token_secret(&token),
        };
        state.shares.push(share.clone());
        Ok((share, token))
    }

    /// The share links that still work.
    pub(crate) fn shares(&self) -> Vec<Share> {
        let now = Timestamp::now();
        self.lock().shares.iter().filter(|share| share.live_at(now)).cloned().collect()
    }

    /// Revokes a share link; whether there was one.
    pub(crate) fn revoke_share(&self, id: &str) -> bool {
        let mut state = self.lock();
        let before = state.shares.len();
        state.shares.retain(|share| share.id != id);
        before != state.shares.len()
    }

    /// The live share link whose token hashes to `hash`.
    fn share_with_hash(&self, hash: &str) -> Option<Share> {
        let now = Timestamp::now();
        let state = self.lock();
        // Every share is compared, in constant time each.
        let mut found = None;
        for share in &state.shares {
            if wssh_auth::secret::hashes_equal(&share.hash, hash) && share.live_at(now) {
                found = Some(share.clone());
            }
        }
        found
    }

    /// Records an event of a client: by its user, or by no one signed in for a share link.
    fn audit_client(&self, holder: &Holder, event: AuditEvent) {
        match holder {
            Holder::User(principal) => super::audit::record(&self.auth, Some(principal), event),
            Holder::Share(_) => super::audit::record(&self.auth, None, event),
        }
    }

    /// Asks the shell to end (SIGHUP, SIGKILL after the grace).
    pub(crate) fn end(&self) {
        self.end_requested.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Whether the shell is being ended (on request, by its detach timeout, or because its
    /// owner lost access): it is no longer listed, attached to, opened by its share links or
    /// counted against the limits, while its program takes its grace to go. (A shell whose
    /// program exited by itself stays attachable while its last output drains, so that a
    /// client coming back then still gets that output and the exit status.)
    pub(crate) fn ending(&self) -> bool {
        self.end_requested.load(Ordering::Relaxed)
    }

    /// A receiver of the shell's progress.
    pub(crate) fn watch(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// What a client whose next byte is `offset` gets next.
    pub(crate) fn read(&self, offset: u64) -> Next {
        self.lock().history.read(offset)
    }

    /// The offset of the first byte held, and terminal bytes that draw the screen as it stood
    /// there: what a client behind the history gets before output goes on from that offset.
    pub(crate) fn restore_point(&self) -> (u64, Vec<u8>) {
        let mut state = self.lock();
        state.feed();
        (state.history.start(), state.restore())
    }

    /// The offsets of the first byte held and after the last one.
    pub(crate) fn span(&self) -> (u64, u64) {
        let state = self.lock();
        (state.history.start(), state.history.end())
    }

    /// Input from a controlling client.
    pub(crate) async fn write(&self, input: &[u8]) -> std::io::Result<()> {
        if let Some(recording) = self.recording.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            recording.input(input);
        }
        self.writer.write_all(input).await
    }

    /// A new size from a controlling client: the last controller to resize sets it.
    pub(crate) fn resize(&self, size: WindowSize) {
        let mut state = self.lock();
        if state.size != size {
            state.size = size;
            let _ = self.writer.resize(size);
            if let Some(recording) = self.recording.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
                recording.resize(size);
            }
            let at = state.history.end();
            if state.resizes.back().is_some_and(|(last, _)| *last == at) {
                state.resizes.pop_back();
            }
            state.resizes.push_back((at, size));
            if state.resizes.len() > MAX_RESIZES {
                // Too many changes to remember: the oldest is applied to the screen early.
                if let Some((_, size)) = state.resizes.pop_front() {
                    state.screen_size = size;
                    if let Some(screen) = state.screen.as_mut() {
                        screen.screen_mut().set_size(size.rows, size.cols);
                    }
                }
            }
        }
    }

    /// A snapshot for listings.
    pub(crate) fn info(&self) -> ShellInfo {
        let state = self.lock();
        ShellInfo {
            id: self.id.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            created_at: self.created_at,
            size: state.size,
            output_bytes: state.history.end(),
            clients: state.clients.clone(),
            detached_since: state.detached_since.map(|(since, _)| since),
        }
    }

    /// The shell's task: reads the terminal into the history (while no client holds the
    /// reading turn) until the program exits, the shell is asked to end, or it has been
    /// without clients for the detach timeout; then ends the program's session and tells the
    /// clients.
    async fn run(self: Arc<Self>, mut process: Box<PtyProcess>, detach_timeout: Duration, registry: Arc<Registry>) {
        let mut closed = false;
        let ending = {
            let exited = process.wait();
            tokio::pin!(exited);
            loop {
                let deadline = self.lock().detached_since.map(|(_, since)| since + detach_timeout);
                // Timers boxed, made only when armed: an attached idle shell's task carries none.
                let detached = async {
                    match deadline {
                        Some(deadline) => Box::pin(tokio::time::sleep_until(deadline)).await,
                        None => std::future::pending().await,
                    }
                };
                if self.ending() {
                    break None;
                }
                // The program is read at its own pace, whatever the clients do: one that falls
                // behind what the history holds gets a gap notice and the screen.
                tokio::select! {
                    // Boxed, and made only when reading: the wait for output is large, and a
                    // shell whose client reads the terminal itself does not wait for any.
                    read = async { Box::pin(self.read_output(READ_CHUNK, None)).await }, if !closed && !self.client_reads() => {
                        closed = read.is_none();
                    }
                    status = &mut exited => break Some(status),
                    () = self.wake.notified() => {}
                    () = detached => {
                        // Ending from now on: no longer listed or attached to.
                        self.end_requested.store(true, Ordering::Relaxed);
                        break None;
                    }
                }
            }
        };
        if self.ending() {
            // However it came to end (a request here or through another node, the detach
            // timeout, the owner's access), it leaves the cluster's listings now, not at the
            // next heartbeat.
            registry.changed.notify_one();
        }
        // From here on only this task reads (a reading client notices at its next look).
        self.terminal_closed.store(true, Ordering::Release);
        self.reading_client.store(NO_READER, Ordering::Release);
        self.progress.send_modify(|_| {});
        // Boxed: the shell's task is only as large as its long wait above.
        Box::pin(self.finish(process, ending.is_some(), closed, registry)).await;
    }

    /// The end of the shell's task: the last output when the program exited by itself
    /// (`exited`), the program's session ended, the clients told.
    async fn finish(&self, mut process: Box<PtyProcess>, exited: bool, mut closed: bool, registry: Arc<Registry>) {
        let (end, exit_status) = if exited {
            // The last output: until the terminal closes or pauses, and only so long.
            let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
            while !closed {
                let wait = DRAIN_QUIET.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                match tokio::time::timeout(wait, self.read_output(READ_CHUNK, None)).await {
                    Ok(Some(_)) => {}
                    _ => closed = true,
                }
            }
            let status = process.terminate(Duration::from_millis(100)).await;
            let exit_status = super::audit::exit_status(status.as_ref().ok());
            super::audit::record(&self.auth, None, AuditEvent::ShellEnded { shell: self.id.clone(), exit_status });
            (ShellEnd::Exited(status.ok().and_then(|status| status.code()).unwrap_or(-1)), exit_status)
        } else {
            let status = process.terminate(HANGUP_GRACE).await;
            let exit_status = super::audit::exit_status(status.as_ref().ok());
            super::audit::record(&self.auth, None, AuditEvent::ShellEnded { shell: self.id.clone(), exit_status });
            (ShellEnd::Ended, exit_status)
        };
        registry.remove(&self.id);
        if let Some(recording) = self.recording.lock().unwrap_or_else(PoisonError::into_inner).take() {
            recording.finish(exit_status);
        }
        tracing::info!(shell = %short(&self.id), session = %self.session, user = %self.owner, pid = self.pid, ?end, "shell ended");
        self.progress.send_modify(|progress| progress.ended = Some(end));
    }

    /// Waits for output, reads what is there (at most `limit` bytes) and appends it to the
    /// history, as one step under the read turn; the count, or `None` once the terminal is
    /// closed (or reading it failed).
    /// `reader`: the client that holds the reading turn, when it is the one reading.
    pub(crate) async fn read_output(&self, limit: usize, reader: Option<u64>) -> Option<usize> {
        let hold = || self.read_turn.lock().unwrap_or_else(PoisonError::into_inner);
        // Read as a data frame, which the history keeps as it is: bulk output is not copied.
        let read = self
            .reader
            .read_framed_with_held(&[DATA_TAG], limit, hold, |frame| {
                let count = frame.len() - 1;
                self.append(frame, reader);
                count
            })
            .await;
        match read {
            Ok(Some(count)) => Some(count),
            Ok(None) | Err(_) => {
                self.terminal_closed.store(true, Ordering::Release);
                None
            }
        }
    }

    /// Lets the only client, controlling and sent all output so far, read the terminal itself
    /// and send what it reads at once, instead of the shell's task reading into the history
    /// and waking the client's task: one task and no hand-over on the output path of a single
    /// client, as a shell without history would have (it still appends to the history). A
    /// second client's attaching takes the turn back, so that a reading client never keeps
    /// others' tasks waiting behind it on its worker. `sent`: the offset `client` has been
    /// sent output up to. Whether the client now reads.
    pub(crate) fn take_reading(&self, client: u64, sent: u64) -> bool {
        if self.terminal_closed.load(Ordering::Acquire) {
            return false;
        }
        let state = self.lock();
        // The only client must be this one: a task that outlived its client's detaching
        // must not take a turn nobody would give back.
        if state.clients.len() != 1
            || state.clients[0].id != client
            || sent != state.history.end()
            || self.reading_client.compare_exchange(NO_READER, client, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            return false;
        }
        drop(state);
        // The shell's task may have left its loop meanwhile (it sets `terminal_closed`, then
        // takes the turn back): then the turn is not taken.
        if self.terminal_closed.load(Ordering::Acquire) {
            self.give_back_reading(client);
            return false;
        }
        // The shell's task stops reading at its next look.
        self.wake.notify_one();
        true
    }

    /// Whether `client` still reads the terminal.
    pub(crate) fn reads(&self, client: u64) -> bool {
        self.reading_client.load(Ordering::Acquire) == client
    }

    /// `client` stops reading the terminal; the shell's task reads again.
    pub(crate) fn give_back_reading(&self, client: u64) {
        if self.reading_client.compare_exchange(client, NO_READER, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.wake.notify_one();
        }
    }

    /// Whether a client reads the terminal (the shell's task does not).
    fn client_reads(&self) -> bool {
        self.reading_client.load(Ordering::Acquire) != NO_READER
    }

    /// Puts output into the history and tells the clients; `reader`: the client appending what
    /// it read itself, which, while it still holds the turn, is the only client and needs no
    /// telling (a wake-up of its own task per read would cost a poll each).
    /// `frame`: a data frame (the tag, then output), which the history may take.
    fn append(&self, frame: &mut Vec<u8>, reader: Option<u64>) {
        if let Some(recording) = self.recording.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            recording.output(&frame[1..]);
        }
        let (end, quiet) = {
            let mut state = self.lock();
            let quiet = reader.is_some_and(|client| self.reading_client.load(Ordering::Acquire) == client);
            state.take_frame(frame);
            (state.history.end(), quiet)
        };
        if quiet {
            self.progress.send_if_modified(|progress| {
                progress.end = end;
                false
            });
        } else {
            self.progress.send_modify(|progress| progress.end = end);
        }
    }
}

/// The first characters of a shell id, enough to tell shells apart in the log without
/// writing down what attaching needs.
pub(crate) fn short(id: &str) -> &str {
    id.get(..6).unwrap_or(id)
}

impl Holder {
    /// How the client is listed.
    fn label(&self) -> String {
        match self {
            Holder::User(principal) => principal.username.to_string(),
            Holder::Share(id) => format!("share:{id}"),
        }
    }
}

/// What one watchdog pass already asked the store: many shells of one owner, or many clients
/// with one credential, cost one look each.
#[derive(Default)]
struct Checked {
    /// Whether each owner may still have shells (`None`: the store failed).
    owners: HashMap<UserId, Option<bool>>,
    /// Each credential's standing now (`Some(None)`: it no longer works; `None`: the store
    /// failed), by user and how it authenticated.
    clients: HashMap<(UserId, String), Option<Option<Principal>>>,
}

impl Checked {
    /// Whether the owner of a shell that ends with its connection keeps it: the user still
    /// holds what an owner must, and the credential still works. A failing store keeps it.
    fn keeps(&mut self, auth: &Authenticator, owner: &Principal) -> bool {
        self.owner_holds(auth, owner.user_id) != Some(false) && !matches!(self.credential(auth, owner), Some(None))
    }

    /// Whether the user still exists, is enabled and holds what an owner must (asked once per
    /// pass); `None` when the store failed.
    fn owner_holds(&mut self, auth: &Authenticator, user_id: UserId) -> Option<bool> {
        *self.owners.entry(user_id).or_insert_with(|| {
            match auth.user_holds(user_id, wssh_core::shells::OWNER_KEEPS_WITH) {
                Ok(holds) => Some(holds),
                Err(error) => {
                    tracing::warn!(%error, "cannot check a shell's owner");
                    None
                }
            }
        })
    }

    /// The standing now of the credential `principal` came with (asked once per pass per
    /// credential): `Some(None)` when it no longer works, `None` when the store failed.
    fn credential(&mut self, auth: &Authenticator, principal: &Principal) -> &Option<Option<Principal>> {
        let key = (principal.user_id, format!("{:?}", principal.method));
        self.clients.entry(key).or_insert_with(|| match auth.recheck(principal) {
            Ok(now) => Some(Some(now)),
            Err(wssh_auth::AuthError::InvalidCredentials) => Some(None),
            Err(error) => {
                tracing::warn!(%error, "cannot check a shell client's credential");
                None
            }
        })
    }
}

/// Whether `principal` may attach to `shell` in `mode` (the rule is `wssh_core::shells`).
pub(crate) fn may_attach(principal: &Principal, shell: &LiveShell, mode: Mode) -> bool {
    let mode = match mode {
        Mode::Control => wssh_core::shells::ShellMode::Control,
        Mode::Observe => wssh_core::shells::ShellMode::Observe,
    };
    wssh_core::shells::may_attach(principal, shell.owner_id, mode)
}

/// Why a share link could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShareError {
    /// The shell has as many share links as allowed.
    #[error("share link limit per shell reached ({0})")]
    TooMany(usize),
}

/// Why a shell could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// The user has as many live shells as allowed.
    #[error("live shell limit per user reached ({0})")]
    PerUser(usize),
    /// The server has as many live shells as allowed.
    #[error("live shell limit of the server reached ({0})")]
    Total(usize),
}

/// Every live shell of the server.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    settings: ShellSettings,
    shells: Mutex<HashMap<String, Arc<LiveShell>>>,
    /// Shells that end with their one connection (go_ws_sh's framing), by number: their
    /// owner, and what tells the connection that access ended.
    single: Mutex<HashMap<u64, (Principal, Arc<Notify>)>>,
    next_single: AtomicU64,
    /// Whether the access watchdog runs.
    watching: AtomicBool,
    /// Wakes the cluster heartbeat: a shell started, is being ended, or ended.
    pub(crate) changed: Notify,
}

/// A go_ws_sh shell watched for its owner's access; unwatched when dropped.
pub(crate) struct SingleWatch {
    registry: Arc<Registry>,
    id: u64,
    /// Notified when the owner's credential or access ended.
    pub(crate) kick: Arc<Notify>,
}

impl Drop for SingleWatch {
    fn drop(&mut self) {
        self.registry.single.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// How often the watchdog looks at share links, and whether anything stored changed.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// How often every credential is checked again even when nothing stored changed (for
/// tokens and logins that expire with time).
const FULL_RECHECK: Duration = Duration::from_secs(10);

impl Registry {
    /// A registry with `settings`.
    pub(crate) fn new(settings: ShellSettings) -> Self {
        Registry { settings, ..Registry::default() }
    }

    /// Starts the access watchdog unless it runs.
    fn ensure_watching(self: &Arc<Self>, auth: &Arc<Authenticator>) {
        if !self.watching.swap(true, Ordering::Relaxed) {
            tokio::spawn(self.clone().watch_access(auth.clone()));
        }
    }

    /// Watches the access of `owner`, who holds a shell that ends with its connection: the
    /// same rules as a live shell's owner and client (a credential that stops working, a user
    /// disabled or deleted, `sessions:connect` lost) notify the returned watch's `kick`.
    pub(crate) fn watch_single(self: &Arc<Self>, owner: Principal, auth: &Arc<Authenticator>) -> SingleWatch {
        self.ensure_watching(auth);
        let id = self.next_single.fetch_add(1, Ordering::Relaxed);
        let kick = Arc::new(Notify::new());
        self.single.lock().unwrap_or_else(PoisonError::into_inner).insert(id, (owner, kick.clone()));
        SingleWatch { registry: self.clone(), id, kick }
    }

    /// How many live shells there are.
    pub(crate) fn live(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<LiveShell>>> {
        self.shells.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `owner` may start another shell.
    pub(crate) fn check_limits(&self, owner: &str) -> Result<(), StartError> {
        let shells = self.lock();
        // Shells being ended do not count: they are gone within their grace.
        let counted = || shells.values().filter(|shell| !shell.ending());
        if counted().count() >= self.settings.max_total {
            return Err(StartError::Total(self.settings.max_total));
        }
        if counted().filter(|shell| shell.owner == owner).count() >= self.settings.max_per_user {
            return Err(StartError::PerUser(self.settings.max_per_user));
        }
        Ok(())
    }

    /// Registers a freshly spawned program as a live shell with its first client attached;
    /// returns the shell and that client's attachment. The template's own detach timeout
    /// applies when it has one, else the server's.
    pub(crate) fn start(
        self: &Arc<Self>,
        process: PtyProcess,
        owner: Principal,
        spec: &wssh_domain::SessionSpec,
        size: WindowSize,
        auth: &Arc<Authenticator>,
        record: impl FnOnce(&str) -> Option<super::recording::ShellRecording>,
    ) -> Result<(Arc<LiveShell>, Attachment), StartError> {
        self.check_limits(owner.username.as_str())?;
        self.ensure_watching(auth);
        let session = spec.name.as_str();
        let attachment = Attachment { id: 0, kick: Arc::new(Notify::new()) };
        let first = ClientInfo {
            id: 0,
            user: owner.username.to_string(),
            mode: Mode::Control,
            holder: Holder::User(owner.clone()),
            kick: attachment.kick.clone(),
        };
        let id = new_id();
        let recording = record(&id);
        let recorded = recording.is_some();
        let shell = Arc::new(LiveShell {
            id,
            owner: owner.username.to_string(),
            owner_id: owner.user_id,
            session: session.to_owned(),
            created_at: Timestamp::now(),
            pid: process.pid(),
            state: Mutex::new(State::new(self.settings.history_bytes, size, first)),
            progress: watch::Sender::new(Progress { end: 0, ended: None }),
            reader: process.reader(),
            writer: process.writer(),
            read_turn: Mutex::new(()),
            reading_client: AtomicU64::new(NO_READER),
            terminal_closed: AtomicBool::new(false),
            wake: Notify::new(),
            end_requested: AtomicBool::new(false),
            auth: auth.clone(),
            recording: Mutex::new(recording),
        });
        super::audit::started(auth, &owner, &shell.id, session, size.cols, size.rows, recorded);
        self.lock().insert(shell.id.clone(), shell.clone());
        self.changed.notify_one();
        let detach_timeout = spec.detach_timeout_seconds.map_or(self.settings.detach_timeout, Duration::from_secs);
        // The process boxed: the task keeps it for its whole life.
        tokio::spawn(shell.clone().run(Box::new(process), detach_timeout, self.clone()));
        Ok((shell, attachment))
    }

    /// The access watchdog: share links and credential expiries every tick; every owner and attached user in the store
    /// whenever anything stored changed (and every [`FULL_RECHECK`] anyway). A revoked token,
    /// an ended login, a disabled or deleted user, or a lost permission takes effect within
    /// a second.
    async fn watch_access(self: Arc<Self>, auth: Arc<Authenticator>) {
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checked: Option<(u64, tokio::time::Instant)> = None;
        loop {
            ticks.tick().await;
            let shells = self.all();
            let single: Vec<(Principal, Arc<Notify>)> =
                self.single.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
            if shells.is_empty() && single.is_empty() {
                continue;
            }
            for shell in &shells {
                shell.kick_expired();
            }
            let now = Timestamp::now();
            for (owner, kick) in &single {
                if owner.has_expired(now) {
                    kick.notify_one();
                }
            }
            let generation = auth.generation();
            if checked.is_some_and(|(seen, at)| seen == generation && at.elapsed() < FULL_RECHECK) {
                continue;
            }
            checked = Some((generation, tokio::time::Instant::now()));
            let auth = auth.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let mut checked = Checked::default();
                for shell in shells {
                    shell.recheck(&auth, &mut checked);
                }
                for (owner, kick) in single {
                    if !checked.keeps(&auth, &owner) {
                        tracing::info!(user = %owner.username, "access ended, shell ended");
                        kick.notify_one();
                    }
                }
            })
            .await;
        }
    }

    /// The shell `id`, ending or not.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<LiveShell>> {
        self.lock().get(id).cloned()
    }

    /// Every shell, ending ones too.
    pub(crate) fn all(&self) -> Vec<Arc<LiveShell>> {
        self.lock().values().cloned().collect()
    }

    /// The shell `id` unless it is ending: what attaching and listing see.
    pub(crate) fn get_live(&self, id: &str) -> Option<Arc<LiveShell>> {
        self.get(id).filter(|shell| !shell.ending())
    }

    /// Every shell but the ending ones: what listings show.
    pub(crate) fn all_live(&self) -> Vec<Arc<LiveShell>> {
        self.lock().values().filter(|shell| !shell.ending()).cloned().collect()
    }

    /// The shell and live share link that `token` (a share token) opens.
    pub(crate) fn find_share(&self, token: &str) -> Option<(Arc<LiveShell>, Share)> {
        let hash = wssh_auth::secret::hash_token_secret(token);
        self.all_live().into_iter().find_map(|shell| shell.share_with_hash(&hash).map(|share| (shell, share)))
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
        self.changed.notify_one();
    }
}

/// 128 random bits, URL-safe base64 without padding (22 characters).
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS's random source failing is not something a server can carry on from.
    getrandom::fill(&mut bytes).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(history: &History, mut offset: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while let Next::Frames(frames, next) = history.read(offset) {
            for frame in frames {
                assert_eq!(frame[0], DATA_TAG);
                out.extend_from_slice(&frame[1..]);
            }
            offset = next;
        }
        out
    }

    #[test]
    fn a_look_at_the_history_takes_a_bounded_batch() {
        let mut history = History::new(8 << 20);
        for _ in 0..40 {
            history.push_frame(&mut [&[DATA_TAG][..], &[b'x'; 60 * 1024][..]].concat());
        }
        let Next::Frames(frames, next) = history.read(100) else { panic!("output is held") };
        let taken: usize = frames.iter().map(|frame| frame.len() - 1).sum();
        assert_eq!(taken as u64, next - 100);
        assert!((BATCH_BYTES..BATCH_BYTES + 60 * 1024).contains(&taken), "{taken} bytes in one look");
        assert_eq!(collect(&history, 100).len(), 40 * 60 * 1024 - 100, "the rest comes in later looks");
    }

    #[test]
    fn history_reads_from_any_offset_it_holds() {
        let mut history = History::new(8 << 20);
        let mut all = Vec::new();
        for index in 0..500u32 {
            let piece = format!("{index}:").repeat((index % 37) as usize * 40 + 1);
            history.push(piece.as_bytes());
            all.extend_from_slice(piece.as_bytes());
        }
        assert_eq!(history.end(), all.len() as u64);
        assert_eq!(history.start(), 0);
        for offset in [0, 1, 17, 4095, 4096, 10_000, all.len() as u64 - 1, all.len() as u64] {
            assert_eq!(collect(&history, offset), all[offset as usize..], "from {offset}");
        }
        assert_eq!(history.bytes(), all);
    }

    #[test]
    fn bulk_frames_are_kept_as_read_and_small_output_is_copied() {
        let mut history = History::new(8 << 20);
        let frame_of = |output: &[u8], capacity: usize| {
            let mut frame = Vec::with_capacity(capacity);
            frame.push(DATA_TAG);
            frame.extend_from_slice(output);
            frame
        };
        // Small output: copied into a chunk of its size, the read buffer left for the next read.
        let mut small = frame_of(b"$ ", 64 * 1024);
        history.push_frame(&mut small);
        assert_eq!(small, [DATA_TAG, b'$', b' '], "left as it was");
        // Merged into that chunk while it stays small.
        let mut echo = frame_of(b"ls", 64 * 1024);
        history.push_frame(&mut echo);
        assert_eq!(history.chunks.len(), 1);
        // Bulk output: the buffer itself becomes the chunk, shrunk to what was read.
        let bulk: Vec<u8> = (0..40_000u32).map(|index| (index % 251) as u8).collect();
        let mut read = frame_of(&bulk, 64 * 1024);
        let address = read.as_ptr();
        history.push_frame(&mut read);
        assert!(read.is_empty() && read.capacity() == 0, "taken");
        let kept = history.chunks.back().unwrap();
        assert_eq!(kept.as_ptr(), address, "not copied");
        assert_eq!(kept.len(), 1 + bulk.len());
        let mut all = b"$ ls".to_vec();
        all.extend_from_slice(&bulk);
        assert_eq!(history.bytes(), all);
        assert_eq!(collect(&history, 3), all[3..]);
    }

    #[test]
    fn history_forgets_the_oldest_output_and_says_so() {
        let mut history = History::new(100_000);
        let mut all = Vec::new();
        let mut evicted = Vec::new();
        for index in 0..10_000u32 {
            let piece = format!("line {index}\r\n");
            for chunk in history.push(piece.as_bytes()) {
                evicted.extend_from_slice(&chunk[1..]);
            }
            all.extend_from_slice(piece.as_bytes());
        }
        let start = history.start();
        assert!(start > 0);
        assert!(history.charged <= 100_000);
        assert_eq!(evicted, all[..start as usize], "what fell out is exactly what came first");
        assert!(matches!(history.read(0), Next::Gap));
        assert_eq!(collect(&history, start), all[start as usize..]);
        // Tiny outputs cost their overhead: memory stays bounded.
        let mut tiny = History::new(10_000);
        for _ in 0..100_000 {
            tiny.push(b"x");
        }
        assert!(tiny.charged <= 10_000 + MERGE_LIMIT + CHUNK_OVERHEAD);
    }

    #[test]
    fn ids_are_long_url_safe_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'));
    }

    /// A shell's state with a 64 KiB history and one client.
    fn small_state() -> State {
        let client = ClientInfo {
            id: 0,
            user: "alice".into(),
            mode: Mode::Control,
            holder: Holder::Share("x".into()),
            kick: Arc::new(Notify::new()),
        };
        State::new(64 * 1024, WindowSize { cols: 80, rows: 24 }, client)
    }

    #[test]
    fn a_flood_feeds_the_screen_within_the_budget_and_the_rest_once_it_stops() {
        let mut state = small_state();
        // Interactive output that fits the history defers nothing, so feeds nothing.
        assert!(!state.take_output(b"$ "));
        // A flood: bulk reads with small ones between them, as a fast program gives.
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
        let bulk: Vec<u8> = line.iter().copied().cycle().take(32 * 1024).collect();
        let mut fed = 0;
        for _ in 0..200 {
            assert!(!state.take_output(&bulk), "a bulk read never feeds the emulator");
            let before = state.window_fed;
            if state.take_output(&bulk[..512]) {
                fed += state.window_fed - before;
            }
        }
        // 6.5 MB went through; the emulator got at most its budget of it.
        assert!(fed <= FEED_BUDGET, "fed {fed} bytes during the flood");
        assert!(state.unfed_bytes > FEED_BUDGET, "the rest waits: {}", state.unfed_bytes);
        // Once bulk output has stopped for a window, the next interactive read feeds the rest.
        state.last_bulk = Some(std::time::Instant::now() - FEED_WINDOW);
        state.window_end = Some(std::time::Instant::now());
        assert!(state.take_output(b"$ "));
        assert_eq!(state.unfed_bytes, 0);
        assert!(state.screen.is_some());
    }

    #[test]
    fn a_mode_sequence_split_between_fed_and_dropped_output_reaches_the_screen() {
        let mut state = small_state();
        let frame = |bytes: &[u8]| {
            let mut frame = vec![DATA_TAG];
            frame.extend_from_slice(bytes);
            Bytes::from(frame)
        };
        // Fed: output that ends inside `ESC [ ? 1049 h`.
        state.defer(0, vec![frame(b"$ vim\r\n\x1b[?10")]);
        state.feed();
        // Dropped unfed: the rest of that sequence, then over a megabyte more.
        let flood: Vec<u8> = b"49h~\r\n".iter().copied().chain(std::iter::repeat_n(b'x', UNFED_LIMIT)).collect();
        state.defer(12, vec![frame(&flood), frame(b"~\r\n")]);
        assert!(state.unfed.len() == 1, "the flood was dropped unfed");
        state.feed();
        assert!(state.screen.as_ref().unwrap().screen().alternate_screen());
    }

    #[test]
    fn a_flood_in_small_reads_feeds_the_screen_within_the_budget_too() {
        let mut state = small_state();
        // `yes $'\e[?1049h\e[?1049l'` read 512 bytes at a time, never one large read: 8 MB.
        let piece: Vec<u8> = b"\x1b[?1049h\x1b[?1049l\n".iter().copied().cycle().take(512).collect();
        let mut fed = 0;
        let started = std::time::Instant::now();
        for _ in 0..16_000 {
            let before = state.window_fed;
            if state.take_output(&piece) {
                // A new window starts its count afresh.
                fed += if state.window_fed >= before { state.window_fed - before } else { state.window_fed };
            }
        }
        let windows = started.elapsed().as_secs() as usize + 1;
        assert!(fed <= (windows + 1) * FEED_BUDGET, "fed {fed} bytes of an 8 MB flood in {windows} windows");
        // Whatever the flood left, a restore still knows the alternate screen is off.
        state.feed();
        assert!(!state.screen.as_ref().unwrap().screen().alternate_screen());
    }
}
