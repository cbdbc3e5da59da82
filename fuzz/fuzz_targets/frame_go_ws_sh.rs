//! go_ws_sh's framing (gzip, protobuf, Avro, the JSON resize): any client frame decodes or is
//! refused, never panics or grows without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wssh_http::fuzzing::decode_frame(false, data);
});
