//! The server configuration file (go_ws_sh's `server-config.json` plus wssh's keys), read by
//! the binary's own code, and every derived value the server computes from it.
#![no_main]
#![allow(dead_code, unreachable_pub)]

#[path = "../../crates/wssh/src/config.rs"]
mod config;
#[path = "../../crates/wssh/src/hardening.rs"]
mod hardening;

/// Where each run writes its input, for the loader to read as the operator's file.
static FILE: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
    std::env::temp_dir().join(format!("wssh-fuzz-config-{}.json", std::process::id()))
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if std::fs::write(&*FILE, data).is_err() {
        return;
    }
    let no_environment: Vec<(String, String)> = Vec::new();
    if let Ok(config) = config::ServerConfig::load(Some(&FILE), no_environment) {
        for (index, server) in config.servers.iter().enumerate() {
            let _ = server.port(index);
            let _ = server.is_tls();
        }
        let _ = config.limits.listener_limits(1024);
        let _ = config.limits.login_throttle(config.lockout_max_failures, config.lockout_window_seconds);
    }
});
