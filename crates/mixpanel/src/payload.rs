//! From payload text to JSON records: the `data` parameter (JSON or base64)
//! and JSON bodies (one object, an array, or NDJSON).
//!
//! Base64 is decoded leniently because every SDK spells it a little
//! differently: padded or not, standard or URL-safe alphabet, and a `+` that
//! was not percent-encoded in a query string arrives as a space.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::body::inflate_capped;
use crate::{DecodeError, Limits};

/// Standard alphabet (URL-safe input is mapped onto it), padding optional,
/// non-zero trailing bits tolerated.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Records from the URL-decoded value of a `data` parameter.
pub(crate) fn records_from_data_value(
    value: &str,
    limits: &Limits,
) -> Result<Vec<Value>, DecodeError> {
    let trimmed = value.trim_start();
    if trimmed.trim_end().is_empty() {
        return Err(DecodeError::NoData);
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return records_from_json_text(trimmed, limits);
    }
    let decoded = decode_base64(value)?;
    // Tolerated for clients that gzip the JSON before base64-encoding it.
    let decoded = if decoded.starts_with(&[0x1f, 0x8b]) {
        inflate_capped(&decoded, limits.body_bytes_max)?
    } else {
        decoded
    };
    let text = String::from_utf8(decoded).map_err(|_| DecodeError::InvalidUtf8)?;
    records_from_json_text(&text, limits)
}

fn decode_base64(value: &str) -> Result<Vec<u8>, DecodeError> {
    let normalized: String = value
        .chars()
        .filter(|char| !matches!(char, '\r' | '\n' | '\t'))
        .map(|char| match char {
            ' ' | '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    LENIENT_BASE64
        .decode(normalized.as_bytes())
        .map_err(|_| DecodeError::BadBase64)
}

/// Records from JSON text. One value must be an object (one record) or an
/// array (its elements); several whitespace-separated values (NDJSON) are
/// one record each. Elements that are not objects are kept: validation
/// rejects them one by one, so their valid neighbours still go through.
///
/// `serde_json`'s recursion limit (128) bounds nesting; its error, like any
/// other parse error, becomes `BadJson` with a message naming only a
/// position.
pub(crate) fn records_from_json_text(
    text: &str,
    limits: &Limits,
) -> Result<Vec<Value>, DecodeError> {
    let mut values = Vec::new();
    for next in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        values.push(next.map_err(|error| DecodeError::bad_json(&error))?);
        if values.len() > limits.records_max {
            return Err(DecodeError::TooManyRecords {
                limit: limits.records_max,
            });
        }
    }
    if values.len() != 1 {
        return if values.is_empty() {
            Err(DecodeError::NoData)
        } else {
            Ok(values)
        };
    }
    match values.pop() {
        Some(Value::Array(items)) if items.len() > limits.records_max => {
            Err(DecodeError::TooManyRecords {
                limit: limits.records_max,
            })
        }
        Some(Value::Array(items)) => Ok(items),
        Some(object @ Value::Object(_)) => Ok(vec![object]),
        _ => Err(DecodeError::BadJson {
            detail: "expected a json object or array".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use serde_json::json;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn one_object_is_one_record() {
        let records = records_from_json_text(r#"{"event":"a"}"#, &limits()).expect("valid json");
        assert_eq!(records, vec![json!({"event": "a"})]);
    }

    #[test]
    fn an_array_is_its_elements_and_non_objects_are_kept() {
        let records =
            records_from_json_text(r#"[{"event":"a"}, 5, "x", {"event":"b"}]"#, &limits())
                .expect("valid json");
        assert_eq!(
            records,
            vec![
                json!({"event": "a"}),
                json!(5),
                json!("x"),
                json!({"event": "b"})
            ]
        );
    }

    #[test]
    fn ndjson_lines_are_records_and_blank_lines_are_ignored() {
        let text = "{\"event\":\"a\"}\n\n  \r\n{\"event\":\"b\"}\n";
        let records = records_from_json_text(text, &limits()).expect("valid ndjson");
        assert_eq!(records, vec![json!({"event": "a"}), json!({"event": "b"})]);
    }

    #[test]
    fn record_count_is_checked_at_the_limit_and_one_over() {
        let limits = Limits {
            records_max: 3,
            ..Limits::default()
        };
        assert_eq!(
            records_from_json_text("[{},{},{}]", &limits).map(|records| records.len()),
            Ok(3)
        );
        assert_eq!(
            records_from_json_text("[{},{},{},{}]", &limits),
            Err(DecodeError::TooManyRecords { limit: 3 })
        );
        assert_eq!(
            records_from_json_text("{}\n{}\n{}", &limits).map(|records| records.len()),
            Ok(3)
        );
        assert_eq!(
            records_from_json_text("{}\n{}\n{}\n{}", &limits),
            Err(DecodeError::TooManyRecords { limit: 3 })
        );
    }

    #[test]
    fn bad_json_reports_a_position_but_no_content() {
        let res = records_from_json_text(r#"{"secret_value": tru}"#, &limits());
        let Err(DecodeError::BadJson { detail }) = res else {
            panic!("expected BadJson, got {res:?}")
        };
        assert!(detail.contains("line 1"), "{detail}");
        assert!(!detail.contains("secret"), "{detail}");
        let res = records_from_json_text("{\"a\":1}\n{broken", &limits());
        assert!(matches!(res, Err(DecodeError::BadJson { detail }) if detail.contains("line 2")));
    }

    #[test]
    fn deep_nesting_hits_the_recursion_limit_as_bad_json() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            records_from_json_text(&deep, &limits()),
            Err(DecodeError::BadJson { .. })
        ));
        let deep = format!(
            "{{\"event\":{}1{}}}",
            "{\"a\":".repeat(200),
            "}".repeat(200)
        );
        assert!(matches!(
            records_from_json_text(&deep, &limits()),
            Err(DecodeError::BadJson { .. })
        ));
    }

    #[test]
    fn a_lone_scalar_is_bad_json() {
        assert!(matches!(
            records_from_json_text("5", &limits()),
            Err(DecodeError::BadJson { .. })
        ));
        assert_eq!(
            records_from_json_text("  ", &limits()),
            Err(DecodeError::NoData)
        );
    }

    #[test]
    fn data_value_starting_with_a_brace_is_json() {
        let records =
            records_from_data_value("  {\"event\":\"a\"}", &limits()).expect("valid json");
        assert_eq!(records, vec![json!({"event": "a"})]);
        let records =
            records_from_data_value("[{\"event\":\"a\"}]", &limits()).expect("valid json");
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn base64_is_accepted_padded_unpadded_and_url_safe() {
        // `>>>` and `???` encode to `+`/`/` (or `-`/`_`) in base64.
        let json_text = r#"{"event":"a","p":">>>???"}"#;
        let expected = vec![json!({"event": "a", "p": ">>>???"})];
        let padded = STANDARD.encode(json_text);
        assert!(padded.ends_with('=') && padded.contains('+') && padded.contains('/'));
        let unpadded = padded.trim_end_matches('=').to_owned();
        let url_safe = URL_SAFE_NO_PAD.encode(json_text);
        let spaces_for_plus = padded.replace('+', " ");
        let wrapped = format!("{}\r\n{}\n", &padded[..20], &padded[20..]);
        for encoded in [padded.clone(), unpadded, url_safe, spaces_for_plus, wrapped] {
            assert_eq!(
                records_from_data_value(&encoded, &limits()),
                Ok(expected.clone()),
                "{encoded}"
            );
        }
    }

    #[test]
    fn bad_base64_is_rejected() {
        assert_eq!(
            records_from_data_value("not*base64!", &limits()),
            Err(DecodeError::BadBase64)
        );
        assert_eq!(
            records_from_data_value("e30===", &limits()),
            Err(DecodeError::BadBase64)
        );
        assert_eq!(
            records_from_data_value("e", &limits()),
            Err(DecodeError::BadBase64)
        );
    }

    #[test]
    fn base64_of_invalid_utf8_or_non_json_is_rejected() {
        assert_eq!(
            records_from_data_value(&STANDARD.encode(b"\xff\xfe{}"), &limits()),
            Err(DecodeError::InvalidUtf8)
        );
        let res = records_from_data_value(&STANDARD.encode(b"{nope"), &limits());
        assert!(matches!(res, Err(DecodeError::BadJson { .. })));
    }

    #[test]
    fn base64_of_gzipped_json_is_inflated() {
        let encoded = STANDARD.encode(crate::body::tests::gzip(br#"[{"event":"a"}]"#));
        assert_eq!(
            records_from_data_value(&encoded, &limits()),
            Ok(vec![json!({"event": "a"})])
        );
    }

    #[test]
    fn empty_data_is_no_data() {
        assert_eq!(
            records_from_data_value("", &limits()),
            Err(DecodeError::NoData)
        );
        assert_eq!(
            records_from_data_value(" \n", &limits()),
            Err(DecodeError::NoData)
        );
    }
}
