//! A JSON object's text to and from the `events` table's two property
//! arrays (see [`crate::schema`]): top-level keys, and each value's compact
//! JSON text. Splitting keeps the object's order, and joining gives the same
//! compact text back.

use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The top-level (key, value text) pairs of a JSON object, in key order
/// (the order the store serialises them in).
pub(crate) fn split(object: &str) -> Result<Vec<(String, String)>, String> {
    let map: BTreeMap<String, &RawValue> = serde_json::from_str(object).map_err(|error| format!("properties are not a JSON object: {error}"))?;
    Ok(map.into_iter().map(|(key, value)| (key, value.get().to_owned())).collect())
}

/// The object's compact JSON text from its keys and value texts.
pub(crate) fn join(keys: &[String], values: &[String]) -> String {
    let mut text = String::with_capacity(2 + keys.iter().chain(values).map(|s| s.len() + 4).sum::<usize>());
    text.push('{');
    for (i, (key, value)) in keys.iter().zip(values).enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"\"".to_owned()));
        text.push(':');
        text.push_str(value);
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_splits_and_joins_back_to_the_same_text() {
        let object = serde_json::json!({"b": [1, {"plan": "nested"}], "a\"q": "x\ny", "plan": "pro", "n": 1.5, "t": true, "z": null});
        let text = serde_json::to_string(&object).unwrap();
        let pairs = split(&text).unwrap();
        assert_eq!(pairs.iter().find(|(k, _)| k == "plan").map(|(_, v)| v.as_str()), Some("\"pro\""));
        let (keys, values): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
        assert_eq!(join(&keys, &values), text);
        assert!(split("[1]").is_err());
        assert_eq!(join(&[], &[]), "{}");
    }
}
