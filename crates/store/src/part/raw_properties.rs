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

/// The entries of many rows, read once, as places in each row's text:
/// 16 bytes a property, a third of borrowed slices.
pub(crate) struct RowEntries<'a> {
    texts: Vec<&'a str>,
    entries: Vec<(Span, Span)>,
    /// Keys that had escapes, decoded (a key `Span` with `start` ESCAPED
    /// holds an index here as its `len`).
    escaped_keys: Vec<String>,
    /// Where each row's entries start, and then where the last one ends.
    bounds: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

const ESCAPED: u32 = u32::MAX;

impl Span {
    fn of(part: &str, text: &str) -> Span {
        Span { start: (part.as_ptr() as usize - text.as_ptr() as usize) as u32, len: part.len() as u32 }
    }

    fn get<'t>(self, text: &'t str) -> &'t str {
        &text[self.start as usize..(self.start + self.len) as usize]
    }
}

/// One row's properties in a [`RowEntries`].
#[derive(Clone, Copy)]
pub(crate) struct RowView<'r, 'a> {
    text: &'a str,
    entries: &'r [(Span, Span)],
    escaped_keys: &'r [String],
}

impl<'r, 'a: 'r> RowView<'r, 'a> {
    /// (key, value as JSON text), sorted by key.
    pub(crate) fn entries(self) -> impl Iterator<Item = (&'r str, &'a str)> {
        self.entries.iter().map(move |(key, value)| {
            let key = if key.start == ESCAPED { self.escaped_keys[key.len as usize].as_str() } else { key.get(self.text) };
            (key, value.get(self.text))
        })
    }
}

impl<'a> RowEntries<'a> {
    pub(crate) fn read(rows: &[&'a crate::buffer::Row]) -> RowEntries<'a> {
        let mut texts = Vec::with_capacity(rows.len());
        let mut entries = Vec::with_capacity(rows.len() * 16);
        let mut escaped_keys = Vec::new();
        let mut bounds = Vec::with_capacity(rows.len() + 1);
        bounds.push(0);
        let mut row_entries = Vec::new();
        for row in rows {
            let text = row.properties_json();
            read_entries(text, &mut row_entries);
            for (key, value) in row_entries.drain(..) {
                let key = match key {
                    Cow::Borrowed(key) => Span::of(key, text),
                    Cow::Owned(key) => {
                        escaped_keys.push(key);
                        Span { start: ESCAPED, len: (escaped_keys.len() - 1) as u32 }
                    }
                };
                entries.push((key, Span::of(value.get(), text)));
            }
            texts.push(text);
            bounds.push(entries.len() as u32);
        }
        RowEntries { texts, entries, escaped_keys, bounds }
    }

    /// Each row's properties, in row order.
    pub(crate) fn rows(&self) -> impl ExactSizeIterator<Item = RowView<'_, 'a>> {
        self.bounds.windows(2).zip(&self.texts).map(|(bounds, text)| RowView {
            text,
            entries: &self.entries[bounds[0] as usize..bounds[1] as usize],
            escaped_keys: &self.escaped_keys,
        })
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

/// The kind of a value, for counting types: strings and the rest are told
/// by their first byte, numbers by reading them.
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

/// The kind of the JSON value `text`.
pub(crate) fn kind(text: &str) -> Kind {
    match text.as_bytes().first() {
        Some(b'"') => Kind::Str,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') | None => Kind::Null,
        Some(b'{' | b'[') => Kind::Nested,
        Some(_) => match number(text) {
            Scalar::Int(_) => Kind::Int,
            _ => Kind::OtherNumber,
        },
    }
}

/// Decodes the JSON value `text`; strings without escapes are borrowed.
pub(crate) fn scalar(text: &str) -> Scalar<'_> {
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
    fn row_entries_give_each_row_its_keys_and_values() {
        let row = |properties: &str| crate::buffer::StoredEvent {
            user_key: 0,
            time_ms: 0,
            name: "e".into(),
            distinct_id: "d".into(),
            insert_id: "i".into(),
            properties: serde_json::from_str(properties).unwrap(),
        };
        let rows = [row(r#"{"a":1,"b":"x"}"#), row("{}"), row(r#"{"k\"ey":[1],"z":{"y":null}}"#)];
        let refs: Vec<&crate::buffer::Row> = rows.iter().collect();
        let read = RowEntries::read(&refs);
        let got: Vec<Vec<(&str, &str)>> = read.rows().map(|row| row.entries().collect()).collect();
        assert_eq!(got, vec![vec![("a", "1"), ("b", "\"x\"")], vec![], vec![("k\"ey", "[1]"), ("z", r#"{"y":null}"#)]]);
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
            let got = scalar(raw.get());
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
            assert_eq!(kind(raw.get()), expected_kind, "{text}");
        }
    }
}
