//! A deterministic fuzz pass over the detector, run with every `cargo
//! test` (the coverage-guided target is `fuzz/fuzz_targets/pii_scan.rs`).
//! Properties: no panic on any input; findings are in order, within the
//! text, on char boundaries and never overlap; redacting replaces exactly
//! them; a planted value survives no surrounding noise.

use privacy::pii::{PiiKind, redact, scan};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALPHABET: &[&str] = &[
    "0", "1", "4", "5", "9", ".", "-", " ", "+", "(", ")", "@", ":", "_", "/", "a", "Z", "x", "e", "eyJ", "DE", "GB82", "sk_live_", "ghp_", "AKIA",
    "é", "日本", "\u{0}", "\n", "%", "=", "&", "::", "255", "192.168.", "4111", "example.com", "+44 ",
];

const PLANTED: &[(&str, PiiKind)] = &[
    ("ada@example.com", PiiKind::Email),
    ("4111 1111 1111 1111", PiiKind::CardNumber),
    ("203.0.113.77", PiiKind::Ipv4),
    ("2001:db8::77", PiiKind::Ipv6),
    ("+44 20 7946 0958", PiiKind::Phone),
    ("GB82WEST12345698765432", PiiKind::Iban),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", PiiKind::Secret),
];

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(40);
    (0..n).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect()
}

fn check_invariants(text: &str) {
    let findings = scan(text);
    let mut previous_end = 0;
    for finding in &findings {
        assert!(finding.start < finding.end && finding.end <= text.len(), "{text:?}: {finding:?}");
        assert!(finding.start >= previous_end, "{text:?}: overlapping or unordered {findings:?}");
        assert!(text.is_char_boundary(finding.start) && text.is_char_boundary(finding.end), "{text:?}: {finding:?}");
        previous_end = finding.end;
    }
    // Redaction replaces exactly the findings and keeps every other byte.
    let mut expected = String::new();
    let mut at = 0;
    for finding in &findings {
        expected.push_str(&text[at..finding.start]);
        expected.push_str(finding.kind.placeholder());
        at = finding.end;
    }
    expected.push_str(&text[at..]);
    assert_eq!(redact(text), expected, "{text:?}");
}

#[test]
fn random_text_keeps_the_invariants() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..20_000 {
        check_invariants(&random_text(&mut rng));
    }
}

#[test]
fn planted_values_are_found_between_separators() {
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let separators = [" ", ", ", "; ", " | ", "\n", "=", "\"", "(", ") "];
    for _ in 0..5_000 {
        let (value, kind) = PLANTED[rng.below(PLANTED.len())];
        let before = separators[rng.below(separators.len())];
        let after = separators[rng.below(separators.len())];
        let words = ["note", "Signed Up", "v1.2.3", "2024-01-15", "id 42", ""];
        let text = format!("{}{before}{value}{after}{}", words[rng.below(words.len())], words[rng.below(words.len())]);
        check_invariants(&text);
        let found = scan(&text);
        assert!(found.iter().any(|f| f.kind == kind && &text[f.start..f.end] == value), "{value} not found in {text:?}: {found:?}");
        assert!(!redact(&text).contains(value), "{value} survived redaction of {text:?}");
    }
}
