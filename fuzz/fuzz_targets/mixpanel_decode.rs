//! The ingestion decoder on arbitrary requests: never panics, and every
//! error maps to 400 or 413.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize) % (data.len().max(1));
    let (query, body) = data.split_at(split);
    let query = std::str::from_utf8(query).ok();
    for content_type in [None, Some("application/json"), Some("application/x-www-form-urlencoded"), Some("text/plain")] {
        let request = mixpanel::RawRequest { query, content_type, content_encoding: None, body };
        if let Err(error) = mixpanel::decode_request(&request, &mixpanel::Limits::default()) {
            assert!(matches!(error.http_status(), 400 | 413));
        }
    }
});
