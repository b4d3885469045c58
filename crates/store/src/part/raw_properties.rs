//! A row's properties read as borrowed (key, raw JSON value) pairs, for
//! writing parts.
//!
//! The buffer holds each event's properties as compact JSON text. Parsing
//! that into a `serde_json::Map` for every row of a flush built a string and
//! a value tree per property only to copy them into column builders and drop
//! them: most of a flush's CPU and a transient copy of the buffer in memory.
//! Here a row is scanned into slices of its own text; a value is decoded only
//! when it goes into a column, and a property that spills into the overflow
//! column is copied there as the JSON text it already is.
//!
//! The classification follows `serde_json::Value` exactly (what `is_i64`,
//! `as_f64` and friends answer), so a part is the same whichever way it was
//! built; the tests check that against `serde_json` on tricky inputs.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// One property: its key (borrowed unless the key had escapes) and its value's JSON text.
pub(crate) type Entry<'a> = (Cow<'a, str>, &'a RawValue);

/// Reads the JSON object `text` into `entries` (cleared first), sorted by
/// key with the last of duplicate keys kept, as `serde_json::Map` would.
/// Text that is not an object leaves `entries` empty.
pub(crate) fn read_entries<'a>(text: &'a str, entries: &mut Vec<Entry<'a>>) {
    entries.clear();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    if EntriesSeed(entries).deserialize(&mut deserializer).is_err() {
        entries.clear();
        return;
    }
    if !entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` hands (later, kept): the later value wins, as in a map.
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
    }
}

/// The entries of many rows, read once, in one allocation.
pub(crate) struct RowEntries<'a> {
    entries: Vec<Entry<'a>>,
    /// Where each row's entries start, and then where the last one ends.
    bounds: Vec<usize>,
}

impl<'a> RowEntries<'a> {
    pub(crate) fn read(rows: &[&'a crate::buffer::Row]) -> RowEntries<'a> {
        let mut entries = Vec::with_capacity(rows.len() * 16);
        let mut bounds = Vec::with_capacity(rows.len() + 1);
        bounds.push(0);
        let mut row_entries = Vec::new();
        for row in rows {
            read_entries(row.properties_json(), &mut row_entries);
            entries.append(&mut row_entries);
            bounds.push(entries.len());
        }
        RowEntries { entries, bounds }
    }

    /// Each row's entries, in row order.
    pub(crate) fn rows(&self) -> impl ExactSizeIterator<Item = &[Entry<'a>]> {
        self.bounds.windows(2).map(|bounds| &self.entries[bounds[0]..bounds[1]])
    }
}

/// A value as a column sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    /// An integer that fits i64 (`Number::is_i64`).
    Int(i64),
    /// An integer above i64's range that fits u64.
    BigUnsigned(u64),
    /// Any other number: what `Number::as_f64` gives.
    Float(f64),
    Str(Cow<'a, str>),
    /// An array or an object: never in a typed column.
    Nested,
}

/// The kind of a value, read off its first bytes only (for counting types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Int,
    /// Any number that is not an i64.
    OtherNumber,
    Str,
    Nested,
}

pub(crate) fn kind(raw: &RawValue) -> Kind {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => Kind::Str,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') | None => Kind::Null,
        Some(b'{' | b'[') => Kind::Nested,
        Some(_) => match scalar(raw) {
            Scalar::Int(_) => Kind::Int,
            _ => Kind::OtherNumber,
        },
    }
}

/// Decodes one value; strings without escapes are borrowed.
pub(crate) fn scalar(raw: &RawValue) -> Scalar<'_> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let inner = &text[1..text.len() - 1];
            if inner.contains('\\') {
                serde_json::from_str::<String>(text).map_or(Scalar::Null, |s| Scalar::Str(Cow::Owned(s)))
            } else {
                Scalar::Str(Cow::Borrowed(inner))
            }
        }
        Some(b't') => Scalar::Bool(true),
        Some(b'f') => Scalar::Bool(false),
        Some(b'n') | None => Scalar::Null,
        Some(b'{' | b'[') => Scalar::Nested,
        Some(_) => number(text),
    }
}

/// serde_json's reading of a number: integers as i64 or u64 when they fit,
/// a negative zero and everything else as f64.
fn number(text: &str) -> Scalar<'static> {
    let integral = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integral {
        if text == "-0" {
            return Scalar::Float(-0.0);
        }
        if let Ok(i) = text.parse::<i64>() {
            return Scalar::Int(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Scalar::BigUnsigned(u);
        }
    }
    text.parse::<f64>().map_or(Scalar::Null, Scalar::Float)
}

struct EntriesSeed<'v, 'a>(&'v mut Vec<Entry<'a>>);

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            self.0.push((key.0, value));
        }
        Ok(())
    }
}

/// A key borrowed from the text unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn entries_of(text: &str) -> Vec<(String, String)> {
        let mut entries = Vec::new();
        read_entries(text, &mut entries);
        entries.iter().map(|(k, v)| (k.to_string(), v.get().to_owned())).collect()
    }

    #[test]
    fn entries_match_a_parsed_map() {
        for text in [
            r#"{"b":1,"a":"x","c":{"d":[1,2]}}"#,
            r#"{"k":1,"k":2,"a":true}"#,
            r#"{"esc\"aped":"va\nlue","plain":null}"#,
            r#"{}"#,
        ] {
            let map: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap();
            let expected: Vec<(String, Value)> = map.into_iter().collect();
            let got: Vec<(String, Value)> = entries_of(text).into_iter().map(|(k, v)| (k, serde_json::from_str(&v).unwrap())).collect();
            assert_eq!(got, expected, "{text}");
        }
        assert!(entries_of("[1,2]").is_empty());
        assert!(entries_of("not json").is_empty());
    }

    #[test]
    fn scalars_classify_as_serde_json_values_do() {
        let texts = [
            "0", "-0", "12", "-12", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551615",
            "18446744073709551616", "1.5", "-0.0", "1e3", "1E-2", "2.5e300", "true", "false", "null", r#""s""#, r#""a\"b\u00e9""#, "[1]", r#"{"a":1}"#,
        ];
        for text in texts {
            let value: Value = serde_json::from_str(text).unwrap();
            let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
            let got = scalar(&raw);
            let expected = match &value {
                Value::Null => Scalar::Null,
                Value::Bool(b) => Scalar::Bool(*b),
                Value::Number(n) if n.is_i64() => Scalar::Int(n.as_i64().unwrap()),
                Value::Number(n) if n.is_u64() => Scalar::BigUnsigned(n.as_u64().unwrap()),
                Value::Number(n) => Scalar::Float(n.as_f64().unwrap()),
                Value::String(s) => Scalar::Str(Cow::Owned(s.clone())),
                Value::Array(_) | Value::Object(_) => Scalar::Nested,
            };
            match (&got, &expected) {
                (Scalar::Float(a), Scalar::Float(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{text}"),
                _ => assert_eq!(got, expected, "{text}"),
            }
            let expected_kind = match value {
                Value::Null => Kind::Null,
                Value::Bool(_) => Kind::Bool,
                Value::Number(n) if n.is_i64() => Kind::Int,
                Value::Number(_) => Kind::OtherNumber,
                Value::String(_) => Kind::Str,
                _ => Kind::Nested,
            };
            assert_eq!(kind(&raw), expected_kind, "{text}");
        }
    }
}
