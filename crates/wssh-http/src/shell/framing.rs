//! The two wire framings of the shell WebSocket.
//!
//! * **go_ws_sh** (what go_ws_sh and its browser client speak): every frame binary, the payload
//!   gzip of the protobuf message `wsmsg { int32 type = 1; bytes data = 2; }`. Type 1 carries a
//!   JSON array (`["resize", cols, rows]` in, `["resolved"|"rejected", text]` out); type 2 an
//!   Avro record `{type: string, body: bytes}` (`stdin` in, `stdout` out).
//! * **native** (`wssh.v1` subprotocol, for our own clients): binary frames whose first byte is
//!   the type: 0 data (stdin in, stdout out), 1 resize (u16 cols, u16 rows, big-endian),
//!   2 exit (i32 exit code, big-endian; -1 when killed by a signal), 3 error (UTF-8 text).
//!
//! `docs/protocol.md` documents both.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use prost::Message as _;

/// The largest decompressed message accepted; protects against gzip bombs.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The largest WebSocket message or frame a shell connection takes (a gzip message may be
/// larger than what it holds, up to this).
pub(crate) const MAX_WIRE_BYTES: usize = 2 * MAX_MESSAGE_BYTES;

/// The subprotocol that selects the native framing.
pub(crate) const NATIVE_SUBPROTOCOL: &str = "wssh.v1";

/// What a client can say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientMessage {
    /// New terminal size.
    Resize { cols: u16, rows: u16 },
    /// Bytes typed or pasted.
    Stdin(Vec<u8>),
}

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("not a gzip stream")]
    Gzip,
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    /// A WebSocket message or frame over the connection's limit ([`MAX_WIRE_BYTES`]).
    #[error("message larger than {MAX_WIRE_BYTES} bytes")]
    OverLimit,
    #[error("not a protobuf wsmsg")]
    Protobuf,
    #[error("unknown message type {0}")]
    UnknownType(i32),
    #[error("unknown recv text: {0}")]
    BadText(&'static str),
    #[error("bad avro record")]
    Avro,
    #[error("unknown avro message type {0:?}")]
    UnknownAvroType(String),
    #[error("empty frame")]
    Empty,
}

impl FrameError {
    /// The close code a connection refused for this error ends with.
    pub(crate) fn close_code(&self) -> tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        if matches!(self, FrameError::OverLimit) { CloseCode::Size } else { CloseCode::Protocol }
    }
}

/// Which framing a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    GoWsSh,
    Native,
}

/// go_ws_sh's protobuf envelope.
#[derive(Clone, PartialEq, prost::Message)]
struct WsMsg {
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(bytes = "vec", tag = "2")]
    data: Vec<u8>,
}

const TEXT: i32 = 1;
const BINARY: i32 = 2;

const NATIVE_DATA: u8 = 0;
const NATIVE_RESIZE: u8 = 1;
const NATIVE_EXIT: u8 = 2;
const NATIVE_ERROR: u8 = 3;

impl Framing {
    /// Decodes one client frame's payload.
    pub(crate) fn decode(self, payload: &[u8]) -> Result<ClientMessage, FrameError> {
        match self {
            Framing::GoWsSh => decode_go_ws_sh(payload),
            Framing::Native => decode_native(payload),
        }
    }

    /// Encodes terminal output.
    pub(crate) fn stdout(self, output: &[u8]) -> Bytes {
        match self {
            Framing::GoWsSh => envelope(BINARY, avro_record("stdout", output)),
            Framing::Native => tagged(NATIVE_DATA, output),
        }
    }

    /// Whether output frames are compressed (go_ws_sh's are gzipped), so that encoding them
    /// costs more than reading the terminal.
    pub(crate) fn compresses(self) -> bool {
        match self {
            Framing::GoWsSh => true,
            Framing::Native => false,
        }
    }

    /// Announces that the program started; the native framing says nothing.
    pub(crate) fn started(self, program: &str) -> Option<Bytes> {
        match self {
            Framing::GoWsSh => {
                let text = serde_json::json!(["resolved", format!("process {program} started success")]).to_string();
                Some(envelope(TEXT, text.into_bytes()))
            }
            Framing::Native => None,
        }
    }

    /// Reports an error before the connection closes.
    pub(crate) fn rejected(self, reason: &str) -> Bytes {
        match self {
            Framing::GoWsSh => envelope(TEXT, serde_json::json!(["rejected", reason]).to_string().into_bytes()),
            Framing::Native => tagged(NATIVE_ERROR, reason.as_bytes()),
        }
    }

    /// Reports the exit code; go_ws_sh has no such message (the close reason carries it).
    pub(crate) fn exited(self, code: i32) -> Option<Bytes> {
        match self {
            Framing::GoWsSh => None,
            Framing::Native => Some(tagged(NATIVE_EXIT, &code.to_be_bytes())),
        }
    }
}

fn tagged(tag: u8, body: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(body.len() + 1);
    frame.push(tag);
    frame.extend_from_slice(body);
    Bytes::from(frame)
}

fn decode_native(payload: &[u8]) -> Result<ClientMessage, FrameError> {
    let (&tag, body) = payload.split_first().ok_or(FrameError::Empty)?;
    match tag {
        NATIVE_DATA => Ok(ClientMessage::Stdin(body.to_vec())),
        NATIVE_RESIZE => match body {
            [c0, c1, r0, r1] => {
                let (cols, rows) = (u16::from_be_bytes([*c0, *c1]), u16::from_be_bytes([*r0, *r1]));
                // As the go_ws_sh framing: a terminal has at least one column and one row.
                if cols == 0 || rows == 0 {
                    return Err(FrameError::BadText("terminal size out of range"));
                }
                Ok(ClientMessage::Resize { cols, rows })
            }
            _ => Err(FrameError::BadText("resize needs four bytes")),
        },
        other => Err(FrameError::UnknownType(i32::from(other))),
    }
}

/// gzip(protobuf(wsmsg{kind, data})).
fn envelope(kind: i32, data: Vec<u8>) -> Bytes {
    let message = WsMsg { kind, data }.encode_to_vec();
    let mut encoder = GzEncoder::new(Vec::with_capacity(message.len() / 2 + 32), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(&message);
    Bytes::from(encoder.finish().unwrap_or_default())
}

fn decode_go_ws_sh(payload: &[u8]) -> Result<ClientMessage, FrameError> {
    let mut decompressed = Vec::new();
    MultiGzDecoder::new(payload)
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut decompressed)
        .map_err(|_| FrameError::Gzip)?;
    if decompressed.len() > MAX_MESSAGE_BYTES {
        return Err(FrameError::TooLarge);
    }
    let message = WsMsg::decode(decompressed.as_slice()).map_err(|_| FrameError::Protobuf)?;
    match message.kind {
        TEXT => decode_resize(&message.data),
        BINARY => {
            let (kind, body) = decode_avro_record(&message.data)?;
            if kind == "stdin" { Ok(ClientMessage::Stdin(body)) } else { Err(FrameError::UnknownAvroType(kind)) }
        }
        other => Err(FrameError::UnknownType(other)),
    }
}

/// `["resize", cols, rows]` with JSON numbers.
fn decode_resize(data: &[u8]) -> Result<ClientMessage, FrameError> {
    let value: serde_json::Value = serde_json::from_slice(data).map_err(|_| FrameError::BadText("not JSON"))?;
    let [kind, cols, rows] = value.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(FrameError::BadText("expected [\"resize\", cols, rows]"));
    };
    if kind.as_str() != Some("resize") {
        return Err(FrameError::BadText("expected [\"resize\", cols, rows]"));
    }
    let dimension = |value: &serde_json::Value| {
        value
            .as_f64()
            .filter(|number| (1.0..=f64::from(u16::MAX)).contains(number))
            .map(|number| number as u16)
            .ok_or(FrameError::BadText("terminal size out of range"))
    };
    Ok(ClientMessage::Resize { cols: dimension(cols)?, rows: dimension(rows)? })
}

/// Avro `long`: zig-zag, then base-128 varint.
fn write_avro_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn read_avro_long(input: &mut &[u8]) -> Result<i64, FrameError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or(FrameError::Avro)?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(FrameError::Avro)
}

fn read_avro_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], FrameError> {
    let length = usize::try_from(read_avro_long(input)?).map_err(|_| FrameError::Avro)?;
    if length > input.len() {
        return Err(FrameError::Avro);
    }
    let (bytes, rest) = input.split_at(length);
    *input = rest;
    Ok(bytes)
}

/// The Avro record `{type: string, body: bytes}`.
fn avro_record(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.len() + body.len() + 12);
    write_avro_long(&mut out, kind.len() as i64);
    out.extend_from_slice(kind.as_bytes());
    write_avro_long(&mut out, body.len() as i64);
    out.extend_from_slice(body);
    out
}

fn decode_avro_record(mut input: &[u8]) -> Result<(String, Vec<u8>), FrameError> {
    let kind = std::str::from_utf8(read_avro_bytes(&mut input)?).map_err(|_| FrameError::Avro)?.to_owned();
    let body = read_avro_bytes(&mut input)?.to_vec();
    Ok((kind, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn known_bytes_from_the_protocol_description() {
        // stdin "ls\r" as Avro, then wrapped in wsmsg.
        assert_eq!(avro_record("stdin", b"ls\r"), [0x0a, b's', b't', b'd', b'i', b'n', 0x06, b'l', b's', 0x0d]);
        assert_eq!(avro_record("stdin", b"e"), [0x0a, 0x73, 0x74, 0x64, 0x69, 0x6e, 0x02, 0x65]);
        let mut resize = vec![0x08, 0x01, 0x12, 0x10];
        resize.extend_from_slice(br#"["resize",80,24]"#);
        assert_eq!(decode_go_ws_sh(&gzip(&resize)), Ok(ClientMessage::Resize { cols: 80, rows: 24 }));
        let mut stdin = vec![0x08, 0x02, 0x12, 0x0a];
        stdin.extend_from_slice(&avro_record("stdin", b"ls\r"));
        assert_eq!(decode_go_ws_sh(&gzip(&stdin)), Ok(ClientMessage::Stdin(b"ls\r".to_vec())));
    }

    #[test]
    fn server_messages_decode_as_go_ws_sh_expects() {
        let frame = Framing::GoWsSh.stdout(b"hello");
        let message = WsMsg::decode(gunzip(&frame).as_slice()).unwrap();
        assert_eq!(message.kind, 2);
        assert_eq!(decode_avro_record(&message.data).unwrap(), ("stdout".to_owned(), b"hello".to_vec()));
        let started = Framing::GoWsSh.started("bash").unwrap();
        let message = WsMsg::decode(gunzip(&started).as_slice()).unwrap();
        assert_eq!(message.kind, 1);
        assert_eq!(String::from_utf8(message.data).unwrap(), r#"["resolved","process bash started success"]"#);
    }

    #[test]
    fn avro_longs_round_trip() {
        for value in [0, 1, -1, 63, 64, -65, 300, i64::from(u32::MAX), i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_avro_long(&mut out, value);
            assert_eq!(read_avro_long(&mut out.as_slice()), Ok(value));
        }
        let mut big = Vec::new();
        write_avro_long(&mut big, 300);
        assert_eq!(big, [0xd8, 0x04]);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert_eq!(decode_go_ws_sh(b"not gzip"), Err(FrameError::Gzip));
        assert_eq!(decode_go_ws_sh(&gzip(b"\xff\xff\xff")), Err(FrameError::Protobuf));
        assert!(decode_go_ws_sh(&gzip(&[0x08, 0x01, 0x12, 0x03, b'[', b'1', b']'])).is_err());
        let mut huge_avro = vec![0x08, 0x02, 0x12, 0x03];
        huge_avro.extend_from_slice(&[0x0a, 0x80, 0x80]);
        assert!(decode_go_ws_sh(&gzip(&huge_avro)).is_err());
        let bomb = gzip(&vec![0u8; MAX_MESSAGE_BYTES + 10]);
        assert_eq!(decode_go_ws_sh(&bomb), Err(FrameError::TooLarge));
        let record = avro_record("stderr", b"x");
        let mut other_type = vec![0x08, 0x02, 0x12, record.len() as u8];
        other_type.extend_from_slice(&record);
        assert!(matches!(decode_go_ws_sh(&gzip(&other_type)), Err(FrameError::UnknownAvroType(_))));
        assert_eq!(decode_native(&[]), Err(FrameError::Empty));
        assert!(decode_native(&[1, 0]).is_err());
        assert!(decode_native(&[9]).is_err());
        assert!(decode_native(&[1, 0, 0, 0, 0]).is_err(), "0x0");
        assert!(decode_native(&[1, 0, 80, 0, 0]).is_err(), "no rows");
    }

    #[test]
    fn native_frames() {
        assert_eq!(decode_native(&[1, 0, 120, 0, 40]), Ok(ClientMessage::Resize { cols: 120, rows: 40 }));
        assert_eq!(decode_native(b"\0ls"), Ok(ClientMessage::Stdin(b"ls".to_vec())));
        assert_eq!(&Framing::Native.stdout(b"hi")[..], b"\0hi");
        assert_eq!(&Framing::Native.exited(3).unwrap()[..], &[2, 0, 0, 0, 3]);
    }
}
