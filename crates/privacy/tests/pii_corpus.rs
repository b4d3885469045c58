//! The detector's corpus: values it must find (with the kind and the exact
//! text found) and values it must leave alone. The false positives are the
//! ones analytics properties are full of: dates, times, versions, unix
//! timestamps, UUIDs, hex ids, amounts, order numbers, URLs and user agents.

use privacy::pii::{PiiKind, scan, redact};

const TRUE_POSITIVES: &[(&str, PiiKind, &str)] = &[
    ("ada@example.com", PiiKind::Email, "ada@example.com"),
    ("Contact: First.Last@sub.example.org.", PiiKind::Email, "First.Last@sub.example.org"),
    ("o'brien@example.ie", PiiKind::Email, "o'brien@example.ie"),
    ("https://app.test/invite?email=jane%40x.io&to=joe@acme.travel", PiiKind::Email, "joe@acme.travel"),
    ("\"mailto:support@hearth.dev\"", PiiKind::Email, "support@hearth.dev"),
    ("+1 415 555 2671", PiiKind::Phone, "+1 415 555 2671"),
    ("+14155552671", PiiKind::Phone, "+14155552671"),
    ("+49 (30) 1234567", PiiKind::Phone, "+49 (30) 1234567"),
    ("tel (415) 555-2671", PiiKind::Phone, "(415) 555-2671"),
    ("415-555-2671", PiiKind::Phone, "415-555-2671"),
    ("415.555.2671", PiiKind::Phone, "415.555.2671"),
    ("1 415 555 2671", PiiKind::Phone, "1 415 555 2671"),
    ("020 7946 0958", PiiKind::Phone, "020 7946 0958"),
    ("06-12345678", PiiKind::Phone, "06-12345678"),
    ("4111111111111111", PiiKind::CardNumber, "4111111111111111"),
    ("pay 4012-8888-8888-1881 now", PiiKind::CardNumber, "4012-8888-8888-1881"),
    ("5105 1051 0510 5100", PiiKind::CardNumber, "5105 1051 0510 5100"),
    ("2223003122003222", PiiKind::CardNumber, "2223003122003222"),
    ("3782 822463 10005", PiiKind::CardNumber, "3782 822463 10005"),
    ("6011111111111117", PiiKind::CardNumber, "6011111111111117"),
    ("3530111333300000", PiiKind::CardNumber, "3530111333300000"),
    ("ip=198.51.100.23;", PiiKind::Ipv4, "198.51.100.23"),
    ("10.0.0.1", PiiKind::Ipv4, "10.0.0.1"),
    ("[2001:db8:85a3::8a2e:370:7334]:443", PiiKind::Ipv6, "2001:db8:85a3::8a2e:370:7334"),
    ("fe80::1ff:fe23:4567:890a", PiiKind::Ipv6, "fe80::1ff:fe23:4567:890a"),
    ("::ffff:192.0.2.128", PiiKind::Ipv6, "::ffff:192.0.2.128"),
    ("GB82WEST12345698765432", PiiKind::Iban, "GB82WEST12345698765432"),
    ("NL91 ABNA 0417 1643 00", PiiKind::Iban, "NL91 ABNA 0417 1643 00"),
    ("iban: FR1420041010050500013M02606", PiiKind::Iban, "FR1420041010050500013M02606"),
    (
        "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        PiiKind::Jwt,
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", PiiKind::Secret, "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("AKIAIOSFODNN7EXAMPLE", PiiKind::Secret, "AKIAIOSFODNN7EXAMPLE"),
    ("token xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", PiiKind::Secret, "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"),
    ("sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34", PiiKind::Secret, "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34"),
    ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", PiiKind::Secret, "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    ("glpat-x1Y2z3W4v5U6t7S8r9Q0", PiiKind::Secret, "glpat-x1Y2z3W4v5U6t7S8r9Q0"),
    ("hth_ing_5Zq9K2mXb7Lp3Rt8Vw1Yc4Nd6", PiiKind::Secret, "hth_ing_5Zq9K2mXb7Lp3Rt8Vw1Yc4Nd6"),
];

const TRUE_NEGATIVES: &[&str] = &[
    "",
    "Signed Up",
    "2024-01-15",
    "2024-01-15T10:30:00Z",
    "2024-01-15 10:30:00.123",
    "15.01.2024",
    "01/15/2024",
    "12:30:45",
    "1.2.3",
    "10.0.19045.2965",
    "120.0.6099.109",
    "v2.14.0-rc.1",
    "1700000000",
    "1700000000123",
    "550e8400-e29b-41d4-a716-446655440000",
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "order 4111111111111112",
    "ORD-2024-000123",
    "Total: 1,234,567.89",
    "$ 1 234 567",
    "#ff00aa",
    "https://example.com/path/to/page?utm_source=news&id=12345",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "@username",
    "user@localhost",
    "a@b",
    "name@123.456",
    "task-force-alpha",
    "sk-short",
    "ghp_not_a_real_token",
    "AKIA is an AWS prefix",
    "eyJhbGciOi",
    "00:1a:2b:3c:4d:5e",
    "::1",
    "::",
    "127.0.0.1",
    "0.0.0.0",
    "999.1.1.1",
    "DE00 1234 5678 9012 3456 78",
    "ISBN 978-3-16-148410-0",
    "pages 100-200",
    "SKU 12345 67890",
    "1234 5678",
    "+1",
    "(555)",
    "3.14159265358979",
    "build 20240115.1234",
];

#[test]
fn every_true_positive_is_found_exactly() {
    let mut failures = Vec::new();
    for (text, kind, expected) in TRUE_POSITIVES {
        let found: Vec<(PiiKind, &str)> = scan(text).into_iter().map(|f| (f.kind, &text[f.start..f.end])).collect();
        if found != [(*kind, *expected)] {
            failures.push(format!("{text:?}: expected {kind:?} {expected:?}, found {found:?}"));
        }
    }
    assert!(failures.is_empty(), "missed or wrong:\n{}", failures.join("\n"));
}

#[test]
fn no_true_negative_is_flagged() {
    let mut failures = Vec::new();
    for text in TRUE_NEGATIVES {
        let found: Vec<(PiiKind, &str)> = scan(text).into_iter().map(|f| (f.kind, &text[f.start..f.end])).collect();
        if !found.is_empty() {
            failures.push(format!("{text:?}: found {found:?}"));
        }
    }
    assert!(failures.is_empty(), "false positives:\n{}", failures.join("\n"));
}

#[test]
fn several_findings_in_one_value_are_all_redacted() {
    let text = "from 203.0.113.9 user ada@example.com card 4111-1111-1111-1111 phone +33 1 23 45 67 89 key sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    assert_eq!(redact(text), "from [ip] user [email] card [card] phone [phone] key [secret]");
}

#[test]
fn findings_are_embedded_in_urls_and_json_text() {
    assert_eq!(redact("https://shop.test/checkout?email=ada@example.com&utm_source=x"), "https://shop.test/checkout?email=[email]&utm_source=x");
    assert_eq!(redact(r#"{"ip":"198.51.100.4","n":3}"#), r#"{"ip":"[ip]","n":3}"#);
}
