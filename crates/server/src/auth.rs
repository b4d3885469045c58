//! HTTP Basic authentication with the project secret as the username and an
//! empty password, as Mixpanel's project secret works.

use crate::error::ApiError;
use crate::state::Inner;
use axum::http::{header, HeaderMap};
use base64::Engine;
use meta::Project;

/// The username of a Basic `Authorization` header, if any.
fn basic_username(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let username = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
    (!username.is_empty()).then(|| username.to_owned())
}

/// A `Bearer` token (Mixpanel's GDPR API sends its token so).
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}

/// The project whose secret the request carries. Blocking (SQLite).
pub(crate) fn project_from_secret(inner: &Inner, headers: &HeaderMap) -> Result<Project, ApiError> {
    let secret = basic_username(headers).or_else(|| bearer_token(headers)).ok_or(ApiError::Unauthorized)?;
    inner.meta.project_by_secret(&secret)?.ok_or(ApiError::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_username_of_a_basic_header_is_the_secret() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("s3cret:");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).unwrap());
        assert_eq!(basic_username(&headers).as_deref(), Some("s3cret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(basic_username(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_username(&headers), None);
    }
}
