//! One record's framing: `[len: u32 LE][crc32: u32 LE][payload]`.
//!
//! The CRC covers the four length bytes too, so a torn or zeroed length is
//! caught as surely as a torn payload.

use crate::RECORD_BYTES_MAX;

pub(crate) const HEADER_BYTES: usize = 8;

pub(crate) fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

pub(crate) fn encode_header(payload: &[u8]) -> [u8; HEADER_BYTES] {
    debug_assert!(payload.len() <= RECORD_BYTES_MAX);
    let len_bytes = (payload.len() as u32).to_le_bytes();
    let crc = checksum(len_bytes, payload);
    let mut header = [0u8; HEADER_BYTES];
    header[..4].copy_from_slice(&len_bytes);
    header[4..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What the bytes at an offset hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    Record { payload: &'a [u8], next_offset: usize },
    /// Clean end of the data.
    End,
    /// A partial or damaged record: the log ends here.
    Torn,
}

pub(crate) fn decode_at(bytes: &[u8], offset: usize) -> Decoded<'_> {
    let rest = &bytes[offset.min(bytes.len())..];
    if rest.is_empty() {
        return Decoded::End;
    }
    let Some(header) = rest.get(..HEADER_BYTES) else {
        return Decoded::Torn;
    };
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > RECORD_BYTES_MAX {
        return Decoded::Torn;
    }
    let Some(payload) = rest.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Decoded::Torn;
    };
    if checksum(len_bytes, payload) != crc {
        return Decoded::Torn;
    }
    Decoded::Record { payload, next_offset: offset + HEADER_BYTES + len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut bytes = encode_header(payload).to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn a_framed_record_decodes_to_its_payload() {
        let bytes = frame(b"hello");
        assert_eq!(decode_at(&bytes, 0), Decoded::Record { payload: b"hello", next_offset: 13 });
        assert_eq!(decode_at(&bytes, 13), Decoded::End);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_torn() {
        let bytes = frame(b"some payload bytes");
        for cut in 1..bytes.len() {
            assert_eq!(decode_at(&bytes[..cut], 0), Decoded::Torn, "cut at {cut}");
        }
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(
                decode_at(&damaged, 0),
                Decoded::Record { payload: b"some payload bytes", next_offset: bytes.len() },
                "bit {bit}"
            );
        }
    }

    #[test]
    fn zeroed_space_is_torn_not_an_empty_record() {
        let zeros = [0u8; 16];
        assert_eq!(decode_at(&zeros, 0), Decoded::Torn);
    }
}
