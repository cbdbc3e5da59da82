//! SSH public keys as users upload them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wssh_auth::ssh_key::parse_public_key(text);
    }
});
