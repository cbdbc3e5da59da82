//! The `Authorization` header (`Basic`, `Bearer` token or base64 JSON) and go_ws_sh's JSON
//! `authorization` object.
#![no_main]

use wssh_auth::Credentials;
use wssh_auth::credentials::AuthorizationObject;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Credentials::from_authorization_header(text);
    }
    if let Ok(object) = serde_json::from_slice::<AuthorizationObject>(data) {
        let _ = object.into_credentials();
    }
});
