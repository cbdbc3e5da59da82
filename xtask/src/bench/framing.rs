//! The client side of wssh's two shell framings (`docs/protocol.md`), written from the
//! protocol description: go_ws_sh's gzip(protobuf(Avro)) envelope and the native `wssh.v1`
//! one-byte header.

use std::io::{Read, Write};

use bytes::Bytes;

use super::target::Result;

/// The subprotocol that selects the native framing.
pub(crate) const NATIVE_SUBPROTOCOL: &str = "wssh.v1";

/// Which framing a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `wssh.v1`: byte 0 is the message type, no compression.
    Native,
    /// go_ws_sh's: every frame gzip of a protobuf `wsmsg`, stdin/stdout inside an Avro record.
    GoWsSh,
}

/// What a server frame meant.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FromServer {
    /// Program output.
    Output(Bytes),
    /// The program exited (native: exit code; go_ws_sh has no such frame).
    Exit(i32),
    /// The server refused or ended the session, with its reason.
    Error(String),
    /// Anything else that is not output (go_ws_sh's `["resolved", …]`).
    Other,
}

impl Framing {
    /// The short name in target names and the report.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Framing::Native => "native",
            Framing::GoWsSh => "go_ws_sh",
        }
    }

    /// The frame that sizes the terminal.
    pub(crate) fn resize(self, cols: u16, rows: u16) -> Vec<u8> {
        match self {
            Framing::Native => {
                let mut frame = vec![1];
                frame.extend_from_slice(&cols.to_be_bytes());
                frame.extend_from_slice(&rows.to_be_bytes());
                frame
            }
            Framing::GoWsSh => wsmsg(1, format!("[\"resize\",{cols},{rows}]").as_bytes()),
        }
    }

    /// The frame that carries keystrokes.
    pub(crate) fn stdin(self, input: &[u8]) -> Vec<u8> {
        match self {
            Framing::Native => {
                let mut frame = Vec::with_capacity(1 + input.len());
                frame.push(0);
                frame.extend_from_slice(input);
                frame
            }
            Framing::GoWsSh => wsmsg(2, &avro("stdin", input)),
        }
    }

    /// Decodes a binary frame from the server.
    pub(crate) fn decode(self, frame: Bytes) -> Result<FromServer> {
        match self {
            Framing::Native => match frame.first() {
                Some(0) => Ok(FromServer::Output(frame.slice(1..))),
                Some(2) if frame.len() == 5 => {
                    Ok(FromServer::Exit(i32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]])))
                }
                Some(3) => Ok(FromServer::Error(String::from_utf8_lossy(&frame[1..]).into_owned())),
                // A live shell's id and offset, and a restored screen: not output.
                Some(4 | 6) => Ok(FromServer::Other),
                // The client fell further behind than the shell's history: output was lost.
                Some(5) => Ok(FromServer::Error(format!("gap, output lost: {}", String::from_utf8_lossy(&frame[1..])))),
                _ => Err(format!("unknown native frame {:?}", frame.first()).into()),
            },
            Framing::GoWsSh => decode_go_ws_sh(&frame),
        }
    }
}

/// gzip with the default level, as go_ws_sh's clients do.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Appends a protobuf/Avro base-128 varint.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a base-128 varint, advancing `input`.
fn read_varint(input: &mut &[u8]) -> Result<u64> {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or("truncated varint")?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("overlong varint".into())
}

/// Reads `length` bytes, advancing `input`.
fn take<'a>(input: &mut &'a [u8], length: u64) -> Result<&'a [u8]> {
    let length = usize::try_from(length)?;
    if length > input.len() {
        return Err("truncated field".into());
    }
    let (taken, rest) = input.split_at(length);
    *input = rest;
    Ok(taken)
}

/// gzip(protobuf `wsmsg { int32 type = 1; bytes data = 2; }`).
fn wsmsg(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut message = vec![0x08, kind, 0x12];
    varint(&mut message, data.len() as u64);
    message.extend_from_slice(data);
    gzip(&message)
}

/// The Avro record `{type: string, body: bytes}` (lengths zig-zag encoded).
fn avro(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.len() + body.len() + 8);
    varint(&mut out, (kind.len() as u64) << 1);
    out.extend_from_slice(kind.as_bytes());
    varint(&mut out, (body.len() as u64) << 1);
    out.extend_from_slice(body);
    out
}

/// Decodes one go_ws_sh server frame.
fn decode_go_ws_sh(frame: &[u8]) -> Result<FromServer> {
    let mut plain = Vec::with_capacity(frame.len() * 4);
    flate2::read::MultiGzDecoder::new(frame).read_to_end(&mut plain)?;
    let mut input = plain.as_slice();
    let (mut kind, mut data): (u64, &[u8]) = (0, &[]);
    while !input.is_empty() {
        match read_varint(&mut input)? {
            0x08 => kind = read_varint(&mut input)?,
            0x12 => {
                let length = read_varint(&mut input)?;
                data = take(&mut input, length)?;
            }
            tag => return Err(format!("unexpected protobuf tag {tag}").into()),
        }
    }
    match kind {
        1 => {
            let value: serde_json::Value = serde_json::from_slice(data)?;
            match value.get(0).and_then(serde_json::Value::as_str) {
                Some("rejected") => Ok(FromServer::Error(value.get(1).map(ToString::to_string).unwrap_or_default())),
                _ => Ok(FromServer::Other),
            }
        }
        2 => {
            let mut record = data;
            let length = read_varint(&mut record)? >> 1;
            let record_type = take(&mut record, length)?;
            let length = read_varint(&mut record)? >> 1;
            let body = take(&mut record, length)?;
            if record_type != b"stdout" {
                return Err(format!("unexpected Avro type {:?}", String::from_utf8_lossy(record_type)).into());
            }
            // Keep the decompressed buffer and hand out the body as a slice of it.
            let start = body.as_ptr() as usize - plain.as_ptr() as usize;
            let end = start + body.len();
            Ok(FromServer::Output(Bytes::from(plain).slice(start..end)))
        }
        other => Err(format!("unexpected wsmsg type {other}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of `docs/protocol.md`: stdin `ls\r`, before gzip.
    #[test]
    fn go_ws_sh_stdin_matches_the_documented_bytes() {
        let frame = Framing::GoWsSh.stdin(b"ls\r");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(frame.as_slice()).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, b"\x08\x02\x12\x0a\x0a\x73\x74\x64\x69\x6e\x06\x6c\x73\x0d");
    }

    #[test]
    fn go_ws_sh_stdout_round_trips() {
        let frame = Bytes::from(wsmsg(2, &avro("stdout", b"hello")));
        assert_eq!(Framing::GoWsSh.decode(frame).unwrap(), FromServer::Output(Bytes::from_static(b"hello")));
        let resolved = Bytes::from(wsmsg(1, br#"["resolved","process cat started success"]"#));
        assert_eq!(Framing::GoWsSh.decode(resolved).unwrap(), FromServer::Other);
    }

    #[test]
    fn native_frames_decode() {
        assert_eq!(Framing::Native.resize(80, 24), [1, 0, 80, 0, 24]);
        let output = Framing::Native.decode(Bytes::from_static(b"\x00hi")).unwrap();
        assert_eq!(output, FromServer::Output(Bytes::from_static(b"hi")));
        assert_eq!(Framing::Native.decode(Bytes::from_static(b"\x02\xff\xff\xff\xff")).unwrap(), FromServer::Exit(-1));
    }
}
