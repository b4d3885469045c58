//! The two things Hearth reads from URLs the client sent: the referrer's host
//! and the campaign (`utm_*`) parameters of the current page.
//!
//! Tolerant by design, like mixpanel-browser's string splitting: a URL a
//! strict parser rejects still yields what can be read, and nothing here
//! panics. Only the pieces returned are kept; the rest of the URL, query
//! string included, is dropped with the borrowed text.

/// The campaign parameters mixpanel-browser copies from the page URL.
pub(crate) const UTM_KEYS: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// mixpanel-browser truncates every string property to 255 characters.
const VALUE_CHARS_MAX: usize = 255;

/// The host of `referrer`, with its port when one is written, like
/// mixpanel-browser's `referrer.split('/')[2]`, minus any `user:password@`.
/// `None` for `$direct`, for text without `scheme://`, and for an empty or
/// implausible host.
pub(crate) fn referring_domain(referrer: &str) -> Option<String> {
    let referrer = referrer.trim();
    let (scheme, rest) = referrer.split_once("://")?;
    let is_scheme = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.');
    if scheme.is_empty() || !scheme.chars().all(is_scheme) {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // Credentials in a referrer are a leak waiting to happen: never keep them.
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let is_plausible = !host.is_empty()
        && host.len() <= VALUE_CHARS_MAX
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'));
    is_plausible.then(|| host.to_lowercase())
}

/// The non-empty `utm_*` parameters in the query of `url`, first occurrence
/// of each, percent- and `+`-decoded, cut to 255 characters. The query starts
/// at the first `?`, even inside a fragment (`/#/route?utm_source=x`, as
/// hash-routed apps write it), which mixpanel-browser's regex also reads.
pub(crate) fn utm_parameters(url: &str) -> Vec<(&'static str, String)> {
    let Some((_, after_question_mark)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = after_question_mark.split('#').next().unwrap_or_default();
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let Some(utm_key) = UTM_KEYS.iter().copied().find(|utm_key| *utm_key == key) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || found.iter().any(|(seen, _)| *seen == utm_key) {
            continue;
        }
        found.push((utm_key, value.chars().take(VALUE_CHARS_MAX).collect()));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referring_domain_is_the_full_host() {
        let cases = [
            (
                "https://www.google.com/search?q=hearth",
                Some("www.google.com"),
            ),
            (
                "https://news.ycombinator.com/",
                Some("news.ycombinator.com"),
            ),
            ("http://localhost:8080/page", Some("localhost:8080")),
            ("https://user:secret@example.com/x", Some("example.com")),
            ("https://Example.COM?x=1", Some("example.com")),
            (
                "android-app://com.google.android.gm/",
                Some("com.google.android.gm"),
            ),
            ("https://[2001:db8::1]:443/x", Some("[2001:db8::1]:443")),
            ("https://example.com#top", Some("example.com")),
            ("$direct", None),
            ("", None),
            ("google.com/search", None),
            ("://example.com", None),
            ("https:///path-only", None),
            ("https://exa mple.com/", None),
            ("ht tp://example.com/", None),
            ("https://", None),
            ("🦀://🦀/🦀", None),
        ];
        for (referrer, expected) in cases {
            assert_eq!(
                referring_domain(referrer).as_deref(),
                expected,
                "{referrer:?}"
            );
        }
    }

    #[test]
    fn utm_parameters_come_from_the_query() {
        let url = "https://shop.example/p?utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale\
                   &utm_term=&utm_content=a&utm_source=second&other=1#utm_content=fragment";
        assert_eq!(
            utm_parameters(url),
            vec![
                ("utm_source", "news letter".to_owned()),
                ("utm_medium", "email".to_owned()),
                ("utm_campaign", "spring sale".to_owned()),
                ("utm_content", "a".to_owned()),
            ]
        );
    }

    #[test]
    fn malformed_urls_yield_what_can_be_read() {
        assert_eq!(utm_parameters("not a url"), vec![]);
        assert_eq!(utm_parameters("?"), vec![]);
        assert_eq!(
            utm_parameters("https://x/?utm_source=%E0%A4%A&utm_medium=%ZZ"),
            vec![
                ("utm_source", "\u{FFFD}%A".to_owned()),
                ("utm_medium", "%ZZ".to_owned()),
            ]
        );
        assert_eq!(utm_parameters("https://x/?&&=&utm_source"), vec![]);
        assert_eq!(
            utm_parameters("https://x/#?utm_source=hash"),
            vec![("utm_source", "hash".to_owned())]
        );
        let long = format!("https://x/?utm_term={}", "é".repeat(300));
        assert_eq!(utm_parameters(&long)[0].1.chars().count(), VALUE_CHARS_MAX);
    }
}
