//! The audit events of one shell: started, attached, detached, ended. Each is appended on a
//! blocking thread, off the shell's input and output paths.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use wssh_auth::Principal;
use wssh_domain::audit::AuditEvent;

use crate::SharedState;

/// The audit trail of one shell, opened by one principal.
pub(super) struct ShellAudit {
    state: SharedState,
    principal: Principal,
    /// The shell's id: 128 random bits, hex.
    pub(super) id: String,
}

impl ShellAudit {
    pub(super) fn new(state: SharedState, principal: Principal) -> Self {
        let mut bytes = [0u8; 16];
        wssh_auth::secret::fill_random(&mut bytes);
        let id = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        ShellAudit { state, principal, id }
    }

    fn record(&self, by_principal: bool, event: AuditEvent) {
        let state = self.state.clone();
        let principal = by_principal.then(|| self.principal.clone());
        tokio::task::spawn_blocking(move || match principal {
            Some(principal) => state.services.audit(&principal, event),
            None => state.services.audit_server(event),
        });
    }

    /// The shell started and its first client attached in control mode.
    pub(super) fn started(&self, session: &str, cols: u16, rows: u16) {
        let owner = self.principal.username.as_str().to_owned();
        let shell = self.id.clone();
        let started = AuditEvent::ShellStarted {
            shell: shell.clone(),
            session: session.to_owned(),
            owner,
            cols,
            rows,
            recorded: false,
        };
        self.record(true, started);
        self.record(true, AuditEvent::ShellAttached { shell, mode: "control".into() });
    }

    /// The client went away.
    pub(super) fn detached(&self) {
        self.record(true, AuditEvent::ShellDetached { shell: self.id.clone(), mode: "control".into() });
    }

    /// The program ended with `status` (a signal as 128 + its number).
    pub(super) fn ended(&self, status: Option<ExitStatus>) {
        let exit_status =
            status.and_then(|status| status.code().or_else(|| status.signal().map(|signal| 128 + signal)));
        self.record(false, AuditEvent::ShellEnded { shell: self.id.clone(), exit_status });
    }
}
