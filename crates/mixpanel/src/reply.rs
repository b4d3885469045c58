//! The answers the SDKs expect, as plain data (status, content type, body)
//! that the server turns into HTTP responses.
//!
//! The SDKs read these bodies closely: Node without `verbose` wants exactly
//! `1`; Python with `verbose=1` raises unless `status` is 1; the browser
//! only looks at the HTTP status. Getting a byte wrong here makes an SDK
//! retry or drop data, so each shape is pinned by a test.

use serde::Serialize;

use crate::RecordError;
use crate::params::is_callback_name;

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const GIF: &str = "image/gif";

/// A 1x1 transparent GIF (43 bytes), for `img=1`.
const TRANSPARENT_GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// An HTTP answer, without the HTTP types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The Content-Type header.
    pub content_type: &'static str,
    /// The body bytes.
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct VerboseBody<'a> {
    status: u8,
    error: Option<&'a str>,
}

/// The `/track` (and `/engage`, `/groups`, non-strict `/import`) answer,
/// always 200. Success, `1`, when at least one record was accepted, or when
/// nothing went wrong (`error` is `None`: e.g. every record was `$ignore`d);
/// else `0`. With `verbose`, `{"status":1|0,"error":...}` as JSON; `error`
/// is passed through as given, even on success.
pub fn track_reply(n_accepted: usize, verbose: bool, error: Option<&str>) -> Reply {
    let success = n_accepted > 0 || error.is_none();
    if !verbose {
        let body = if success {
            b"1".to_vec()
        } else {
            b"0".to_vec()
        };
        return Reply {
            status: 200,
            content_type: TEXT,
            body,
        };
    }
    json_reply(
        200,
        &VerboseBody {
            status: u8::from(success),
            error,
        },
    )
}

#[derive(Serialize)]
struct ImportOk {
    code: u16,
    num_records_imported: usize,
    status: &'static str,
}

#[derive(Serialize)]
struct ImportFailed<'a> {
    code: u16,
    error: &'static str,
    status: &'static str,
    num_records_imported: usize,
    failed_records: &'a [RecordError],
}

/// The `/import?strict=1` answer: 200 when every record was imported, else
/// 400 listing the failures (the valid records were still imported).
pub fn import_reply_strict(n_imported: usize, failed: &[RecordError]) -> Reply {
    if failed.is_empty() {
        return json_reply(
            200,
            &ImportOk {
                code: 200,
                num_records_imported: n_imported,
                status: "OK",
            },
        );
    }
    let body = ImportFailed {
        code: 400,
        error: "some data points in the request failed validation",
        status: reason_phrase(400),
        num_records_imported: n_imported,
        failed_records: failed,
    };
    json_reply(400, &body)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    error: &'a str,
    status: &'static str,
}

/// Mixpanel's error shape: `{"code":401,"error":"...","status":"Unauthorized"}`.
pub fn error_reply(status: u16, message: &str) -> Reply {
    json_reply(
        status,
        &ErrorBody {
            code: status,
            error: message,
            status: reason_phrase(status),
        },
    )
}

/// The 1x1 transparent GIF the `img=1` parameter asks for.
pub fn image_reply() -> Reply {
    Reply {
        status: 200,
        content_type: GIF,
        body: TRANSPARENT_GIF.to_vec(),
    }
}

/// Wraps a reply for JSONP: `callback(<body>);` as JavaScript. The status is
/// kept. A `callback` that is not an identifier path (see [`crate::Params`])
/// leaves the reply unchanged, so a caller's mistake cannot become script
/// injection.
pub fn with_callback(reply: Reply, callback: &str) -> Reply {
    if !is_callback_name(callback) {
        return reply;
    }
    let mut body = Vec::with_capacity(callback.len() + reply.body.len() + 3);
    body.extend_from_slice(callback.as_bytes());
    body.push(b'(');
    body.extend_from_slice(&reply.body);
    body.extend_from_slice(b");");
    Reply {
        status: reply.status,
        content_type: JAVASCRIPT,
        body,
    }
}

fn json_reply(status: u16, body: &impl Serialize) -> Reply {
    // Serializing these derive-made structs of strings and numbers cannot
    // fail; the fallback keeps the function total all the same.
    let body = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Reply {
        status,
        content_type: JSON,
        body,
    }
}

/// The reason phrase Mixpanel puts in `status`.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body_json(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).expect("json body")
    }

    fn body_text(reply: &Reply) -> &str {
        std::str::from_utf8(&reply.body).expect("utf-8 body")
    }

    #[test]
    fn track_reply_is_one_when_anything_was_accepted() {
        assert_eq!(body_text(&track_reply(3, false, None)), "1");
        assert_eq!(
            body_text(&track_reply(1, false, Some("1 record rejected"))),
            "1"
        );
        assert_eq!(body_text(&track_reply(0, false, Some("all rejected"))), "0");
        assert_eq!(track_reply(0, false, Some("all rejected")).status, 200);
    }

    #[test]
    fn track_reply_is_one_when_everything_was_ignored() {
        assert_eq!(body_text(&track_reply(0, false, None)), "1");
    }

    #[test]
    fn verbose_track_reply_is_status_json() {
        let reply = track_reply(2, true, None);
        assert_eq!(
            (reply.status, reply.content_type),
            (200, "application/json")
        );
        assert_eq!(body_text(&reply), r#"{"status":1,"error":null}"#);
        let reply = track_reply(0, true, Some("token \"x\" invalid"));
        assert_eq!(
            body_json(&reply),
            json!({"status": 0, "error": "token \"x\" invalid"})
        );
    }

    #[test]
    fn strict_import_reply_when_all_imported() {
        let reply = import_reply_strict(5, &[]);
        assert_eq!(reply.status, 200);
        assert_eq!(
            body_text(&reply),
            r#"{"code":200,"num_records_imported":5,"status":"OK"}"#
        );
    }

    #[test]
    fn strict_import_reply_lists_failures() {
        let failed = [RecordError {
            index: 1,
            insert_id: Some("abc".to_owned()),
            field: "properties.time".to_owned(),
            message: "is required".to_owned(),
        }];
        let reply = import_reply_strict(4, &failed);
        assert_eq!(reply.status, 400);
        let expected = json!({"code": 400, "error": "some data points in the request failed validation", "status": "Bad Request",
            "num_records_imported": 4,
            "failed_records": [{"index": 1, "$insert_id": "abc", "field": "properties.time", "message": "is required"}]});
        assert_eq!(body_json(&reply), expected);
    }

    #[test]
    fn error_reply_uses_reason_phrases() {
        let reply = error_reply(401, "Invalid credentials");
        assert_eq!(reply.status, 401);
        assert_eq!(
            body_text(&reply),
            r#"{"code":401,"error":"Invalid credentials","status":"Unauthorized"}"#
        );
        for (status, phrase) in [
            (413, "Request Entity Too Large"),
            (429, "Too Many Requests"),
            (400, "Bad Request"),
            (599, "Error"),
        ] {
            assert_eq!(
                body_json(&error_reply(status, "m")),
                json!({"code": status, "error": "m", "status": phrase})
            );
        }
    }

    #[test]
    fn image_reply_is_a_transparent_gif() {
        let reply = image_reply();
        assert_eq!((reply.status, reply.content_type), (200, "image/gif"));
        assert!(reply.body.starts_with(b"GIF89a"));
        assert_eq!(reply.body.last(), Some(&0x3b));
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&reply.body);
        assert_eq!(
            encoded,
            "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
        );
    }

    #[test]
    fn callback_wraps_the_body() {
        let reply = with_callback(track_reply(1, true, None), "mixpanel._jsc.abc");
        assert_eq!(reply.content_type, "text/javascript; charset=utf-8");
        assert_eq!(
            body_text(&reply),
            r#"mixpanel._jsc.abc({"status":1,"error":null});"#
        );
        let reply = with_callback(track_reply(1, false, None), "cb");
        assert_eq!(body_text(&reply), "cb(1);");
    }

    #[test]
    fn invalid_callback_leaves_the_reply_unchanged() {
        let plain = track_reply(1, false, None);
        assert_eq!(
            with_callback(plain.clone(), "alert(document.cookie)//"),
            plain
        );
    }
}
