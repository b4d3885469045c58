//! The PII detector on arbitrary text: never panics; findings are ordered,
//! disjoint, inside the text and on char boundaries; redaction replaces
//! exactly them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let findings = privacy::pii::scan(text);
    let mut end = 0;
    for finding in &findings {
        assert!(finding.start >= end && finding.start < finding.end && finding.end <= text.len());
        assert!(text.is_char_boundary(finding.start) && text.is_char_boundary(finding.end));
        end = finding.end;
    }
    let redacted = privacy::pii::redact(text);
    let expected = privacy::pii::replace_findings(text, &findings, |f| f.kind.placeholder().to_owned());
    assert_eq!(redacted, expected);
});
