//! The request body as bytes: gzip inflation with a hard cap, and telling a
//! JSON body from a form body.
//!
//! Swift and Android gzip their bodies, and `/import` clients may. A gzip
//! bomb (a few KiB that inflate to gigabytes) must cost no more than the
//! decompressed-size limit, so inflation reads in fixed chunks into a buffer
//! that never grows past the cap, and stops at the first byte over it.

use std::io::Read;

use crate::DecodeError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];
const INFLATE_CHUNK_BYTES: usize = 16 * 1024;

/// What the (decompressed) body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// Nothing but whitespace.
    Empty,
    /// Starts with `{` or `[`: a JSON object, array, or NDJSON.
    Json,
    /// Anything else is read as `key=value&...`, whatever Content-Type says:
    /// the browser's `sendBeacon` sends its form as `text/plain`.
    Form,
}

/// True when the body is gzip, by header or by its magic bytes (some
/// clients compress without saying so).
pub(crate) fn is_gzip(content_encoding: Option<&str>, body: &[u8]) -> bool {
    let declared = content_encoding.is_some_and(|header| {
        header.split(',').map(str::trim).any(|coding| {
            coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")
        })
    });
    declared || body.starts_with(&GZIP_MAGIC)
}

/// Inflates a gzip stream (several members allowed, as RFC 1952 says) into
/// at most `bytes_max` bytes; the buffer never grows past `bytes_max`.
pub(crate) fn inflate_capped(compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; INFLATE_CHUNK_BYTES];
    loop {
        let n_read = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n_read) => n_read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(DecodeError::BadGzip),
        };
        let len_needed = out.len().saturating_add(n_read);
        if len_needed > bytes_max {
            return Err(DecodeError::BodyTooLarge { limit: bytes_max });
        }
        if len_needed > out.capacity() {
            // Double as Vec would, but never past the cap.
            let capacity_target = len_needed
                .max(out.capacity().saturating_mul(2))
                .min(bytes_max);
            out.reserve_exact(capacity_target.saturating_sub(out.len()));
        }
        out.extend_from_slice(chunk.get(..n_read).unwrap_or_default());
    }
}

/// Classifies a body, after skipping a UTF-8 byte order mark. Returns the
/// body without the mark.
pub(crate) fn classify(body: &[u8]) -> (BodyKind, &[u8]) {
    let body = body.strip_prefix(&UTF8_BOM).unwrap_or(body);
    let kind = match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => BodyKind::Empty,
        Some(b'{' | b'[') => BodyKind::Json,
        Some(_) => BodyKind::Form,
    };
    (kind, body)
}

/// True when Content-Type announces JSON or NDJSON.
pub(crate) fn declares_json(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || media_type == "application/x-ndjson"
        || media_type == "application/jsonl"
        || media_type.ends_with("+json")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("in-memory write");
        encoder.finish().expect("in-memory write")
    }

    #[test]
    fn inflates_exactly_at_the_cap_and_fails_one_over() {
        let plain = vec![b'x'; 100_000];
        let inflated = inflate_capped(&gzip(&plain), 100_000).expect("at the cap");
        assert_eq!(inflated, plain);
        assert!(inflated.capacity() <= 100_000);
        let res = inflate_capped(&gzip(&plain), 99_999);
        assert_eq!(res, Err(DecodeError::BodyTooLarge { limit: 99_999 }));
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        // 20 MiB of zeros compress to about 20 KiB; written in chunks so the
        // test itself does not hold the plain text either.
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..20 {
            encoder.write_all(&zeros).expect("in-memory write");
        }
        let bomb = encoder.finish().expect("in-memory write");
        assert!(bomb.len() < 100 * 1024);
        let limit = 10 * 1024 * 1024;
        assert_eq!(
            inflate_capped(&bomb, limit),
            Err(DecodeError::BodyTooLarge { limit })
        );
        // A small cap shows the buffer is bounded by the cap, not the bomb.
        assert_eq!(
            inflate_capped(&bomb, 1000),
            Err(DecodeError::BodyTooLarge { limit: 1000 })
        );
    }

    #[test]
    fn concatenated_members_are_one_stream() {
        let mut both = gzip(b"[{\"a\":1},");
        both.extend(gzip(b"{\"b\":2}]"));
        assert_eq!(
            inflate_capped(&both, 1000).expect("valid gzip"),
            b"[{\"a\":1},{\"b\":2}]"
        );
    }

    #[test]
    fn corrupt_gzip_is_bad_gzip() {
        assert_eq!(
            inflate_capped(b"\x1f\x8bnot really", 1000),
            Err(DecodeError::BadGzip)
        );
        assert_eq!(
            inflate_capped(b"{\"plain\":1}", 1000),
            Err(DecodeError::BadGzip)
        );
        let mut truncated = gzip(&[b'x'; 5000]);
        truncated.truncate(truncated.len() / 2);
        assert_eq!(
            inflate_capped(&truncated, 10_000),
            Err(DecodeError::BadGzip)
        );
    }

    #[test]
    fn gzip_is_detected_by_header_or_magic() {
        assert!(is_gzip(Some("gzip"), b"x"));
        assert!(is_gzip(Some(" GZIP "), b"x"));
        assert!(is_gzip(Some("identity, x-gzip"), b"x"));
        assert!(is_gzip(None, &gzip(b"{}")));
        assert!(!is_gzip(Some("identity"), b"{}"));
        assert!(!is_gzip(None, b""));
    }

    #[test]
    fn bodies_are_classified_by_their_first_byte() {
        assert_eq!(classify(b"").0, BodyKind::Empty);
        assert_eq!(classify(b" \r\n\t").0, BodyKind::Empty);
        assert_eq!(classify(b"  {\"a\":1}").0, BodyKind::Json);
        assert_eq!(classify(b"\n[1]").0, BodyKind::Json);
        assert_eq!(classify(b"data=e30%3D").0, BodyKind::Form);
        assert_eq!(classify(b"\"string\"").0, BodyKind::Form);
        let (kind, rest) = classify(b"\xef\xbb\xbf{}");
        assert_eq!((kind, rest), (BodyKind::Json, &b"{}"[..]));
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(declares_json(Some("application/json")));
        assert!(declares_json(Some("Application/JSON; charset=utf-8")));
        assert!(declares_json(Some("application/x-ndjson")));
        assert!(declares_json(Some("application/vnd.api+json")));
        assert!(!declares_json(Some("text/plain;charset=UTF-8")));
        assert!(!declares_json(Some("application/x-www-form-urlencoded")));
        assert!(!declares_json(None));
    }
}
