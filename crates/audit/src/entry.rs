//! One audit entry and the canonical bytes its hash covers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who acted: the credential (never its secret) and, when known, the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// "project_secret", "api_key", "session", "cli", "system".
    pub kind: String,
    /// The credential's public name: a project id, a key's prefix and last
    /// four characters, a session's short id, the operating system user.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Actor {
    pub fn new(kind: &str, id: impl Into<String>) -> Actor {
        Actor { kind: kind.to_owned(), id: id.into(), user: None }
    }

    /// `kind:id`, what `audit list --actor` matches.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

/// The people whose rows a read returned: store user keys of one project,
/// as a portable roaring bitmap in base64, with the count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSet {
    pub count: u64,
    pub bitmap: String,
}

impl UserSet {
    pub fn from_keys(keys: impl IntoIterator<Item = u32>) -> UserSet {
        let bitmap: roaring::RoaringBitmap = keys.into_iter().collect();
        let mut bytes = Vec::with_capacity(bitmap.serialized_size());
        bitmap.serialize_into(&mut bytes).expect("writing to a Vec cannot fail");
        UserSet { count: bitmap.len(), bitmap: STANDARD.encode(bytes) }
    }

    /// The user keys back.
    pub fn keys(&self) -> Option<roaring::RoaringBitmap> {
        let bytes = STANDARD.decode(&self.bitmap).ok()?;
        roaring::RoaringBitmap::deserialize_from(&bytes[..]).ok()
    }
}

/// What a caller records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEntry {
    pub actor: Actor,
    /// "query", "export", "profile.read", "gdpr.deletion", "policy.set", ...
    pub action: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<u32>,
    /// ISO country of the source address, never the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The source address itself: only when the organisation opted in
    /// (`hearth admin audit-addresses --on`), never by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// What was asked and what it touched (a report spec, row counts, fields).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UserSet>,
}

impl NewEntry {
    pub fn new(actor: Actor, action: &str, outcome: Outcome) -> NewEntry {
        NewEntry { actor, action: action.to_owned(), outcome, project: None, country: None, address: None, detail: Value::Null, users: None }
    }

    pub fn project(mut self, project: u32) -> NewEntry {
        self.project = Some(project);
        self
    }

    pub fn country(mut self, country: Option<String>) -> NewEntry {
        self.country = country;
        self
    }

    pub fn address(mut self, address: Option<String>) -> NewEntry {
        self.address = address;
        self
    }

    pub fn detail(mut self, detail: Value) -> NewEntry {
        self.detail = detail;
        self
    }

    pub fn users(mut self, users: UserSet) -> NewEntry {
        self.users = Some(users);
        self
    }
}

/// A stored entry: its place in the chain, its time, and what was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub time_ms: i64,
    #[serde(flatten)]
    pub body: NewEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The bytes an entry's hash covers: the previous hash, then the canonical
/// JSON of (seq, time, body). serde_json writes struct fields in
/// declaration order and object keys sorted, so the bytes are stable.
pub(crate) fn canonical_body(seq: u64, time_ms: i64, body: &NewEntry) -> String {
    #[derive(Serialize)]
    struct Canonical<'a> {
        seq: u64,
        time_ms: i64,
        #[serde(flatten)]
        body: &'a NewEntry,
    }
    serde_json::to_string(&Canonical { seq, time_ms, body }).expect("an entry serialises")
}

pub(crate) fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// The hash before the first entry.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
