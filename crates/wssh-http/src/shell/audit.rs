//! The audit events of shells: started, attached (with the mode), detached, ended (with the
//! exit status), and share links used. Each is appended on a blocking thread, off the shell's
//! input and output paths and outside its locks.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;

use wssh_auth::{Authenticator, Principal};
use wssh_domain::audit::AuditEvent;

/// Appends `event` by `actor` (`None`: by the server, or by a share link's holder).
pub(crate) fn record(auth: &Arc<Authenticator>, actor: Option<&Principal>, event: AuditEvent) {
    let auth = auth.clone();
    let actor = actor.map(wssh_auth::audit::actor);
    tokio::task::spawn_blocking(move || auth.audit().record(actor, event));
}

/// An exit status as the audit log keeps it: the code, or 128 + the signal's number.
pub(crate) fn exit_status(status: Option<&ExitStatus>) -> Option<i32> {
    status.and_then(|status| status.code().or_else(|| status.signal().map(|signal| 128 + signal)))
}

/// The audit trail of a shell that lives exactly as long as its one connection (go_ws_sh's
/// framing): started and attached together, detached and ended together.
pub(super) struct ShellAudit {
    auth: Arc<Authenticator>,
    principal: Principal,
    /// The shell's id: 128 random bits, hex.
    id: String,
}

impl ShellAudit {
    pub(super) fn new(auth: Arc<Authenticator>, principal: Principal) -> Self {
        let mut bytes = [0u8; 16];
        wssh_auth::secret::fill_random(&mut bytes);
        let id = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        ShellAudit { auth, principal, id }
    }

    /// The shell's id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// The shell's owner.
    pub(super) fn owner(&self) -> &Principal {
        &self.principal
    }

    /// The shell started (`recorded` or not) and its client attached in control mode.
    pub(super) fn started(&self, session: &str, cols: u16, rows: u16, recorded: bool) {
        started(&self.auth, &self.principal, &self.id, session, cols, rows, recorded);
    }

    /// The client went away.
    pub(super) fn detached(&self) {
        let event = AuditEvent::ShellDetached { shell: self.id.clone(), mode: "control".into() };
        record(&self.auth, Some(&self.principal), event);
    }

    /// The program ended with `status`.
    pub(super) fn ended(&self, status: Option<&ExitStatus>) {
        let event = AuditEvent::ShellEnded { shell: self.id.clone(), exit_status: exit_status(status) };
        record(&self.auth, None, event);
    }
}

/// A shell started by `owner`, its first client attached in control mode.
pub(crate) fn started(
    auth: &Arc<Authenticator>,
    owner: &Principal,
    shell: &str,
    session: &str,
    cols: u16,
    rows: u16,
    recorded: bool,
) {
    let event = AuditEvent::ShellStarted {
        shell: shell.to_owned(),
        session: session.to_owned(),
        owner: owner.username.as_str().to_owned(),
        cols,
        rows,
        recorded,
    };
    record(auth, Some(owner), event);
    record(auth, Some(owner), AuditEvent::ShellAttached { shell: shell.to_owned(), mode: "control".into() });
}
