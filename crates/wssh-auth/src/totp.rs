//! TOTP two-factor authentication (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits, one step
//! of clock skew either way), on `totp-rs`; and the enrolment a user scans: the base32 secret,
//! its `otpauth://` URI and that URI as a PNG QR code in a `data:` URL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use totp_rs::{Builder, Secret, Totp};

/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "wssh";
/// Seconds per time step.
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a generated secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// The fewest secret bytes accepted back from a client: 128 bits.
const MIN_SECRET_BYTES: usize = 16;
/// Pixels per QR module, and the quiet zone in modules.
const QR_SCALE: usize = 6;
const QR_BORDER: usize = 4;

/// Characters escaped in the label and issuer of an `otpauth://` URI.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a user needs to turn two-factor authentication on: shown once, stored only after
/// the user proves it works.
#[derive(Clone)]
pub struct TotpEnrollment {
    /// The base32 secret (no padding).
    pub secret: String,
    /// The `otpauth://totp/…` URI authenticator apps read.
    pub uri: String,
    /// The URI as a PNG QR code: `data:image/png;base64,…`.
    pub qr_data_url: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrollment").finish_non_exhaustive()
    }
}

/// A new random secret, base32 without padding.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    crate::secret::fill_random(&mut bytes);
    Secret::from(bytes).to_base32()
}

/// The enrolment for `account` with a fresh secret.
pub fn enroll(account: &str) -> Option<TotpEnrollment> {
    let secret = generate_secret();
    let uri = format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        issuer = utf8_percent_encode(ISSUER, LABEL),
        account = utf8_percent_encode(account, LABEL),
    );
    let png = qr_png(&uri)?;
    Some(TotpEnrollment { secret, uri, qr_data_url: format!("data:image/png;base64,{}", STANDARD.encode(png)) })
}

fn totp(secret: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret.trim().to_ascii_uppercase()).ok()?;
    if secret.as_bytes().len() < MIN_SECRET_BYTES {
        return None;
    }
    Builder::new().with_secret(secret).build().ok()
}

/// Whether `secret` is a usable base32 secret of at least 128 bits.
pub fn is_valid_secret(secret: &str) -> bool {
    totp(secret).is_some()
}

/// The time step `code` is valid for at `unix_seconds` under `secret`, within one step of
/// skew; `None` when it is not valid. Callers must accept each step only once.
pub fn check(secret: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    totp(secret)?.check(code, unix_seconds)
}

/// The code for `secret` at `unix_seconds`.
pub fn code_at(secret: &str, unix_seconds: u64) -> Option<String> {
    Some(totp(secret)?.generate(unix_seconds).to_string())
}

/// `text` as a black-on-white grayscale PNG QR code (error correction level M).
fn qr_png(text: &str) -> Option<Vec<u8>> {
    let code = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).ok()?;
    let modules = usize::try_from(code.size()).ok()?;
    let side = (modules + 2 * QR_BORDER) * QR_SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if code.get_module(i32::try_from(x).ok()?, i32::try_from(y).ok()?) {
                for dy in 0..QR_SCALE {
                    let row = ((y + QR_BORDER) * QR_SCALE + dy) * side;
                    let start = row + (x + QR_BORDER) * QR_SCALE;
                    pixels[start..start + QR_SCALE].fill(0);
                }
            }
        }
    }
    encode_grayscale_png(&pixels, side)
}

/// A minimal PNG encoder for an 8-bit grayscale image (PNG 1.2: signature, IHDR, one IDAT of
/// zlib-compressed scanlines with filter 0, IEND), on flate2 and crc32fast.
fn encode_grayscale_png(pixels: &[u8], side: usize) -> Option<Vec<u8>> {
    use std::io::Write;

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Option<()> {
        out.extend_from_slice(&u32::try_from(data.len()).ok()?.to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        Some(())
    }

    let side_u32 = u32::try_from(side).ok()?;
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&side_u32.to_be_bytes());
    header.extend_from_slice(&side_u32.to_be_bytes());
    // Bit depth 8, colour type 0 (grayscale), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for row in pixels.chunks(side) {
        zlib.write_all(&[0]).ok()?;
        zlib.write_all(row).ok()?;
    }
    let data = zlib.finish().ok()?;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header)?;
    chunk(&mut png, b"IDAT", &data)?;
    chunk(&mut png, b"IEND", &[])?;
    Some(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", 8 digits there; the
        // last 6 digits of each are the 6-digit codes.
        let secret = Secret::from(*b"12345678901234567890").to_base32();
        for (time, expected) in [(59, "287082"), (1_111_111_109, "081804"), (2_000_000_000, "279037")] {
            assert_eq!(code_at(&secret, time).unwrap(), expected);
        }
    }

    #[test]
    fn checks_allow_one_step_of_skew_and_refuse_junk() {
        let secret = generate_secret();
        let now = 1_700_000_000;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(check(&secret, &code, now), Some(now / STEP_SECONDS));
        assert!(check(&secret, &code, now + STEP_SECONDS).is_some());
        assert!(check(&secret, &code, now + 3 * STEP_SECONDS).is_none());
        assert!(check(&secret, "12345", now).is_none());
        assert!(check(&secret, "abcdef", now).is_none());
        assert!(!is_valid_secret("not base32!"));
        assert!(!is_valid_secret("JBSWY3DP"));
    }

    #[test]
    fn enrollment_is_a_png_of_the_uri() {
        let enrollment = enroll("alice smith").unwrap();
        assert!(enrollment.uri.starts_with("otpauth://totp/wssh:alice%20smith?secret="));
        assert!(enrollment.uri.contains(&enrollment.secret));
        let png = STANDARD.decode(enrollment.qr_data_url.strip_prefix("data:image/png;base64,").unwrap()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Walk the chunks, checking each CRC; inflate the image data and check its size.
        let (mut at, mut side, mut data) = (8, 0usize, Vec::new());
        while at < png.len() {
            let length = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let body = &png[at + 8..at + 8 + length];
            let crc = u32::from_be_bytes(png[at + 8 + length..at + 12 + length].try_into().unwrap());
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(kind);
            hasher.update(body);
            assert_eq!(hasher.finalize(), crc, "CRC of {}", String::from_utf8_lossy(kind));
            match kind {
                b"IHDR" => side = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize,
                b"IDAT" => data.extend_from_slice(body),
                _ => {}
            }
            at += 12 + length;
        }
        let mut pixels = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&data[..]), &mut pixels).unwrap();
        assert!(side >= (21 + 2 * QR_BORDER) * QR_SCALE);
        assert_eq!(pixels.len(), side * (side + 1));
        // Quiet zone white, finder pattern corner black.
        assert_eq!(pixels[1], 255);
        let corner = (QR_BORDER * QR_SCALE) * (side + 1) + 1 + QR_BORDER * QR_SCALE;
        assert_eq!(pixels[corner], 0);
    }
}
