//! ClickHouse's `RowBinary` input format: each row's columns in order,
//! integers little-endian, strings as a LEB128 length and their bytes. No
//! escaping, so any property text goes in exactly as it is.

pub(crate) fn put_u8(out: &mut Vec<u8>, value: u8) {
    out.push(value);
}

pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_str(out: &mut Vec<u8>, value: &str) {
    put_len(out, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// A LEB128 length: of a string's bytes, or of an array's elements.
pub(crate) fn put_len(out: &mut Vec<u8>, length: usize) {
    let mut length = length as u64;
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_carry_a_leb128_length() {
        let mut out = Vec::new();
        put_str(&mut out, "ab");
        assert_eq!(out, [2, b'a', b'b']);
        let long = "x".repeat(300);
        let mut out = Vec::new();
        put_str(&mut out, &long);
        // 300 = 0b10_0101100: low seven bits with the continuation bit, then 2.
        assert_eq!(&out[..2], &[0xac, 0x02]);
        assert_eq!(out.len(), 302);
    }

    #[test]
    fn integers_are_little_endian() {
        let mut out = Vec::new();
        put_u32(&mut out, 1);
        put_i64(&mut out, -2);
        assert_eq!(out, [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }
}
