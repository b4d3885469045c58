//! Request parameters, read from the query string and from a form-encoded
//! body alike.
//!
//! The SDKs do not agree on where flags go: the browser puts `verbose` and
//! `ip` in the query and `data` in the body, Python puts all of them in the
//! body, Node puts all of them in the query. So both sources are read, the
//! query first and then the body: for a key present in both, the body wins;
//! within one source the last occurrence wins.
//!
//! Decoding is done here rather than with `form_urlencoded::parse` because
//! that one replaces invalid UTF-8 silently, and we must reject it. Keys we
//! do not know (the browser's cache-busting `_=<ms>`, for one) are skipped
//! without being decoded, so a stray odd parameter never fails a request.

use crate::DecodeError;

/// The parameters Mixpanel's ingestion endpoints understand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `ip`: geolocate from the request address (`Some(true)`) or not.
    /// `None` when absent or not a recognised boolean.
    pub ip: Option<bool>,
    /// `verbose`: answer with JSON instead of a bare `1`/`0`.
    pub verbose: bool,
    /// `strict` (`/import`): report per-record failures with a 400.
    pub strict: Option<bool>,
    /// `img`: answer with a 1x1 GIF.
    pub img: bool,
    /// `callback`: JSONP function, kept only when it is a plain JavaScript
    /// identifier path (`[A-Za-z_$][A-Za-z0-9_$.]*`, at most 128 chars), so
    /// it cannot inject script into the reply.
    pub callback: Option<String>,
    /// `project_id` (`/import` with a service account); `None` when empty.
    pub project_id: Option<String>,
    /// `api_key` (legacy Node `/import`); `None` when empty.
    pub api_key: Option<String>,
}

/// Longest JSONP callback name we accept.
const CALLBACK_CHARS_MAX: usize = 128;

/// Params plus the raw `data` value, URL-decoded.
pub(crate) struct ParamsAndData {
    pub(crate) params: Params,
    pub(crate) data: Option<String>,
}

/// Reads the query and then, if any, the form body.
pub(crate) fn read_params(
    query: Option<&str>,
    form_body: Option<&[u8]>,
) -> Result<ParamsAndData, DecodeError> {
    let mut res = ParamsAndData {
        params: Params::default(),
        data: None,
    };
    let sources = [query.map(str::as_bytes), form_body];
    for source in sources.into_iter().flatten() {
        for pair in source.split(|&byte| byte == b'&') {
            apply_pair(&mut res, pair)?;
        }
    }
    Ok(res)
}

fn apply_pair(res: &mut ParamsAndData, pair: &[u8]) -> Result<(), DecodeError> {
    let (raw_key, raw_value) = match pair.iter().position(|&byte| byte == b'=') {
        Some(eq_idx) => pair.split_at(eq_idx),
        None => (pair, &b""[..]),
    };
    let raw_value = raw_value.strip_prefix(b"=").unwrap_or(raw_value);
    let key = percent_decode(raw_key);
    let params = &mut res.params;
    match key.as_slice() {
        b"ip" => params.ip = parse_bool(&decode_text(raw_value)?),
        b"verbose" => params.verbose = parse_bool(&decode_text(raw_value)?) == Some(true),
        b"strict" => params.strict = parse_bool(&decode_text(raw_value)?),
        b"img" => params.img = parse_bool(&decode_text(raw_value)?) == Some(true),
        b"callback" => {
            params.callback = Some(decode_text(raw_value)?).filter(|name| is_callback_name(name))
        }
        b"project_id" => {
            params.project_id = Some(decode_text(raw_value)?).filter(|id| !id.is_empty())
        }
        b"api_key" => params.api_key = Some(decode_text(raw_value)?).filter(|key| !key.is_empty()),
        b"data" => res.data = Some(decode_text(raw_value)?),
        _ => {}
    }
    Ok(())
}

/// `1`/`true` and `0`/`false` (any case); anything else is no answer.
fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    if text == "1" || text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text == "0" || text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A JavaScript identifier path such as `mixpanel._jsc.abc123`: nothing that
/// could end the call expression the reply wraps around the body.
pub(crate) fn is_callback_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == '$');
    first_ok
        && name.len() <= CALLBACK_CHARS_MAX
        && chars
            .all(|rest| rest.is_ascii_alphanumeric() || rest == '_' || rest == '$' || rest == '.')
}

fn decode_text(raw: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(percent_decode(raw)).map_err(|_| DecodeError::InvalidUtf8)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space and `%XY` a
/// byte. A `%` not followed by two hex digits is kept as is, like browsers do.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    loop {
        rest = match rest {
            [b'%', high, low, tail @ ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                out.push(hex_value(*high) << 4 | hex_value(*low));
                tail
            }
            [b'+', tail @ ..] => {
                out.push(b' ');
                tail
            }
            [byte, tail @ ..] => {
                out.push(*byte);
                tail
            }
            [] => return out,
        };
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str, body: &str) -> ParamsAndData {
        let form_body = Some(body.as_bytes()).filter(|body| !body.is_empty());
        read_params(Some(query), form_body).expect("valid params")
    }

    #[test]
    fn booleans_accept_one_true_zero_false() {
        for (text, expected) in [
            ("1", Some(true)),
            ("true", Some(true)),
            ("TRUE", Some(true)),
            ("0", Some(false)),
            ("false", Some(false)),
            ("yes", None),
            ("", None),
        ] {
            assert_eq!(
                params(&format!("ip={text}"), "").params.ip,
                expected,
                "{text}"
            );
        }
        let read = params("verbose=1&img=true&strict=0", "").params;
        assert!(read.verbose);
        assert!(read.img);
        assert_eq!(read.strict, Some(false));
        let read = params("verbose=2&img", "").params;
        assert!(!read.verbose);
        assert!(!read.img);
        assert_eq!(read.strict, None);
    }

    #[test]
    fn form_body_wins_over_query() {
        let read = params(
            "ip=1&verbose=0&data=from_query&project_id=7",
            "ip=0&verbose=1&data=from_body",
        );
        assert_eq!(read.params.ip, Some(false));
        assert!(read.params.verbose);
        assert_eq!(read.data.as_deref(), Some("from_body"));
        assert_eq!(read.params.project_id.as_deref(), Some("7"));
    }

    #[test]
    fn query_alone_is_read() {
        let read = params("ip=0&verbose=0&data=eyJ9&api_key=k", "");
        assert_eq!(read.params.ip, Some(false));
        assert_eq!(read.data.as_deref(), Some("eyJ9"));
        assert_eq!(read.params.api_key.as_deref(), Some("k"));
    }

    #[test]
    fn values_are_url_decoded() {
        let read = params("data=a%2Bb+c%3D%3d%zz%", "");
        assert_eq!(read.data.as_deref(), Some("a+b c==%zz%"));
        let read = params("d%61ta=x", "");
        assert_eq!(read.data.as_deref(), Some("x"));
    }

    #[test]
    fn empty_ids_are_absent() {
        let read = params("project_id=&api_key=", "").params;
        assert_eq!(read.project_id, None);
        assert_eq!(read.api_key, None);
    }

    #[test]
    fn invalid_utf8_in_a_known_value_is_rejected() {
        let res = read_params(Some("data=%FF%FE"), None);
        assert!(matches!(res, Err(DecodeError::InvalidUtf8)));
        let res = read_params(None, Some(b"verbose=\xff"));
        assert!(matches!(res, Err(DecodeError::InvalidUtf8)));
    }

    #[test]
    fn unknown_keys_are_ignored_even_when_not_utf8() {
        let read =
            read_params(Some("_=%FF&utm=%C3"), Some(b"other=\xff&ip=1")).expect("valid params");
        assert_eq!(read.params.ip, Some(true));
        assert_eq!(read.data, None);
    }

    #[test]
    fn callback_must_be_an_identifier_path() {
        for valid in [
            "cb",
            "mixpanel._jsc.abc123",
            "$",
            "_a$b.c",
            &"a".repeat(128),
        ] {
            assert_eq!(
                params(&format!("callback={valid}"), "")
                    .params
                    .callback
                    .as_deref(),
                Some(valid)
            );
        }
        for invalid in [
            "1cb",
            "alert(1)",
            "a%20b",
            "a;b",
            "",
            ".a",
            "é",
            &"a".repeat(129),
        ] {
            assert_eq!(
                params(&format!("callback={invalid}"), "").params.callback,
                None,
                "{invalid}"
            );
        }
    }
}
