//! Bounds on everything a client controls, and the checks that enforce the
//! per-record ones. The numbers are Mixpanel's documented limits, so a
//! payload Mixpanel accepts is accepted here and the memory a request can
//! cost stays bounded.
//!
//! Every recursive walk here stops descending once it is deeper than
//! `nesting_depth_max`, so client data cannot drive the recursion; truncation
//! runs only on values that already passed the depth check.

use serde_json::{Map, Value};

/// Limits applied to one request and to each of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Body size in bytes, after decompression.
    pub body_bytes_max: usize,
    /// Records in one request.
    pub records_max: usize,
    /// Serialized JSON size of one record.
    pub record_bytes_max: usize,
    /// Properties of one event (after the reserved ones are taken out), or
    /// keys of one profile operation.
    pub properties_max: usize,
    /// Longer strings are truncated to this many chars, wherever they are.
    pub string_chars_max: usize,
    /// A property value that is an object or array has depth 1; deeper
    /// nesting than this rejects the record.
    pub nesting_depth_max: usize,
    /// Arrays with more elements, or nested objects with more keys, reject
    /// the record.
    pub collection_len_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes_max: 10 * 1024 * 1024,
            records_max: 2000,
            record_bytes_max: 1024 * 1024,
            properties_max: 255,
            string_chars_max: 255,
            nesting_depth_max: 3,
            collection_len_max: 255,
        }
    }
}

/// Why a properties object breaks the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PropertiesViolation {
    TooManyProperties,
    /// The value of this key nests too deep or holds too long a collection.
    Nested {
        key: String,
        message: String,
    },
}

/// Checks the number of properties and the shape of every value.
pub(crate) fn check_properties(
    properties: &Map<String, Value>,
    limits: &Limits,
) -> Result<(), PropertiesViolation> {
    if properties.len() > limits.properties_max {
        return Err(PropertiesViolation::TooManyProperties);
    }
    for (key, value) in properties {
        if let Err(message) = check_nested(value, 1, limits) {
            return Err(PropertiesViolation::Nested {
                key: key.clone(),
                message,
            });
        }
    }
    Ok(())
}

/// `depth` is the depth `value` would have if it is a collection.
fn check_nested(value: &Value, depth: usize, limits: &Limits) -> Result<(), String> {
    let n_children = match value {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => return Ok(()),
    };
    if depth > limits.nesting_depth_max {
        return Err(format!(
            "nests deeper than {} levels",
            limits.nesting_depth_max
        ));
    }
    if n_children > limits.collection_len_max {
        return Err(format!(
            "holds a list or object longer than {} elements",
            limits.collection_len_max
        ));
    }
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_nested(item, depth + 1, limits)),
        Value::Object(map) => map
            .values()
            .try_for_each(|item| check_nested(item, depth + 1, limits)),
        _ => Ok(()),
    }
}

/// Truncates every string inside `value`, at any depth. Object keys are
/// left alone: cutting them could merge two properties into one.
pub(crate) fn truncate_strings(value: &mut Value, chars_max: usize) {
    match value {
        Value::String(text) => truncate_string(text, chars_max),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| truncate_strings(item, chars_max)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| truncate_strings(item, chars_max)),
        _ => {}
    }
}

/// Keeps the first `chars_max` chars, cutting on a char boundary.
pub(crate) fn truncate_string(text: &mut String, chars_max: usize) {
    if let Some((byte_idx, _)) = text.char_indices().nth(chars_max) {
        text.truncate(byte_idx);
    }
}

/// True when `value` serializes to more than `bytes_max` bytes of JSON.
/// Stops serializing as soon as the limit is passed; most records are far
/// below it, and for them a bound read off the value's lengths answers
/// without serializing at all.
pub(crate) fn serialized_len_exceeds(value: &Value, bytes_max: usize) -> bool {
    if json_len_bound(value) <= bytes_max {
        return false;
    }
    let mut counter = ByteCounter {
        n_bytes: 0,
        bytes_max,
    };
    serde_json::to_writer(&mut counter, value).is_err()
}

/// The longest compact JSON `value` can serialize to: every string byte
/// escaped (`\u00XX`, six bytes), every number at its longest form.
fn json_len_bound(value: &Value) -> usize {
    /// `-1.7976931348623157e308`, or a 20-digit integer.
    const NUMBER_MAX: usize = 24;
    let string = |text: &str| 2 + 6 * text.len();
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => NUMBER_MAX,
        Value::String(text) => string(text),
        Value::Array(items) => items.iter().fold(2, |n, item| n.saturating_add(json_len_bound(item) + 1)),
        Value::Object(map) => map.iter().fold(2, |n, (key, item)| n.saturating_add(string(key) + 1 + json_len_bound(item) + 1)),
    }
}

struct ByteCounter {
    n_bytes: usize,
    bytes_max: usize,
}

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.n_bytes = self.n_bytes.saturating_add(buf.len());
        if self.n_bytes > self.bytes_max {
            return Err(std::io::Error::other("record too large"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn small_limits() -> Limits {
        Limits {
            properties_max: 3,
            nesting_depth_max: 2,
            collection_len_max: 2,
            ..Limits::default()
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn defaults_are_mixpanel_limits() {
        let limits = Limits::default();
        assert_eq!(limits.body_bytes_max, 10_485_760);
        assert_eq!(limits.records_max, 2000);
        assert_eq!(limits.record_bytes_max, 1_048_576);
        assert_eq!(limits.properties_max, 255);
        assert_eq!(limits.string_chars_max, 255);
        assert_eq!(limits.nesting_depth_max, 3);
        assert_eq!(limits.collection_len_max, 255);
    }

    #[test]
    fn property_count_is_checked_at_the_limit_and_one_over() {
        let limits = small_limits();
        assert_eq!(
            check_properties(&object(json!({"a": 1, "b": 2, "c": 3})), &limits),
            Ok(())
        );
        let res = check_properties(&object(json!({"a": 1, "b": 2, "c": 3, "d": 4})), &limits);
        assert_eq!(res, Err(PropertiesViolation::TooManyProperties));
    }

    #[test]
    fn depth_counts_a_top_level_collection_as_one() {
        let limits = small_limits();
        assert_eq!(
            check_properties(&object(json!({"a": {"b": [1]}})), &limits),
            Ok(())
        );
        assert_eq!(
            check_properties(&object(json!({"a": [[1]]})), &limits),
            Ok(())
        );
        assert_eq!(
            check_properties(&object(json!({"a": {"b": {"c": 1}}})), &limits),
            Ok(())
        );
        let res = check_properties(&object(json!({"a": {"b": {"c": {}}}})), &limits);
        assert!(matches!(res, Err(PropertiesViolation::Nested { key, .. }) if key == "a"));
        let res = check_properties(&object(json!({"a": [[[]]]})), &limits);
        assert!(matches!(res, Err(PropertiesViolation::Nested { key, .. }) if key == "a"));
    }

    #[test]
    fn collection_length_is_checked_at_the_limit_and_one_over() {
        let limits = small_limits();
        assert_eq!(
            check_properties(
                &object(json!({"a": [1, 2], "b": {"x": 1, "y": 2}})),
                &limits
            ),
            Ok(())
        );
        let res = check_properties(&object(json!({"a": [1, 2, 3]})), &limits);
        assert!(matches!(res, Err(PropertiesViolation::Nested { key, .. }) if key == "a"));
        let res = check_properties(&object(json!({"b": {"x": 1, "y": 2, "z": 3}})), &limits);
        assert!(matches!(res, Err(PropertiesViolation::Nested { key, .. }) if key == "b"));
        let res = check_properties(&object(json!({"c": [[1, 2, 3]]})), &limits);
        assert!(matches!(res, Err(PropertiesViolation::Nested { key, .. }) if key == "c"));
    }

    #[test]
    fn strings_are_truncated_on_char_boundaries_at_any_depth() {
        let mut value = json!({"a": "ééé", "b": ["xyz", {"c": "ab"}], "long_key_kept": 1});
        truncate_strings(&mut value, 2);
        assert_eq!(
            value,
            json!({"a": "éé", "b": ["xy", {"c": "ab"}], "long_key_kept": 1})
        );

        let mut text = "a".repeat(255);
        truncate_string(&mut text, 255);
        assert_eq!(text.len(), 255);
        let mut text = "🦀".repeat(256);
        truncate_string(&mut text, 255);
        assert_eq!(text.chars().count(), 255);
    }

    #[test]
    fn serialized_size_is_checked_at_the_limit_and_one_over() {
        let value = json!({"a": "bc"});
        let n_bytes = serde_json::to_vec(&value)
            .map(|bytes| bytes.len())
            .unwrap_or_default();
        assert_eq!(n_bytes, 10);
        assert!(!serialized_len_exceeds(&value, 10));
        assert!(serialized_len_exceeds(&value, 9));
    }

    #[test]
    fn the_length_bound_is_never_below_the_serialized_length() {
        let values = [
            json!({"a": "bc"}),
            json!({"control": "\u{1}\u{1f}\"\\", "unicode": "é😀", "n": [-1.7976931348623157e308, 18446744073709551615u64, -9223372036854775808i64, 1e-7, 0.1]}),
            json!([null, true, false, {}, [], "", {"nested": {"deeper": ["x"]}}]),
        ];
        for value in &values {
            let n_bytes = serde_json::to_vec(value).unwrap().len();
            assert!(json_len_bound(value) >= n_bytes, "{value}: bound {} < {n_bytes}", json_len_bound(value));
            // At the exact length the answer does not depend on the bound.
            assert!(!serialized_len_exceeds(value, n_bytes));
            assert!(serialized_len_exceeds(value, n_bytes - 1));
        }
    }
}
