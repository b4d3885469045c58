//! Finding personal data in free-form text: emails, phone numbers, card
//! numbers, IP addresses, IBANs, JSON Web Tokens and API-key-like secrets.
//!
//! Why typed rules and not one big regex: each kind has a check that a
//! pattern cannot express (Luhn for cards, mod-97 for IBANs, a real address
//! parse for IPs, an IIN prefix table), and each check is what keeps the
//! false positives (dates, versions, timestamps, UUIDs, hex ids) out. The
//! rules follow Sentry's `@email`/`@creditcard`/`@ip` scrubbers and
//! GitHub's secret-scanning prefixes.
//!
//! The module is pure (no IO, no allocation unless something is found) and
//! linear in the text: it runs on every string property at ingest, so the
//! common case, a value with nothing in it, returns after one pass over the
//! bytes.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    Email,
    Phone,
    CardNumber,
    Ipv4,
    Ipv6,
    Iban,
    Jwt,
    Secret,
}

impl PiiKind {
    pub const ALL: [PiiKind; 8] =
        [PiiKind::Email, PiiKind::Phone, PiiKind::CardNumber, PiiKind::Ipv4, PiiKind::Ipv6, PiiKind::Iban, PiiKind::Jwt, PiiKind::Secret];

    /// The stable name used in configuration, reports and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CardNumber => "card_number",
            PiiKind::Ipv4 => "ipv4",
            PiiKind::Ipv6 => "ipv6",
            PiiKind::Iban => "iban",
            PiiKind::Jwt => "jwt",
            PiiKind::Secret => "secret",
        }
    }

    pub fn parse(name: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// What a redacted finding is replaced with.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[email]",
            PiiKind::Phone => "[phone]",
            PiiKind::CardNumber => "[card]",
            PiiKind::Ipv4 | PiiKind::Ipv6 => "[ip]",
            PiiKind::Iban => "[iban]",
            PiiKind::Jwt => "[jwt]",
            PiiKind::Secret => "[secret]",
        }
    }
}

/// One finding: `text[start..end]` is personal data of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

/// Every finding in `text`, in order, none overlapping.
pub fn scan(text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    scan_into(text, &mut findings);
    findings
}

/// The same, appending to `findings` (cleared first).
pub fn scan_into(text: &str, findings: &mut Vec<Finding>) {
    findings.clear();
    let bytes = text.as_bytes();
    // Shortest finding: "a@b.co" (6) or "1.2.3.4" (7); most property values
    // are shorter than that or hold none of the bytes a finding needs.
    if bytes.len() < 6 {
        return;
    }
    let mut has_at = false;
    let mut n_digits = 0usize;
    let mut has_colon = false;
    let mut has_upper = false;
    for &b in bytes {
        has_at |= b == b'@';
        n_digits += usize::from(b.is_ascii_digit());
        has_colon |= b == b':';
        has_upper |= b.is_ascii_uppercase();
    }
    // Detectors in priority order: a later one may not claim bytes an
    // earlier one found (the digits of a JWT are not a phone number).
    scan_tokens(bytes, findings);
    if has_at {
        scan_emails(bytes, findings);
    }
    if has_upper && n_digits >= 2 {
        scan_ibans(bytes, findings);
    }
    if has_colon {
        scan_ipv6(text, findings);
    }
    if n_digits >= 4 {
        scan_digit_runs(bytes, findings);
    }
    findings.sort_by_key(|f| f.start);
}

/// `text` with every finding replaced by its placeholder; borrowed when
/// nothing was found.
pub fn redact(text: &str) -> Cow<'_, str> {
    let findings = scan(text);
    if findings.is_empty() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(replace_findings(text, &findings, |f| f.kind.placeholder().to_owned()))
}

/// `text` with each finding replaced by what `replacement` makes of it.
pub fn replace_findings(text: &str, findings: &[Finding], mut replacement: impl FnMut(&Finding) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for finding in findings {
        out.push_str(&text[at..finding.start]);
        out.push_str(&replacement(finding));
        at = finding.end;
    }
    out.push_str(&text[at..]);
    out
}

fn overlaps(findings: &[Finding], start: usize, end: usize) -> bool {
    findings.iter().any(|f| f.start < end && start < f.end)
}

fn push(findings: &mut Vec<Finding>, kind: PiiKind, start: usize, end: usize) {
    if !overlaps(findings, start, end) {
        findings.push(Finding { kind, start, end });
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Secret prefixes (GitHub, Stripe, AWS, Slack, OpenAI, Google, GitLab, npm,
/// and Hearth's own keys) and the shortest body that makes each a secret.
const SECRET_PREFIXES: &[(&str, usize)] = &[
    ("sk_live_", 16),
    ("sk_test_", 16),
    ("rk_live_", 16),
    ("rk_test_", 16),
    ("whsec_", 16),
    ("ghp_", 30),
    ("gho_", 30),
    ("ghu_", 30),
    ("ghs_", 30),
    ("ghr_", 30),
    ("github_pat_", 30),
    ("glpat-", 20),
    ("xoxb-", 20),
    ("xoxp-", 20),
    ("xoxa-", 20),
    ("sk-proj-", 20),
    ("sk-ant-", 20),
    ("sk-", 32),
    ("npm_", 30),
    ("hth_", 22),
    ("AIza", 35),
    ("AKIA", 16),
    ("ASIA", 16),
];

/// JWTs and prefixed secrets: both start a word and run over base64url.
fn scan_tokens(bytes: &[u8], findings: &mut Vec<Finding>) {
    let mut i = 0;
    while i < bytes.len() {
        if !is_word(bytes[i]) || (i > 0 && is_word(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        if rest.starts_with(b"eyJ") {
            if let Some(end) = jwt_end(bytes, i) {
                push(findings, PiiKind::Jwt, i, end);
                i = end;
                continue;
            }
        }
        if let Some(end) = secret_end(bytes, i) {
            push(findings, PiiKind::Secret, i, end);
            i = end;
            continue;
        }
        i += 1;
    }
}

fn jwt_end(bytes: &[u8], start: usize) -> Option<usize> {
    // header.payload.signature, header and payload JSON objects ("eyJ" is
    // base64 of `{"`), the signature possibly empty (alg "none").
    let mut at = start;
    let mut segment_lengths = [0usize; 3];
    for (index, length) in segment_lengths.iter_mut().enumerate() {
        let from = at;
        while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_' || bytes[at] == b'-') {
            at += 1;
        }
        *length = at - from;
        if index < 2 {
            if at >= bytes.len() || bytes[at] != b'.' {
                return None;
            }
            at += 1;
        }
    }
    let payload_start = start + segment_lengths[0] + 1;
    let ok = segment_lengths[0] >= 10 && segment_lengths[1] >= 10 && bytes[payload_start..].starts_with(b"eyJ");
    (ok && (at >= bytes.len() || !is_base64url(bytes[at]))).then_some(at)
}

fn secret_end(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = &bytes[start..];
    let (prefix, body_min) = SECRET_PREFIXES.iter().find(|(prefix, _)| rest.starts_with(prefix.as_bytes()))?;
    let body_start = start + prefix.len();
    let aws = prefix.starts_with("AKIA") || prefix.starts_with("ASIA");
    let mut at = body_start;
    while at < bytes.len() && (if aws { bytes[at].is_ascii_uppercase() || bytes[at].is_ascii_digit() } else { is_base64url(bytes[at]) }) {
        at += 1;
    }
    let body = &bytes[body_start..at];
    // A secret body is random: it mixes digits and letters. This keeps
    // "sk-" words and long identifiers made of words out.
    let has_digit = body.iter().any(u8::is_ascii_digit);
    let has_alpha = body.iter().any(u8::is_ascii_alphabetic);
    let boundary = at >= bytes.len() || !bytes[at].is_ascii_alphanumeric();
    let length_ok = if aws { body.len() == *body_min } else { body.len() >= *body_min };
    (length_ok && has_digit && has_alpha && boundary).then_some(at)
}

fn is_local_part(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

fn scan_emails(bytes: &[u8], findings: &mut Vec<Finding>) {
    for (at, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'@') {
        let mut start = at;
        while start > 0 && is_local_part(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && matches!(bytes[start], b'.' | b'\'') {
            start += 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start == at || end <= at + 1 {
            continue;
        }
        let domain = &bytes[at + 1..end];
        let Some(last_dot) = domain.iter().rposition(|b| *b == b'.') else { continue };
        let tld = &domain[last_dot + 1..];
        let labels_ok = domain.split(|b| *b == b'.').all(|label| !label.is_empty() && label[0] != b'-');
        if tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && labels_ok {
            push(findings, PiiKind::Email, start, end);
        }
    }
}

/// IBAN lengths by country (ISO 13616 registry, the common ones).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20), (b"BE", 16), (b"BG", 22), (b"BH", 22), (b"BR", 29),
    (b"CH", 21), (b"CR", 22), (b"CY", 28), (b"CZ", 24), (b"DE", 22), (b"DK", 18), (b"DO", 28), (b"EE", 20), (b"EG", 29), (b"ES", 24),
    (b"FI", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22), (b"GE", 22), (b"GI", 23), (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HR", 21),
    (b"HU", 28), (b"IE", 22), (b"IL", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30), (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LI", 21),
    (b"LT", 20), (b"LU", 20), (b"LV", 21), (b"MC", 27), (b"MD", 24), (b"ME", 22), (b"MK", 19), (b"MR", 27), (b"MT", 31), (b"MU", 30),
    (b"NL", 18), (b"NO", 15), (b"PK", 24), (b"PL", 28), (b"PS", 29), (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"SA", 24),
    (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27), (b"TN", 24), (b"TR", 26), (b"UA", 29), (b"VG", 24), (b"XK", 20),
];

fn scan_ibans(bytes: &[u8], findings: &mut Vec<Finding>) {
    let mut i = 0;
    while i + 15 <= bytes.len() {
        let starts = bytes[i].is_ascii_uppercase()
            && bytes[i + 1].is_ascii_uppercase()
            && bytes[i + 2].is_ascii_digit()
            && bytes[i + 3].is_ascii_digit()
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let Some(&(_, length)) = IBAN_LENGTHS.iter().find(|(code, _)| code[..] == bytes[i..i + 2]) else {
            i += 1;
            continue;
        };
        // Electronic form (no spaces) or print form (groups of four).
        let mut compact = Vec::with_capacity(34);
        let mut at = i;
        while at < bytes.len() && compact.len() < length {
            let b = bytes[at];
            if b.is_ascii_uppercase() || b.is_ascii_digit() {
                compact.push(b);
                at += 1;
            } else if b == b' ' && compact.len() % 4 == 0 && at + 1 < bytes.len() && bytes[at + 1].is_ascii_alphanumeric() {
                at += 1;
            } else {
                break;
            }
        }
        let boundary = at >= bytes.len() || !bytes[at].is_ascii_alphanumeric();
        if compact.len() == length && boundary && iban_checksum_ok(&compact) {
            push(findings, PiiKind::Iban, i, at);
            i = at;
        } else {
            i += 1;
        }
    }
}

fn iban_checksum_ok(compact: &[u8]) -> bool {
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for &b in rearranged {
        let value = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
}

fn scan_ipv6(text: &str, findings: &mut Vec<Finding>) {
    let bytes = text.as_bytes();
    let is_v6 = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    let mut i = 0;
    while i < bytes.len() {
        if !is_v6(bytes[i]) || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && is_v6(bytes[end]) {
            end += 1;
        }
        // A zone ("%eth0") or a following word character ends nothing.
        let mut token_end = end;
        while token_end > i && bytes[token_end - 1] == b'.' {
            token_end -= 1;
        }
        let token = &text[i..token_end];
        let n_colons = token.bytes().filter(|b| *b == b':').count();
        let boundary = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if n_colons >= 2 && boundary {
            if let Ok(address) = token.parse::<Ipv6Addr>() {
                if !address.is_unspecified() && !address.is_loopback() {
                    push(findings, PiiKind::Ipv6, i, token_end);
                }
            }
        }
        i = end.max(i + 1);
    }
}

/// Runs of digits and the separators a phone number or card number may
/// hold; each run is classified as one thing or nothing.
fn scan_digit_runs(bytes: &[u8], findings: &mut Vec<Finding>) {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let starts = b.is_ascii_digit() || ((b == b'+' || b == b'(') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        let after_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'.' | b'_' | b'/' | b':' | b'-' | b'#'));
        if !starts || after_word {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        let mut open = b == b'(';
        while end < bytes.len() {
            let c = bytes[end];
            let next_digit = bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            let next_opens = bytes.get(end + 1) == Some(&b'(');
            let extends = match c {
                b'0'..=b'9' => true,
                b' ' | b'-' | b'.' => next_digit || (next_opens && !open),
                b'(' => !open && next_digit,
                b')' => open,
                _ => false,
            };
            if !extends {
                break;
            }
            open = match c {
                b'(' => true,
                b')' => false,
                _ => open,
            };
            end += 1;
        }
        while end > i && !bytes[end - 1].is_ascii_digit() && bytes[end - 1] != b')' {
            end -= 1;
        }
        let boundary = end >= bytes.len() || !(bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'_' | b'/' | b':' | b'@'));
        // An opening parenthesis that closes nothing is punctuation.
        let start = if bytes[i] == b'(' && !bytes[i..end].contains(&b')') { i + 1 } else { i };
        let end = if bytes[end - 1] == b')' && !bytes[start..end].contains(&b'(') { end - 1 } else { end };
        if boundary && !overlaps(findings, start, end) {
            if let Some((kind, from, to)) = classify_with_neighbours(bytes, start, end) {
                findings.push(Finding { kind, start: from, end: to });
            }
        }
        i = end.max(i + 1);
        // Skip the rest of a word the run ran into.
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
    }
}

/// The run as a whole, or else its longest part between spaces: a
/// number written next to another ("order 42 4111 1111 1111 1111") runs
/// into it.
fn classify_with_neighbours(bytes: &[u8], start: usize, end: usize) -> Option<(PiiKind, usize, usize)> {
    if let Some(kind) = classify_digit_run(&bytes[start..end]) {
        return Some((kind, start, end));
    }
    // "(203.0.113.7)": the parentheses are punctuation.
    if end - start > 2 && bytes[start] == b'(' && bytes[end - 1] == b')' && !bytes[start + 1..end - 1].iter().any(|b| matches!(b, b'(' | b')')) {
        return classify_with_neighbours(bytes, start + 1, end - 1);
    }
    // Parts start after a space or at an opening parenthesis, and end
    // before either.
    let cuts: Vec<usize> = (start + 1..end).filter(|at| matches!(bytes[*at], b' ' | b'(')).collect();
    if cuts.is_empty() || cuts.len() > 12 {
        return None;
    }
    let starts = std::iter::once(start).chain(cuts.iter().map(|at| if bytes[*at] == b' ' { at + 1 } else { *at }));
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for from in starts {
        for to in cuts.iter().copied().chain(std::iter::once(end)).filter(|to| *to > from) {
            if (from, to) != (start, end) {
                spans.push((from, to));
            }
        }
    }
    spans.sort_by_key(|(from, to)| (std::cmp::Reverse(to - from), *from));
    spans.into_iter().find_map(|(from, to)| {
        let (from, to) = trim_parentheses(bytes, from, to);
        let run = &bytes[from..to];
        let clean_edges = run.first().is_some_and(|b| b.is_ascii_digit() || *b == b'+' || *b == b'(') && run.last().is_some_and(|b| b.is_ascii_digit() || *b == b')');
        if !clean_edges {
            return None;
        }
        // A national phone number cut out of a longer run of digit groups
        // is too likely a fragment of something else.
        classify_digit_run(run).filter(|kind| *kind != PiiKind::Phone || matches!(run[0], b'+' | b'(')).map(|kind| (kind, from, to))
    })
}

/// Drops parentheses that close nothing, open nothing, or wrap the whole.
fn trim_parentheses(bytes: &[u8], mut from: usize, mut to: usize) -> (usize, usize) {
    let inner_has = |from: usize, to: usize, b: u8| bytes[from..to].contains(&b);
    if to - from > 2 && bytes[from] == b'(' && bytes[to - 1] == b')' && !inner_has(from + 1, to - 1, b'(') && !inner_has(from + 1, to - 1, b')') {
        return (from + 1, to - 1);
    }
    if to > from && bytes[from] == b'(' && !inner_has(from, to, b')') {
        from += 1;
    }
    if to > from && bytes[to - 1] == b')' && !inner_has(from, to, b'(') {
        to -= 1;
    }
    (from, to)
}

fn classify_digit_run(run: &[u8]) -> Option<PiiKind> {
    let digits: Vec<u8> = run.iter().filter(|b| b.is_ascii_digit()).map(|b| b - b'0').collect();
    let separators: Vec<u8> = run.iter().copied().filter(|b| !b.is_ascii_digit()).collect();
    let groups: Vec<&[u8]> = run.split(|b| !b.is_ascii_digit()).filter(|g| !g.is_empty()).collect();
    // Dotted quads: an IPv4 address, or nothing (a version).
    if separators.iter().all(|b| *b == b'.') && groups.len() == 4 {
        let text = std::str::from_utf8(run).ok()?;
        return text.parse::<Ipv4Addr>().ok().filter(|a| !a.is_loopback() && !a.is_unspecified() && !a.is_broadcast()).map(|_| PiiKind::Ipv4);
    }
    if separators.contains(&b'.') && !separators.iter().all(|b| *b == b'.') {
        return None;
    }
    if is_card(run, &digits, &separators, &groups) {
        return Some(PiiKind::CardNumber);
    }
    if is_phone(run, &digits, &separators, &groups) {
        return Some(PiiKind::Phone);
    }
    None
}

fn luhn_ok(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &d)| {
            let d = u32::from(d);
            if index % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum % 10 == 0
}

/// Issuer prefixes of the card networks (Visa, Mastercard, Amex,
/// Discover, JCB, Diners, UnionPay, Maestro) with their lengths.
fn card_prefix_ok(digits: &[u8]) -> bool {
    let prefix = |n: usize| digits[..n].iter().fold(0u32, |acc, d| acc * 10 + u32::from(*d));
    let length = digits.len();
    match digits[0] {
        4 => matches!(length, 13 | 16 | 19),
        5 => (51..=55).contains(&prefix(2)) && length == 16 || matches!(prefix(2), 50 | 56..=58) && (12..=19).contains(&length),
        2 => (2221..=2720).contains(&prefix(4)) && length == 16,
        3 => matches!(prefix(2), 34 | 37) && length == 15 || (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&length) || matches!(prefix(2), 30 | 36 | 38 | 39) && (14..=19).contains(&length),
        6 => (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3)) || prefix(2) == 62 || prefix(2) == 67) && (16..=19).contains(&length),
        _ => false,
    }
}

fn is_card(run: &[u8], digits: &[u8], separators: &[u8], groups: &[&[u8]]) -> bool {
    if !(13..=19).contains(&digits.len()) || run[0] == b'+' || run[0] == b'(' {
        return false;
    }
    // Printed cards: one kind of separator, groups of 4 (Amex 4-6-5).
    let separator_ok = separators.is_empty() || (separators.iter().all(|b| *b == separators[0]) && matches!(separators[0], b' ' | b'-'));
    let grouping_ok = separators.is_empty() || groups.iter().take(groups.len() - 1).all(|g| g.len() == 4) || groups.iter().map(|g| g.len()).eq([4, 6, 5]);
    separator_ok && grouping_ok && card_prefix_ok(digits) && luhn_ok(digits)
}

fn is_phone(run: &[u8], digits: &[u8], separators: &[u8], groups: &[&[u8]]) -> bool {
    let n_open = run.iter().filter(|b| **b == b'(').count();
    let n_close = run.iter().filter(|b| **b == b')').count();
    if n_open != n_close || n_open > 1 {
        return false;
    }
    if run[0] == b'+' {
        // E.164: up to 15 digits, country code first; at least 8 in all.
        return (8..=15).contains(&digits.len()) && digits[0] != 0;
    }
    // National numbers need a visible grouping: bare digit runs are ids,
    // timestamps or amounts far more often than phone numbers.
    if groups.len() < 2 || !(9..=12).contains(&digits.len()) {
        return false;
    }
    // Dates ("2024-01-15", "15.01.2024") have at most 8 digits; a four
    // digit group first is a year or a card fragment, not an area code.
    if groups[0].len() == 4 && run[0] != b'0' {
        return false;
    }
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let north_american = lengths == [3, 3, 4] && digits[0] != 0 && digits[0] != 1;
    let north_american_with_one = lengths == [1, 3, 3, 4] && digits[0] == 1;
    let trunk_prefixed = digits[0] == 0 && digits.get(1) != Some(&0) && groups[0].len() <= 5 && groups.iter().skip(1).all(|g| g.len() >= 2);
    let dotted = separators.contains(&b'.');
    if dotted {
        return north_american;
    }
    north_american || north_american_with_one || trunk_prefixed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        scan(text).into_iter().map(|f| (f.kind, &text[f.start..f.end])).collect()
    }

    #[test]
    fn each_kind_is_found_with_its_exact_span() {
        assert_eq!(kinds("mail ada.lovelace+x@example.co.uk now"), [(PiiKind::Email, "ada.lovelace+x@example.co.uk")]);
        assert_eq!(kinds("call +44 20 7946 0958."), [(PiiKind::Phone, "+44 20 7946 0958")]);
        assert_eq!(kinds("card 4111 1111 1111 1111"), [(PiiKind::CardNumber, "4111 1111 1111 1111")]);
        assert_eq!(kinds("from 203.0.113.7"), [(PiiKind::Ipv4, "203.0.113.7")]);
        assert_eq!(kinds("from 2001:db8::8a2e:370:7334 ok"), [(PiiKind::Ipv6, "2001:db8::8a2e:370:7334")]);
        assert_eq!(kinds("iban DE89 3704 0044 0532 0130 00"), [(PiiKind::Iban, "DE89 3704 0044 0532 0130 00")]);
        assert_eq!(kinds("key=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"), [(PiiKind::Secret, "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8")]);
    }

    #[test]
    fn redaction_keeps_the_rest_of_the_text() {
        assert_eq!(redact("user bob@example.org paid with 5555555555554444"), "user [email] paid with [card]");
        assert!(matches!(redact("nothing here at all"), Cow::Borrowed(_)));
    }

    #[test]
    fn checksums_decide() {
        assert_eq!(scan("4111 1111 1111 1112"), [], "Luhn fails");
        assert_eq!(scan("DE89 3704 0044 0532 0130 01"), [], "mod 97 fails");
    }
}
