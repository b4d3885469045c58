//! Privacy policies applied at ingest, before anything is written. Pure: no
//! IO, no HTTP.
//!
//! Today this holds the personal-field default: names, emails and phone
//! numbers must never reach the disk in plaintext. Until encrypted personal
//! fields land (per-user keys, crypto-shredding), the safe default is not to
//! store them at all: they are dropped from event properties and profile
//! updates, and counted in `hearth_personal_fields_dropped_total`. The IP
//! address is handled by the server (used for geolocation, never stored) and
//! the raw user agent by `enrich` (parsed, never stored).

pub mod apply;
pub mod crypto;
pub mod pii;
pub mod policy;

use events::{ProfileOp, Properties};

/// Keys whose values identify a person directly.
pub const PERSONAL_KEYS: &[&str] =
    &["$email", "email", "$name", "name", "$first_name", "$last_name", "first_name", "last_name", "$phone", "phone"];

/// Removes personal keys; returns how many were removed.
pub fn drop_personal(properties: &mut Properties) -> usize {
    drop_keys(properties, PERSONAL_KEYS)
}

/// Keys of a group (organisation) profile that reach a person: its `name` is
/// the organisation's and stays, so that group reports can show it.
pub const GROUP_PERSONAL_KEYS: &[&str] = &["$email", "email", "$phone", "phone", "$first_name", "$last_name", "first_name", "last_name"];

fn drop_keys(properties: &mut Properties, keys: &[&str]) -> usize {
    let mut n_dropped = 0;
    for key in keys {
        n_dropped += usize::from(properties.remove(*key).is_some());
    }
    if n_dropped > 0 {
        metrics::counter!("hearth_personal_fields_dropped_total").increment(n_dropped as u64);
    }
    n_dropped
}

fn op_properties(op: &mut ProfileOp) -> Option<&mut Properties> {
    match op {
        ProfileOp::Set(p) | ProfileOp::SetOnce(p) | ProfileOp::Add(p) | ProfileOp::Append(p) | ProfileOp::Union(p) | ProfileOp::Remove(p) => Some(p),
        ProfileOp::Unset(_) | ProfileOp::Delete => None,
    }
}

/// The same for a user profile operation (`$unset` names stay).
pub fn drop_personal_from_op(op: &mut ProfileOp) -> usize {
    op_properties(op).map_or(0, |p| drop_keys(p, PERSONAL_KEYS))
}

/// The same for a group profile operation.
pub fn drop_personal_from_group_op(op: &mut ProfileOp) -> usize {
    op_properties(op).map_or(0, |p| drop_keys(p, GROUP_PERSONAL_KEYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_keys_are_removed_and_others_kept() {
        let mut properties = Properties::new();
        properties.insert("$email".into(), "a@example.com".into());
        properties.insert("$name".into(), "Ada".into());
        properties.insert("plan".into(), "pro".into());
        assert_eq!(drop_personal(&mut properties), 2);
        assert_eq!(properties.len(), 1);
        let mut op = ProfileOp::SetOnce(properties.clone());
        if let ProfileOp::SetOnce(p) = &mut op {
            p.insert("phone".into(), "+1 555".into());
        }
        assert_eq!(drop_personal_from_op(&mut op), 1);
        assert_eq!(drop_personal_from_op(&mut ProfileOp::Delete), 0);
        let mut group = ProfileOp::Set(Properties::from_iter([("name".to_owned(), "Acme".into()), ("$email".to_owned(), "x@acme.test".into())]));
        assert_eq!(drop_personal_from_group_op(&mut group), 1);
        assert_eq!(group, ProfileOp::Set(Properties::from_iter([("name".to_owned(), "Acme".into())])));
    }
}
