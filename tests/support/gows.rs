//! go_ws_sh's framing, client side, written from docs/protocol.md: a gzipped protobuf `wsmsg`
//! (field 1 the type, field 2 the data); type 1 carries JSON, type 2 an Avro record.

use std::io::{Read, Write};

/// Gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A protobuf varint.
pub fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A client `wsmsg` of `kind` carrying `data`, gzipped.
pub fn wsmsg(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut message = vec![0x08, kind, 0x12];
    varint(&mut message, data.len() as u64);
    message.extend_from_slice(data);
    gzip(&message)
}

/// An Avro record of a kind and a body.
pub fn avro(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, (kind.len() as u64) << 1);
    out.extend_from_slice(kind.as_bytes());
    varint(&mut out, (body.len() as u64) << 1);
    out.extend_from_slice(body);
    out
}

/// Reads a protobuf varint.
pub fn read_varint(input: &mut &[u8]) -> u64 {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let byte = input[0];
        *input = &input[1..];
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    value
}

/// A server message: (wsmsg type, payload) with Avro `stdout` unwrapped.
#[derive(Debug, PartialEq)]
pub enum FromServer {
    Text(serde_json::Value),
    Stdout(Vec<u8>),
}

/// Decodes a server frame.
pub fn decode_server(frame: &[u8]) -> FromServer {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(frame).read_to_end(&mut plain).expect("every server frame is gzip");
    let mut input = plain.as_slice();
    let (mut kind, mut data) = (0, Vec::new());
    while !input.is_empty() {
        match read_varint(&mut input) {
            0x08 => kind = read_varint(&mut input),
            0x12 => {
                let length = read_varint(&mut input) as usize;
                data = input[..length].to_vec();
                input = &input[length..];
            }
            other => panic!("unexpected protobuf tag {other}"),
        }
    }
    match kind {
        1 => FromServer::Text(serde_json::from_slice(&data).unwrap()),
        2 => {
            let mut record = data.as_slice();
            let length = (read_varint(&mut record) >> 1) as usize;
            assert_eq!(&record[..length], b"stdout");
            record = &record[length..];
            let length = (read_varint(&mut record) >> 1) as usize;
            FromServer::Stdout(record[..length].to_vec())
        }
        other => panic!("unexpected wsmsg type {other}"),
    }
}
