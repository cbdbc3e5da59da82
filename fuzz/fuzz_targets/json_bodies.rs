//! Requests through the real router, over every surface (go_ws_sh, alist, seed 002's tokens,
//! seed 004's login API and RBAC): the first bytes choose the route, the method and whether the
//! request is authenticated as an administrator; the rest is the JSON body. No request may be
//! answered 500.
#![no_main]

use std::sync::LazyLock;

use wssh_http::fuzzing::Harness;

/// Every route that reads a body, with the methods it answers.
const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("POST", "/sessions", Some("GET")),
    ("POST", "/sessions", Some("POST")),
    ("PUT", "/sessions", None),
    ("DELETE", "/sessions", None),
    ("COPY", "/sessions", None),
    ("MOVE", "/sessions", None),
    ("POST", "/credentials", Some("GET")),
    ("POST", "/credentials", Some("POST")),
    ("PUT", "/credentials", None),
    ("DELETE", "/credentials", None),
    ("POST", "/tokens", Some("GET")),
    ("POST", "/tokens", Some("POST")),
    ("PUT", "/tokens", None),
    ("DELETE", "/tokens", None),
    ("POST", "/user", None),
    ("PUT", "/user/1", None),
    ("POST", "/role", None),
    ("PUT", "/role/1", None),
    ("POST", "/auth/login", None),
    ("POST", "/auth/session", None),
    ("POST", "/AccessToken/app", None),
    ("PUT", "/AccessToken/app/1", None),
    ("PUT", "/perm", None),
    ("POST", "/user/1/bind", None),
    ("POST", "/api/auth/login", None),
    ("POST", "/api/auth/login/hash", None),
    ("POST", "/api/admin/user/create", None),
    ("POST", "/api/admin/user/update", None),
    ("POST", "/api/me/sshkey/add", None),
    ("POST", "/api/auth/2fa/verify", None),
];

static HARNESS: LazyLock<(Harness, std::path::PathBuf)> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("wssh-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("fuzz directory");
    (Harness::new(&dir), dir)
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let (method, path, method_override) = ROUTES[usize::from(selector) % ROUTES.len()];
    let harness = &HARNESS.0;
    let bearer = format!("Bearer {}", harness.admin_token);
    let mut headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
    if selector >= 128 {
        headers.push(("authorization", bearer.as_bytes()));
    }
    if let Some(method_override) = method_override {
        headers.push(("x-http-method-override", method_override.as_bytes()));
    }
    if let Some(status) = harness.request(method, path, &headers, body.to_vec()) {
        assert_ne!(status, 500, "{method} {path} answered 500");
    }
});
