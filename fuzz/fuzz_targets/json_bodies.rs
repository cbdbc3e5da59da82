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
    use wssh_domain::{NewAccessToken, NewUser, Password, RoleKey, SessionName, SessionSpec, TokenSpec, Username};
    use wssh_store::{SessionStore, TokenStore, UserStore};
    let dir = std::env::temp_dir().join(format!("wssh-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("fuzz directory");
    let store = std::sync::Arc::new(wssh_store_sqlite::SqliteStore::open(&dir.join("fuzz.db")).expect("store"));
    let password = Password::parse("fuzzing-admin-password").expect("password");
    let hash = wssh_auth::password::hash_password(&password).expect("hash");
    let admin = store.create_user(&NewUser::new(Username::parse("admin").expect("name"), hash, RoleKey::Admin)).expect("admin");
    let secret = wssh_auth::secret::generate_token_secret();
    store
        .insert_token(&NewAccessToken {
            identifier: wssh_auth::secret::generate_token_identifier(),
            user_id: admin.id,
            secret_hash: wssh_auth::secret::hash_token_secret(&secret),
            spec: TokenSpec::default(),
        })
        .expect("token");
    let spec = SessionSpec::new(SessionName::parse("sh").expect("name"), "true".into(), Vec::new(), String::new())
        .expect("session");
    store.create_session(&spec).expect("session");
    let auth = wssh_auth::Authenticator::new(store, wssh_auth::throttle::LoginThrottle::default()).expect("auth");
    (Harness::new(auth, secret), dir)
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
