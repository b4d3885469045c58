//! The `insert_id` column's compact binary form.
//!
//! Why: the official SDKs send random ids (the Python SDK 32 lowercase hex
//! characters, server-side code often dashed UUIDs). Random text cannot be
//! compressed, so stored as text an id costs its full 32–36 bytes, about
//! half of a part. Its 16 bytes of entropy are all that must be kept:
//!
//! - 32 lowercase hex characters: the 16 bytes they spell;
//! - a lowercase dashed UUID (8-4-4-4-12): `0x01` and its 16 bytes;
//! - anything else: the text itself, behind a `0x00` byte when it is 16
//!   bytes long or starts with a byte below `0x02`, so that no form is
//!   mistaken for another (a hex id whose first byte would be `0x00` stays
//!   text: 32 bytes, never read as raw).
//!
//! Decoding gives back exactly the text that was sent. Parts written before
//! this form (format 1) hold the text in a string column; readers take both.

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use arrow::datatypes::DataType;
use std::borrow::Cow;

const ESCAPE: u8 = 0x00;
const UUID: u8 = 0x01;

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// The 16 bytes spelt by 32 lowercase hex digits.
fn hex16(digits: &[u8]) -> Option<[u8; 16]> {
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *slot = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(out)
}

/// The 16 bytes of a lowercase dashed UUID.
fn uuid16(text: &[u8]) -> Option<[u8; 16]> {
    if text.len() != 36 || [8, 13, 18, 23].iter().any(|&i| text[i] != b'-') {
        return None;
    }
    let digits: Vec<u8> = text.iter().copied().filter(|&b| b != b'-').collect();
    hex16(&digits)
}

/// Appends the stored form of `id` to `out`.
pub(crate) fn encode_into(id: &str, out: &mut Vec<u8>) {
    let text = id.as_bytes();
    if let Some(bytes) = hex16(text).filter(|b| b[0] != ESCAPE) {
        out.extend_from_slice(&bytes);
    } else if let Some(bytes) = uuid16(text) {
        out.push(UUID);
        out.extend_from_slice(&bytes);
    } else {
        if text.len() == 16 || text.first().is_some_and(|&b| b <= UUID) {
            out.push(ESCAPE);
        }
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
fn encode(id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(id, &mut out);
    out
}

fn push_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
}

/// The id a stored form stands for.
pub(crate) fn decode(stored: &[u8]) -> Cow<'_, str> {
    match stored {
        [ESCAPE, text @ ..] => String::from_utf8_lossy(text),
        [UUID, bytes @ ..] if bytes.len() == 16 => {
            let mut out = String::with_capacity(36);
            for (i, range) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
                if i > 0 {
                    out.push('-');
                }
                push_hex(&bytes[range], &mut out);
            }
            Cow::Owned(out)
        }
        bytes if bytes.len() == 16 => {
            let mut out = String::with_capacity(32);
            push_hex(bytes, &mut out);
            Cow::Owned(out)
        }
        text => String::from_utf8_lossy(text),
    }
}

/// The column's ids as text, whichever form the part holds; `None` when the
/// column is neither.
pub(crate) fn column_as_text(column: &ArrayRef) -> Option<StringArray> {
    match column.data_type() {
        DataType::Utf8 => column.as_string_opt::<i32>().cloned(),
        DataType::Binary => {
            let stored: &BinaryArray = column.as_binary_opt::<i32>()?;
            Some((0..stored.len()).map(|i| Some(decode(stored.value(i)))).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_take_sixteen_bytes_and_come_back_exactly() {
        for (id, stored_len) in [
            ("1f0911818ab582c09de0a7e4ce8b8a8a", 16),
            ("d746f56f-db17-430b-983c-181d92dc4b4c", 17),
            ("00ff0000000000000000000000000000", 32),
            ("1F0911818AB582C09DE0A7E4CE8B8A8A", 32),
            ("k3j4h5g6f7d8s9a0", 17),
            ("short", 5),
            ("", 0),
            ("\u{1}abc", 5),
            ("d746f56f-db17-430b-983c-181d92dc4b4", 35),
            ("d746f56fXdb17-430b-983c-181d92dc4b4c", 36),
        ] {
            let stored = encode(id);
            assert_eq!(stored.len(), stored_len, "{id:?}");
            assert_eq!(decode(&stored), id, "{id:?}");
        }
    }

    #[test]
    fn every_short_text_survives_the_round_trip() {
        // Any id of up to 17 bytes drawn from a small alphabet including the
        // marker bytes: no form is mistaken for another.
        let alphabet = ["\u{0}", "\u{1}", "a", "0", "-", "f"];
        let mut ids = vec![String::new()];
        for _ in 0..4 {
            ids = ids.iter().flat_map(|prefix| alphabet.iter().map(move |c| format!("{prefix}{c}"))).collect();
            for id in &ids {
                for padded in [id.clone(), format!("{id}{}", "a".repeat(16 - id.len())), format!("{id}{}", "0".repeat(32 - id.len()))] {
                    assert_eq!(decode(&encode(&padded)), padded, "{padded:?}");
                }
            }
        }
    }

    #[test]
    fn both_column_forms_read_as_text() {
        let ids = ["1f0911818ab582c09de0a7e4ce8b8a8a", "custom-id"];
        let text: ArrayRef = std::sync::Arc::new(StringArray::from(ids.to_vec()));
        let binary: ArrayRef = std::sync::Arc::new(BinaryArray::from_iter_values(ids.iter().map(|id| encode(id))));
        for column in [text, binary] {
            let read = column_as_text(&column).unwrap();
            assert_eq!(read.iter().flatten().collect::<Vec<_>>(), ids);
        }
        let wrong: ArrayRef = std::sync::Arc::new(arrow::array::UInt32Array::from(vec![1]));
        assert!(column_as_text(&wrong).is_none());
    }
}
