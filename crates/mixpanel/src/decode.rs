//! One entry point, [`decode_request`], that accepts every request shape
//! the official SDKs send (wire reference, section 1.1) and returns the
//! parameters and the JSON records, not yet validated.
//!
//! Order of decisions:
//! 1. size checks, and gzip inflation (capped) when announced or detected;
//! 2. the body is JSON if it starts with `{` or `[`, else a form (whatever
//!    Content-Type says: `sendBeacon` labels its form `text/plain`);
//! 3. parameters come from the query, then from a form body, which wins;
//! 4. a `data` parameter, when present, is the payload (JSON or base64);
//!    otherwise a JSON body is; otherwise there is no data.

use serde_json::Value;

use crate::body::{BodyKind, classify, declares_json, inflate_capped, is_gzip};
use crate::params::read_params;
use crate::payload::{records_from_data_value, records_from_json_text};
use crate::{DecodeError, Limits, Params};

/// A request as the server received it, before any decoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawRequest<'a> {
    /// The raw query string, without `?`, not URL-decoded.
    pub query: Option<&'a str>,
    /// The Content-Type header. Only a hint: see [`decode_request`].
    pub content_type: Option<&'a str>,
    /// The Content-Encoding header; `gzip` inflates the body.
    pub content_encoding: Option<&'a str>,
    /// The body as received, maybe gzip.
    pub body: &'a [u8],
}

/// The parameters and records of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Flags from the query and a form body.
    pub params: Params,
    /// One JSON value per record, in request order. Not yet validated:
    /// elements that are not objects are kept so that validation can reject
    /// them one by one.
    pub records: Vec<Value>,
    /// True when the payload came from a `data=` parameter (the legacy SDK
    /// form), false for a raw JSON or NDJSON body.
    pub from_data_param: bool,
}

/// Decodes a Mixpanel ingestion request of any SDK's shape.
///
/// Accepted payloads: `data=` in the query or in a form body (form,
/// `text/plain` or no Content-Type), holding JSON or base64 JSON; or a raw
/// JSON body (object, array, NDJSON). Either may be gzipped. When both a
/// `data` parameter and a JSON body are present, `data` wins.
///
/// Content-Type only matters when a body that does not look like JSON
/// carries no `data`: if it claims to be JSON, the answer is `BadJson`
/// rather than `NoData`.
///
/// # Errors
///
/// A [`DecodeError`] when the request as a whole is unusable: no payload,
/// too large, too many records, or not gzip, base64, UTF-8 or JSON where it
/// has to be. Invalid single records are not errors here.
pub fn decode_request(request: &RawRequest<'_>, limits: &Limits) -> Result<Decoded, DecodeError> {
    let query = request.query.unwrap_or_default();
    if query.len() > limits.body_bytes_max {
        return Err(DecodeError::BodyTooLarge {
            limit: limits.body_bytes_max,
        });
    }
    let inflated;
    let body = if !request.body.is_empty() && is_gzip(request.content_encoding, request.body) {
        inflated = inflate_capped(request.body, limits.body_bytes_max)?;
        inflated.as_slice()
    } else if request.body.len() > limits.body_bytes_max {
        return Err(DecodeError::BodyTooLarge {
            limit: limits.body_bytes_max,
        });
    } else {
        request.body
    };
    let (body_kind, body) = classify(body);
    let form_body = Some(body).filter(|_| body_kind == BodyKind::Form);
    let params_and_data = read_params(request.query, form_body)?;
    let params = params_and_data.params;
    if let Some(data) = params_and_data.data {
        let records = records_from_data_value(&data, limits)?;
        return Ok(Decoded {
            params,
            records,
            from_data_param: true,
        });
    }
    match body_kind {
        BodyKind::Json => {
            let text = std::str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
            let records = records_from_json_text(text, limits)?;
            Ok(Decoded {
                params,
                records,
                from_data_param: false,
            })
        }
        BodyKind::Form if declares_json(request.content_type) => Err(DecodeError::BadJson {
            detail: "expected a json object or array".to_owned(),
        }),
        BodyKind::Form | BodyKind::Empty => Err(DecodeError::NoData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::tests::gzip;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    fn decode(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Decoded, DecodeError> {
        let request = RawRequest {
            query,
            content_type,
            content_encoding: None,
            body,
        };
        decode_request(&request, &Limits::default())
    }

    #[test]
    fn empty_request_is_no_data() {
        assert_eq!(decode(None, None, b""), Err(DecodeError::NoData));
        assert_eq!(decode(Some(""), None, b"  \n"), Err(DecodeError::NoData));
        assert_eq!(
            decode(Some("ip=1&verbose=1"), None, b""),
            Err(DecodeError::NoData)
        );
    }

    #[test]
    fn form_without_data_is_no_data() {
        let form = Some("application/x-www-form-urlencoded");
        assert_eq!(
            decode(None, form, b"verbose=1&ip=0"),
            Err(DecodeError::NoData)
        );
        assert_eq!(decode(None, None, b"garbage"), Err(DecodeError::NoData));
    }

    #[test]
    fn non_json_body_claiming_json_is_bad_json() {
        let res = decode(None, Some("application/json"), b"\"just a string\"");
        assert!(matches!(res, Err(DecodeError::BadJson { .. })));
    }

    #[test]
    fn json_body_is_decoded_without_data_param() {
        let decoded = decode(
            Some("ip=1"),
            Some("application/json"),
            br#"[{"event":"a"},{"event":"b"}]"#,
        )
        .expect("valid");
        assert_eq!(
            decoded.records,
            vec![json!({"event": "a"}), json!({"event": "b"})]
        );
        assert_eq!(decoded.params.ip, Some(true));
        assert!(!decoded.from_data_param);
    }

    #[test]
    fn json_body_needs_no_content_type() {
        let decoded =
            decode(None, None, b"{\"event\":\"a\"}\n{\"event\":\"b\"}\n").expect("valid ndjson");
        assert_eq!(decoded.records.len(), 2);
    }

    #[test]
    fn text_plain_beacon_body_is_a_form() {
        let encoded = STANDARD.encode(r#"[{"event":"a"}]"#);
        let body = format!("data={}", encoded.replace('=', "%3D").replace('+', "%2B"));
        let decoded = decode(
            Some("verbose=1&ip=1&_=1795317755287"),
            Some("text/plain;charset=UTF-8"),
            body.as_bytes(),
        )
        .expect("valid");
        assert_eq!(decoded.records, vec![json!({"event": "a"})]);
        assert!(decoded.params.verbose);
        assert!(decoded.from_data_param);
    }

    #[test]
    fn data_in_the_body_wins_over_data_in_the_query() {
        let decoded = decode(
            Some("data=%7B%22event%22%3A%22query%22%7D"),
            None,
            br#"data={"event":"body"}"#,
        )
        .expect("valid");
        assert_eq!(decoded.records, vec![json!({"event": "body"})]);
    }

    #[test]
    fn data_param_wins_over_a_json_body() {
        let decoded = decode(
            Some("data=%7B%22event%22%3A%22query%22%7D"),
            None,
            br#"{"event":"body"}"#,
        )
        .expect("valid");
        assert_eq!(decoded.records, vec![json!({"event": "query"})]);
        assert!(decoded.from_data_param);
    }

    #[test]
    fn gzip_body_is_inflated_by_header_or_by_magic() {
        let compressed = gzip(br#"[{"event":"a"}]"#);
        for content_encoding in [Some("gzip"), None] {
            let request = RawRequest {
                query: None,
                content_type: Some("application/json"),
                content_encoding,
                body: &compressed,
            };
            let decoded = decode_request(&request, &Limits::default()).expect("valid gzip");
            assert_eq!(decoded.records, vec![json!({"event": "a"})]);
        }
        let compressed_form = gzip(b"data=%5B%7B%22event%22%3A%22a%22%7D%5D");
        let request = RawRequest {
            content_encoding: Some("gzip"),
            body: &compressed_form,
            ..RawRequest::default()
        };
        assert_eq!(
            decode_request(&request, &Limits::default()).map(|decoded| decoded.records.len()),
            Ok(1)
        );
    }

    #[test]
    fn gzip_header_on_plain_body_is_bad_gzip() {
        let request = RawRequest {
            content_encoding: Some("gzip"),
            body: b"{}",
            ..RawRequest::default()
        };
        assert_eq!(
            decode_request(&request, &Limits::default()),
            Err(DecodeError::BadGzip)
        );
    }

    #[test]
    fn body_size_is_checked_at_the_limit_and_one_over() {
        let limits = Limits {
            body_bytes_max: 16,
            ..Limits::default()
        };
        let at_limit = br#"{"event":"abcd"}"#;
        assert_eq!(at_limit.len(), 16);
        let request = RawRequest {
            body: at_limit,
            ..RawRequest::default()
        };
        assert!(decode_request(&request, &limits).is_ok());
        let over = br#"{"event":"abcde"}"#;
        let request = RawRequest {
            body: over,
            ..RawRequest::default()
        };
        assert_eq!(
            decode_request(&request, &limits),
            Err(DecodeError::BodyTooLarge { limit: 16 })
        );
        let compressed = gzip(over);
        let request = RawRequest {
            body: &compressed,
            ..RawRequest::default()
        };
        assert_eq!(
            decode_request(&request, &limits),
            Err(DecodeError::BodyTooLarge { limit: 16 })
        );
        let long_query = format!("data={}", "x".repeat(20));
        let request = RawRequest {
            query: Some(&long_query),
            ..RawRequest::default()
        };
        assert_eq!(
            decode_request(&request, &limits),
            Err(DecodeError::BodyTooLarge { limit: 16 })
        );
    }

    #[test]
    fn gzip_bomb_in_a_request_is_body_too_large() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..20 {
            encoder.write_all(&zeros).expect("in-memory write");
        }
        let bomb = encoder.finish().expect("in-memory write");
        let request = RawRequest {
            content_encoding: Some("gzip"),
            body: &bomb,
            ..RawRequest::default()
        };
        assert_eq!(
            decode_request(&request, &Limits::default()),
            Err(DecodeError::BodyTooLarge {
                limit: 10 * 1024 * 1024
            })
        );
    }

    #[test]
    fn invalid_utf8_json_body_is_rejected() {
        assert_eq!(
            decode(None, None, b"{\"event\":\"\xff\"}"),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode(None, None, b"data=%7B%22e%22%3A%22%FF%22%7D"),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn too_many_records_in_data_param() {
        let limits = Limits {
            records_max: 2,
            ..Limits::default()
        };
        let request = RawRequest {
            body: b"data=[{},{},{}]",
            ..RawRequest::default()
        };
        assert_eq!(
            decode_request(&request, &limits),
            Err(DecodeError::TooManyRecords { limit: 2 })
        );
    }
}
