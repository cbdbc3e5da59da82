//! The native WebSocket framing (`wssh.v1`): any client frame decodes or is refused, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wssh_http::fuzzing::decode_frame(true, data);
});
