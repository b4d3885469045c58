//! Applying a [`Policy`] to an event or a profile update, in place, before
//! it is written: the one place where raw personal values are turned into
//! tokens, ciphertexts, coarse values or nothing.
//!
//! Pure but for the [`Sealer`], which the caller implements over its key
//! store: this module decides what is encrypted, the sealer holds the keys.
//! Applying twice gives the same result as applying once (tokens, pseudonyms
//! and coarse values are left as they are), which is what lets
//! `hearth privacy apply --rewrite` re-run a policy over stored data.

use crate::crypto::{self, Key};
use crate::pii::{self, Finding, PiiKind};
use crate::policy::{Coarsening, PiiAction, Policy, Rule, is_server_derived};
use events::{Event, GroupUpdate, ProfileOp, ProfileUpdate, Properties};
use serde_json::Value;
use std::collections::BTreeMap;

/// Encrypts a personal value under its subject's own key and keeps the
/// ciphertext where `token` finds it again.
pub trait Sealer {
    fn seal(&mut self, subject: &str, token: &str, plaintext_json: &str) -> Result<(), SealError>;
}

#[derive(Debug, thiserror::Error)]
#[error("could not encrypt a personal field: {0}")]
pub struct SealError(pub String);

/// The per-project keys and the sealer that applying needs.
pub struct Protection<'a> {
    /// Keyed hash for `hash` and `encrypt` tokens.
    pub hash_key: &'a Key,
    /// Keyed hash for pseudonymous ids.
    pub pseudonym_key: &'a Key,
    pub sealer: &'a mut dyn Sealer,
}

/// What a counted finding or drop was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Observation {
    Pii(PiiKind),
    /// A whole event refused by the policy.
    BlockedEvent,
    /// A property dropped because allowlist mode did not declare it.
    BlockedProperty,
}

impl Observation {
    pub fn as_str(self) -> &'static str {
        match self {
            Observation::Pii(kind) => kind.as_str(),
            Observation::BlockedEvent => "blocked_event",
            Observation::BlockedProperty => "blocked_property",
        }
    }
}

/// Counts per (event name, property, observation): what the findings
/// report shows. Never holds a value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub counts: BTreeMap<(String, String, Observation), u64>,
}

impl Tally {
    fn add(&mut self, event: &str, property: &str, observation: Observation) {
        *self.counts.entry((event.to_owned(), property.to_owned(), observation)).or_insert(0) += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn merge(&mut self, other: Tally) {
        for (key, n) in other.counts {
            *self.counts.entry(key).or_insert(0) += n;
        }
    }
}

/// Properties that name identities: never rewritten by property rules (the
/// pseudonymise switch handles them), never scanned.
const IDENTITY_KEYS: &[&str] = &["$device_id", "$user_id", "$anon_id", "$anon_distinct_id", "$identified_id", "alias", "$distinct_ids", "$insert_id", "distinct_id", "mp_lib", "$lib_version"];

/// The event label profile findings are counted under.
pub const PROFILE_LABEL: &str = "$profile";
pub const GROUP_LABEL: &str = "$group";

/// Whether the event is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Drop,
}

/// Applies the policy to one event. A dropped event must not be written.
pub fn apply_to_event(policy: &Policy, event: &mut Event, protection: &mut Protection<'_>, tally: &mut Tally) -> Result<Verdict, SealError> {
    if !policy.accepts_event(&event.name) {
        tally.add(&event.name, "", Observation::BlockedEvent);
        return Ok(Verdict::Drop);
    }
    if policy.pseudonymise_ids {
        event.distinct_id = pseudonymise(protection.pseudonym_key, &event.distinct_id);
        pseudonymise_identity_properties(protection.pseudonym_key, &mut event.properties);
    }
    let subject = event.distinct_id.clone();
    apply_to_properties(policy, Some(&event.name), &event.name, &subject, &mut event.properties, protection, tally, &[])?;
    Ok(Verdict::Keep)
}

/// Applies the policy to a user profile update.
pub fn apply_to_profile(policy: &Policy, update: &mut ProfileUpdate, protection: &mut Protection<'_>, tally: &mut Tally) -> Result<(), SealError> {
    if policy.pseudonymise_ids {
        update.distinct_id = pseudonymise(protection.pseudonym_key, &update.distinct_id);
    }
    let subject = update.distinct_id.clone();
    apply_to_op(policy, PROFILE_LABEL, &subject, &mut update.op, protection, tally, &[])
}

/// Applies the policy to a group profile update; the group's `name` stays
/// readable so that group reports can show it.
pub fn apply_to_group(policy: &Policy, update: &mut GroupUpdate, protection: &mut Protection<'_>, tally: &mut Tally) -> Result<(), SealError> {
    let subject = group_subject(&update.group_key, &update.group_id);
    apply_to_op(policy, GROUP_LABEL, &subject, &mut update.op, protection, tally, &["name", "$name"])
}

/// The encryption subject of a group profile.
pub fn group_subject(group_key: &str, group_id: &str) -> String {
    format!("$group:{group_key}:{group_id}")
}

/// A distinct id as stored: its pseudonym when the policy says so. The
/// `$device:` prefix of an anonymous id stays, so that it still meets the
/// identity link made from the device id's own pseudonym.
pub fn pseudonymise(key: &Key, id: &str) -> String {
    if let Some(device) = id.strip_prefix("$device:") {
        return format!("$device:{}", pseudonymise(key, device));
    }
    if id.starts_with("pid:") { id.to_owned() } else { crypto::pseudonym(key, id) }
}

fn pseudonymise_identity_properties(key: &Key, properties: &mut Properties) {
    for name in ["$device_id", "$user_id", "$anon_id", "$anon_distinct_id", "$identified_id", "alias"] {
        if let Some(value) = properties.get_mut(name) {
            let text = match value {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            *value = Value::String(pseudonymise(key, &text));
        }
    }
    if let Some(Value::Array(ids)) = properties.get_mut("$distinct_ids") {
        for id in ids.iter_mut() {
            if let Some(text) = id.as_str() {
                *id = Value::String(pseudonymise(key, text));
            }
        }
    }
}

fn apply_to_op(policy: &Policy, label: &str, subject: &str, op: &mut ProfileOp, protection: &mut Protection<'_>, tally: &mut Tally, exempt: &[&str]) -> Result<(), SealError> {
    match op {
        ProfileOp::Set(p) | ProfileOp::SetOnce(p) => apply_to_properties(policy, None, label, subject, p, protection, tally, exempt),
        ProfileOp::Add(p) => {
            // Increments of a hashed or encrypted field make no sense: dropped.
            p.retain(|key, _| exempt.contains(&key.as_str()) || !matches!(policy.rule_for(None, key), Rule::Hash | Rule::Encrypt | Rule::Drop));
            Ok(())
        }
        ProfileOp::Append(p) | ProfileOp::Union(p) | ProfileOp::Remove(p) => apply_to_properties(policy, None, label, subject, p, protection, tally, exempt),
        ProfileOp::Unset(_) | ProfileOp::Delete => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_to_properties(
    policy: &Policy,
    event: Option<&str>,
    label: &str,
    subject: &str,
    properties: &mut Properties,
    protection: &mut Protection<'_>,
    tally: &mut Tally,
    exempt: &[&str],
) -> Result<(), SealError> {
    let mut dropped: Vec<String> = Vec::new();
    let mut findings = Vec::new();
    let rules = policy.property_rules(event);
    let scans_pii = policy.scans_pii();
    for (key, value) in properties.iter_mut() {
        if IDENTITY_KEYS.contains(&key.as_str()) || exempt.contains(&key.as_str()) {
            continue;
        }
        let rule = rules.rule_for(key);
        let scan_after = match rule {
            Rule::Keep => true,
            Rule::Drop => {
                if policy.schema == crate::policy::SchemaMode::Allowlist && !rules.is_declared(key) {
                    tally.add(label, key, Observation::BlockedProperty);
                }
                dropped.push(key.clone());
                false
            }
            Rule::Hash => {
                map_leaves(value, &mut |leaf| hash_leaf(protection.hash_key, leaf));
                false
            }
            Rule::Encrypt => {
                encrypt_value(value, subject, protection)?;
                false
            }
            Rule::Coarsen(to) => {
                coarsen(value, *to);
                true
            }
            Rule::Buckets(bounds) => {
                map_leaves(value, &mut |leaf| bucket_leaf(bounds, leaf));
                false
            }
            Rule::Truncate(length) => {
                map_leaves(value, &mut |leaf| truncate_leaf(*length, leaf));
                true
            }
        };
        if scan_after && scans_pii && !is_server_derived(key) {
            let mut drop_property = false;
            scan_value(policy, protection.hash_key, value, &mut findings, &mut |kind| {
                tally.add(label, key, Observation::Pii(kind));
                drop_property |= policy.pii_action(kind) == PiiAction::Drop;
            });
            if drop_property {
                dropped.push(key.clone());
            }
        }
    }
    for key in dropped {
        properties.remove(&key);
    }
    Ok(())
}

/// Applies `f` to every scalar in a value (arrays and objects recursively).
fn map_leaves(value: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| map_leaves(item, f)),
        Value::Object(map) => map.values_mut().for_each(|item| map_leaves(item, f)),
        leaf => f(leaf),
    }
}

fn leaf_text(leaf: &Value) -> Option<String> {
    match leaf {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn hash_leaf(key: &Key, leaf: &mut Value) {
    if let Some(text) = leaf_text(leaf) {
        if !crypto::is_value_token(&text) {
            *leaf = Value::String(crypto::value_token(key, &text));
        }
    }
}

fn encrypt_value(value: &mut Value, subject: &str, protection: &mut Protection<'_>) -> Result<(), SealError> {
    let mut error = None;
    map_leaves(value, &mut |leaf| {
        let Some(text) = leaf_text(leaf) else { return };
        if crypto::is_value_token(&text) || error.is_some() {
            return;
        }
        let token = crypto::value_token(protection.hash_key, &text);
        let plaintext = serde_json::to_string(leaf).unwrap_or_default();
        if let Err(e) = protection.sealer.seal(subject, &token, &plaintext) {
            error = Some(e);
            return;
        }
        *leaf = Value::String(token);
    });
    error.map_or(Ok(()), Err)
}

fn bucket_leaf(bounds: &[f64], leaf: &mut Value) {
    let Some(number) = leaf.as_f64() else { return };
    // Values below the first bound count in the first bucket.
    let bound = bounds.iter().rev().find(|b| **b <= number).copied().unwrap_or(bounds[0]);
    *leaf = serde_json::Number::from_f64(bound).map_or(Value::Null, |n| if bound.fract() == 0.0 && bound.abs() < 9.0e15 { Value::from(bound as i64) } else { Value::Number(n) });
}

fn truncate_leaf(length: usize, leaf: &mut Value) {
    if let Value::String(text) = leaf {
        if let Some((cut, _)) = text.char_indices().nth(length) {
            text.truncate(cut);
        }
    }
}

fn coarsen(value: &mut Value, to: Coarsening) {
    map_leaves(value, &mut |leaf| match to {
        Coarsening::Hour => coarsen_time(leaf),
        Coarsening::UrlPath | Coarsening::UrlOrigin | Coarsening::Domain => {
            if let Value::String(text) = leaf {
                let coarse = coarsen_url(text, to);
                if coarse != *text {
                    *text = coarse;
                }
            }
        }
    });
}

const MS_PER_HOUR: i64 = 3_600_000;

fn coarsen_time(leaf: &mut Value) {
    match leaf {
        Value::Number(n) => {
            if let Some(t) = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)) {
                // Seconds or milliseconds, told apart as Mixpanel does.
                let hour = if t.abs() >= 100_000_000_000 { t.div_euclid(MS_PER_HOUR) * MS_PER_HOUR } else { t.div_euclid(3600) * 3600 };
                *leaf = Value::from(hour);
            }
        }
        Value::String(text) => {
            let b = text.as_bytes();
            let iso_hour = b.len() >= 13 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') && b[..13].iter().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_digit());
            if iso_hour {
                let zone = if text.ends_with('Z') { "Z" } else { "" };
                *text = format!("{}:00:00{zone}", &text[..13]);
            }
        }
        _ => {}
    }
}

/// A URL cut to what `to` keeps. Text that is not a URL loses its query
/// string and fragment.
pub fn coarsen_url(url: &str, to: Coarsening) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        if url.starts_with('$') {
            return url.to_owned(); // "$direct"
        }
        return url.split(['?', '#']).next().unwrap_or_default().to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match to {
        Coarsening::Domain => host.to_lowercase(),
        Coarsening::UrlOrigin => format!("{scheme}://{host}"),
        _ => {
            let after = &rest[authority_end..];
            let path_end = after.find(['?', '#']).unwrap_or(after.len());
            let path = &after[..path_end];
            let campaign: Vec<&str> = after[path_end..]
                .strip_prefix('?')
                .map(|query| query.split('#').next().unwrap_or_default().split('&').filter(|pair| pair.starts_with("utm_")).collect())
                .unwrap_or_default();
            if campaign.is_empty() { format!("{scheme}://{host}{path}") } else { format!("{scheme}://{host}{path}?{}", campaign.join("&")) }
        }
    }
}

/// Scans every string in a value; replaces findings per the policy and
/// reports each one's kind.
fn scan_value(policy: &Policy, hash_key: &Key, value: &mut Value, findings: &mut Vec<Finding>, found: &mut dyn FnMut(PiiKind)) {
    map_leaves(value, &mut |leaf| {
        let Value::String(text) = leaf else { return };
        pii::scan_into(text, findings);
        if findings.is_empty() {
            return;
        }
        let mut acted: Vec<Finding> = Vec::with_capacity(findings.len());
        for finding in findings.iter() {
            let action = policy.pii_action(finding.kind);
            if action != PiiAction::Off {
                found(finding.kind);
                acted.push(*finding);
            }
        }
        if acted.is_empty() {
            return;
        }
        let replaced = pii::replace_findings(text, &acted, |finding| match policy.pii_action(finding.kind) {
            PiiAction::Hash => crypto::value_token(hash_key, &text[finding.start..finding.end]),
            _ => finding.kind.placeholder().to_owned(),
        });
        *text = replaced;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyDocument;
    use serde_json::json;

    #[derive(Default)]
    struct Recorded(Vec<(String, String, String)>);

    impl Sealer for Recorded {
        fn seal(&mut self, subject: &str, token: &str, plaintext_json: &str) -> Result<(), SealError> {
            self.0.push((subject.to_owned(), token.to_owned(), plaintext_json.to_owned()));
            Ok(())
        }
    }

    fn event(properties: Value) -> Event {
        Event { name: "Signed Up".into(), distinct_id: "u1".into(), time_ms: 0, insert_id: "i".into(), properties: properties.as_object().unwrap().clone() }
    }

    fn run(policy: &Policy, event: &mut Event) -> (Verdict, Recorded, Tally) {
        let hash_key = Key::from_bytes(&[7; 32]).unwrap();
        let pseudonym_key = Key::from_bytes(&[9; 32]).unwrap();
        let mut sealer = Recorded::default();
        let mut tally = Tally::default();
        let verdict = {
            let mut protection = Protection { hash_key: &hash_key, pseudonym_key: &pseudonym_key, sealer: &mut sealer };
            apply_to_event(policy, event, &mut protection, &mut tally).unwrap()
        };
        (verdict, sealer, tally)
    }

    #[test]
    fn defaults_encrypt_names_coarsen_urls_and_redact_free_text() {
        let mut e = event(json!({
            "$email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro",
            "$current_url": "https://app.test/settings?email=ada@example.com&utm_source=news#x",
            "$referrer": "https://user:pw@www.Google.com/search?q=ada",
            "comment": "call me on +44 20 7946 0958", "$device_id": "dev-1", "$browser": "Chrome"
        }));
        let (verdict, sealed, tally) = run(&Policy::default(), &mut e);
        assert_eq!(verdict, Verdict::Keep);
        let p = &e.properties;
        assert!(crypto::is_value_token(p["$email"].as_str().unwrap()));
        assert!(crypto::is_value_token(p["name"].as_str().unwrap()));
        assert_eq!(p["plan"], "pro");
        assert_eq!(p["$current_url"], "https://app.test/settings?utm_source=news");
        assert_eq!(p["$referrer"], "www.google.com");
        assert_eq!(p["comment"], "call me on [phone]");
        assert_eq!(p["$device_id"], "dev-1");
        assert_eq!(sealed.0.len(), 2);
        assert!(sealed.0.iter().any(|(subject, token, plain)| subject == "u1" && token == p["$email"].as_str().unwrap() && plain == "\"ada@example.com\""));
        assert_eq!(tally.counts.get(&("Signed Up".into(), "comment".into(), Observation::Pii(PiiKind::Phone))), Some(&1));
        let text = serde_json::to_string(&e).unwrap();
        for planted in ["ada@example.com", "Lovelace", "7946", "pw@"] {
            assert!(!text.contains(planted), "{planted} survived: {text}");
        }
        // Applying again changes nothing and seals nothing.
        let before = e.clone();
        let (_, sealed_again, _) = run(&Policy::default(), &mut e);
        assert_eq!(e, before);
        assert!(sealed_again.0.is_empty());
    }

    #[test]
    fn pseudonymised_ids_are_stable_and_cover_identity_links() {
        let document = PolicyDocument { pseudonymise_ids: true, ..PolicyDocument::default() };
        let policy = Policy::check(document).unwrap();
        let mut a = event(json!({"$device_id": "dev-1", "$user_id": "u1", "$distinct_ids": ["u1", "dev-1"]}));
        let mut b = event(json!({}));
        run(&policy, &mut a);
        run(&policy, &mut b);
        assert!(a.distinct_id.starts_with("pid:"));
        assert_eq!(a.distinct_id, b.distinct_id);
        assert_eq!(a.properties["$user_id"], json!(a.distinct_id));
        assert_eq!(a.properties["$distinct_ids"][0], json!(a.distinct_id));
        assert_ne!(a.properties["$device_id"], "dev-1");
        let again = a.distinct_id.clone();
        run(&policy, &mut a);
        assert_eq!(a.distinct_id, again, "pseudonymising twice is a no-op");
    }

    #[test]
    fn allowlist_drops_and_counts_what_is_not_declared() {
        let text = "schema = \"allowlist\"\npii_scan = \"off\"\n[events.\"Signed Up\".properties]\nplan = \"keep\"\namount = { buckets = [0, 10, 100] }\nat = { coarsen = \"hour\" }\nnote = { truncate = 3 }\n";
        let policy = Policy::check(PolicyDocument::from_toml(text).unwrap()).unwrap();
        let mut e = event(json!({"plan": "pro", "amount": 42.5, "secret_field": "x", "$os": "Linux", "at": 1_700_000_123_456i64, "note": "héllo"}));
        let (verdict, _, tally) = run(&policy, &mut e);
        assert_eq!(verdict, Verdict::Keep);
        assert_eq!(e.properties, json!({"plan": "pro", "amount": 10, "$os": "Linux", "at": 1_699_999_200_000i64, "note": "hél"}).as_object().unwrap().clone());
        assert_eq!(tally.counts.get(&("Signed Up".into(), "secret_field".into(), Observation::BlockedProperty)), Some(&1));
        let mut other = event(json!({}));
        other.name = "Page Viewed".into();
        let (verdict, _, tally) = run(&policy, &mut other);
        assert_eq!(verdict, Verdict::Drop);
        assert_eq!(tally.counts.get(&("Page Viewed".into(), String::new(), Observation::BlockedEvent)), Some(&1));
    }

    #[test]
    fn pii_actions_hash_or_drop_per_kind() {
        let text = "pii_scan = \"hash\"\n[pii_actions]\ncard_number = \"drop\"\n";
        let policy = Policy::check(PolicyDocument::from_toml(text).unwrap()).unwrap();
        let mut e = event(json!({"note": "write to bob@example.org", "payment": "4111 1111 1111 1111", "tags": ["ok", "ip 203.0.113.5"]}));
        run(&policy, &mut e);
        let note = e.properties["note"].as_str().unwrap();
        assert!(note.starts_with("write to pii:"), "{note}");
        assert!(!e.properties.contains_key("payment"));
        assert!(e.properties["tags"][1].as_str().unwrap().starts_with("ip pii:"));
    }

    #[test]
    fn url_coarsening() {
        assert_eq!(coarsen_url("https://a.test/p/q?x=1&utm_medium=m#f", Coarsening::UrlPath), "https://a.test/p/q?utm_medium=m");
        assert_eq!(coarsen_url("https://a.test/p?x=1", Coarsening::UrlOrigin), "https://a.test");
        assert_eq!(coarsen_url("$direct", Coarsening::Domain), "$direct");
        assert_eq!(coarsen_url("/local?token=abc", Coarsening::UrlPath), "/local");
    }
}
