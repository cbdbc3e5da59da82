//! The `Sec-WebSocket-Protocol` credential (a percent-encoded query string), over one or more
//! header values (split on NUL).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|byte| *byte == 0).collect();
    let _ = wssh_http::fuzzing::read_subprotocols(&values);
});
