//! Pieces shared by the event, profile and group validators: the per-record
//! error, the `ip` modifier, and identifier rules.

use serde_json::{Map, Value};

use crate::limits::PropertiesViolation;

/// Mixpanel's limit on identifiers: `distinct_id`, `$distinct_id`, group
/// keys and ids, and /track's `$insert_id`. Longer ones are rejected, not
/// truncated: a cut identifier would silently merge different users.
pub(crate) const ID_CHARS_MAX: usize = 255;

/// Why one record was rejected, in the shape of `/import`'s
/// `failed_records` entries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordError {
    /// Position of the record in the request.
    pub index: usize,
    /// The record's `$insert_id`, echoed so the client can find it; only
    /// when it is a string of at most 255 chars.
    #[serde(rename = "$insert_id")]
    pub insert_id: Option<String>,
    /// Where the problem is, e.g. `properties.time` or `$set.plan`. May name
    /// a property key, never a value.
    pub field: String,
    /// What is wrong, lowercase, never echoing the value.
    pub message: String,
}

/// The client's say on geolocation for one record: the event property
/// `ip`, or the profile modifier `$ip`. The server falls back to the request
/// address and the `ip` parameter when it is `Absent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpProperty {
    /// Not given (or empty, or not a string).
    Absent,
    /// `"0"` or `0`: do not geolocate this record.
    Disabled,
    /// An address to geolocate. Not parsed here; the server checks it.
    Address(String),
}

impl IpProperty {
    pub(crate) fn from_value(value: Option<Value>) -> IpProperty {
        match value {
            Some(Value::String(text)) if text.trim() == "0" => IpProperty::Disabled,
            Some(Value::String(text)) if !text.trim().is_empty() => {
                IpProperty::Address(text.trim().to_owned())
            }
            Some(Value::Number(number)) if number.as_f64() == Some(0.0) => IpProperty::Disabled,
            _ => IpProperty::Absent,
        }
    }
}

/// A rejection before the record's index and insert id are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) field: String,
    pub(crate) message: String,
}

impl Invalid {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn into_record_error(self, index: usize, insert_id: Option<String>) -> RecordError {
        RecordError {
            index,
            insert_id,
            field: self.field,
            message: self.message,
        }
    }

    pub(crate) fn too_large(bytes_max: usize) -> Invalid {
        Invalid::new(
            "record",
            format!("record exceeds max size of {bytes_max} bytes"),
        )
    }

    /// `prefix` names the object that was checked, e.g. `properties`.
    pub(crate) fn from_violation(
        prefix: &str,
        violation: PropertiesViolation,
        properties_max: usize,
    ) -> Invalid {
        match violation {
            PropertiesViolation::TooManyProperties => {
                Invalid::new(prefix, format!("has more than {properties_max} properties"))
            }
            PropertiesViolation::Nested { key, message } => {
                let mut key = key;
                crate::limits::truncate_string(&mut key, ID_CHARS_MAX);
                Invalid::new(format!("{prefix}.{key}"), message)
            }
        }
    }
}

/// Identifier text of a string or a number; `None` for other types.
pub(crate) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Values SDKs and broken integrations send when they have no id. Mixpanel's
/// `/import` rejects them as `distinct_id` and `$insert_id`.
const PLACEHOLDER_IDS: [&str; 17] = [
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "<nil>",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
    "00000000-0000-0000-0000-000000000000",
];

pub(crate) fn is_placeholder_id(text: &str) -> bool {
    let text = text.trim();
    PLACEHOLDER_IDS
        .iter()
        .any(|placeholder| placeholder.eq_ignore_ascii_case(text))
}

/// The `$insert_id` a rejected record is reported with.
pub(crate) fn reported_insert_id(record: &Value) -> Option<String> {
    reported_id(record.get("properties")?.get("$insert_id")?.as_str()?)
}

/// A client's `$insert_id` as a rejection reports it: when it is at most
/// [`ID_CHARS_MAX`] characters.
pub(crate) fn reported_id(insert_id: &str) -> Option<String> {
    (insert_id.chars().count() <= ID_CHARS_MAX).then(|| insert_id.to_owned())
}

/// `true`, `"true"`, `1` or `"1"`, for flags such as `$ignore_time`.
pub(crate) fn is_true_flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text == "1" || text.eq_ignore_ascii_case("true"),
        Some(Value::Number(number)) => number.as_f64() == Some(1.0),
        _ => false,
    }
}

/// `$time` in seconds or milliseconds; the arrival time when absent. Shared by
/// profile and group updates.
pub(crate) fn take_update_time(
    record: &mut Map<String, Value>,
    now_ms: i64,
) -> Result<i64, Invalid> {
    match record.remove("$time") {
        None | Some(Value::Null) => Ok(now_ms),
        Some(value) => events::millis_from_client_time(&value)
            .map_err(|error| Invalid::new("$time", error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ip_property_reads_zero_as_disabled() {
        assert_eq!(
            IpProperty::from_value(Some(json!("0"))),
            IpProperty::Disabled
        );
        assert_eq!(IpProperty::from_value(Some(json!(0))), IpProperty::Disabled);
        assert_eq!(
            IpProperty::from_value(Some(json!("203.0.113.9"))),
            IpProperty::Address("203.0.113.9".to_owned())
        );
        assert_eq!(IpProperty::from_value(Some(json!(""))), IpProperty::Absent);
        assert_eq!(
            IpProperty::from_value(Some(json!(true))),
            IpProperty::Absent
        );
        assert_eq!(IpProperty::from_value(None), IpProperty::Absent);
    }

    #[test]
    fn placeholders_match_case_insensitively() {
        for placeholder in [
            "anon",
            "NULL",
            "N/A",
            "<nil>",
            "-1",
            "{}",
            "00000000-0000-0000-0000-000000000000",
            " None ",
        ] {
            assert!(is_placeholder_id(placeholder), "{placeholder}");
        }
        for real in ["", "user-1", "01", "nullable", "$device:0"] {
            assert!(!is_placeholder_id(real), "{real}");
        }
    }

    #[test]
    fn record_error_serializes_insert_id_with_dollar() {
        let error = RecordError {
            index: 3,
            insert_id: Some("abc".to_owned()),
            field: "properties.time".to_owned(),
            message: "m".to_owned(),
        };
        let value = serde_json::to_value(&error).expect("serializable");
        assert_eq!(
            value,
            json!({"index": 3, "$insert_id": "abc", "field": "properties.time", "message": "m"})
        );
    }

    #[test]
    fn flags_accept_true_and_one() {
        for truthy in [json!(true), json!("true"), json!(1), json!("1")] {
            assert!(is_true_flag(Some(&truthy)), "{truthy}");
        }
        for falsy in [
            json!(false),
            json!("false"),
            json!(0),
            json!(null),
            json!("yes"),
        ] {
            assert!(!is_true_flag(Some(&falsy)), "{falsy}");
        }
        assert!(!is_true_flag(None));
    }
}
