//! Validation of one `/groups` record: a group profile update (wire
//! reference, section 3).
//!
//! Shape: `{"$token", "$group_key", "$group_id", <operations>}`. The SDKs
//! send `$set`, `$set_once`, `$unset`, `$remove`, `$union` and `$delete`;
//! `$add` and `$append` are accepted too, as Mixpanel's batch docs allow
//! them. Operations come out in the same fixed order as profile updates.

use events::{GroupUpdate, group_id_text};
use serde_json::{Map, Value};

use crate::limits::serialized_len_exceeds;
use crate::record::{ID_CHARS_MAX, Invalid, take_update_time};
use crate::update::take_operations;
use crate::{Limits, RecordError};

/// A valid group record: one update per operation it held.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    /// `$token`, if it was a string. The server checks it.
    pub token: Option<String>,
    /// In the fixed operation order, all for the same group and time.
    pub updates: Vec<GroupUpdate>,
}

/// Validates one group update record. `now_ms` is the time of updates
/// without `$time`.
///
/// # Errors
///
/// A [`RecordError`] naming the first problem found: not an object, too
/// large, a missing or bad `$group_key`, `$group_id` or `$time`, no
/// operation, or an operation of the wrong type or over the limits.
pub fn validate_group_update(
    index: usize,
    record: Value,
    now_ms: i64,
    limits: &Limits,
) -> Result<GroupInput, RecordError> {
    group_from_record(record, now_ms, limits)
        .map_err(|invalid| invalid.into_record_error(index, None))
}

fn group_from_record(record: Value, now_ms: i64, limits: &Limits) -> Result<GroupInput, Invalid> {
    if serialized_len_exceeds(&record, limits.record_bytes_max) {
        return Err(Invalid::too_large(limits.record_bytes_max));
    }
    let Value::Object(mut record) = record else {
        return Err(Invalid::new("record", "must be a json object"));
    };
    let token = match record.remove("$token") {
        Some(Value::String(token)) => Some(token),
        _ => None,
    };
    let group_key = match record.remove("$group_key") {
        Some(Value::String(group_key)) => group_key,
        None | Some(Value::Null) => return Err(Invalid::new("$group_key", "is required")),
        Some(_) => return Err(Invalid::new("$group_key", "must be a string")),
    };
    check_identifier("$group_key", &group_key)?;
    let group_id = take_group_id(&mut record)?;
    let time_ms = take_update_time(&mut record, now_ms)?;
    let ops = take_operations(&mut record, limits)?;
    let updates = ops
        .into_iter()
        .map(|op| GroupUpdate {
            group_key: group_key.clone(),
            group_id: group_id.clone(),
            time_ms,
            op,
        })
        .collect();
    Ok(GroupInput { token, updates })
}

fn take_group_id(record: &mut Map<String, Value>) -> Result<String, Invalid> {
    const FIELD: &str = "$group_id";
    let group_id = match record.remove(FIELD) {
        None | Some(Value::Null) => return Err(Invalid::new(FIELD, "is required")),
        Some(value) => group_id_text(&value)
            .ok_or_else(|| Invalid::new(FIELD, "must be a string or a number"))?,
    };
    check_identifier(FIELD, &group_id)?;
    Ok(group_id)
}

fn check_identifier(field: &str, text: &str) -> Result<(), Invalid> {
    if text.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if text.chars().count() > ID_CHARS_MAX {
        return Err(Invalid::new(
            field,
            format!("must be at most {ID_CHARS_MAX} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::ProfileOp;
    use serde_json::json;

    const NOW_MS: i64 = 1_795_317_755_287;

    fn accept(record: Value) -> GroupInput {
        validate_group_update(0, record, NOW_MS, &Limits::default()).expect("valid group update")
    }

    fn rejected_field(record: Value) -> String {
        match validate_group_update(2, record, NOW_MS, &Limits::default()) {
            Err(error) => {
                assert_eq!(error.index, 2);
                error.field
            }
            Ok(input) => panic!("expected a rejection, got {input:?}"),
        }
    }

    #[test]
    fn browser_group_set_is_accepted() {
        let input = accept(
            json!({"$token": "tok", "$group_key": "company_id", "$group_id": "acme", "$set": {"plan": "pro"}}),
        );
        assert_eq!(input.token.as_deref(), Some("tok"));
        let update = input.updates.first().expect("one update");
        assert_eq!(update.group_key, "company_id");
        assert_eq!(update.group_id, "acme");
        assert_eq!(update.time_ms, NOW_MS);
        assert!(
            matches!(&update.op, ProfileOp::Set(properties) if properties.get("plan") == Some(&json!("pro")))
        );
    }

    #[test]
    fn numeric_group_ids_become_text() {
        let input = accept(
            json!({"$group_key": "org", "$group_id": 1234, "$time": 1_700_000_000, "$unset": ["a"]}),
        );
        let update = input.updates.first().expect("one update");
        assert_eq!(update.group_id, "1234");
        assert_eq!(update.time_ms, 1_700_000_000_000);
    }

    #[test]
    fn every_operation_is_accepted_in_the_fixed_order() {
        let record = json!({"$group_key": "k", "$group_id": "g", "$delete": null, "$append": {"l": 1}, "$add": {"n": 1},
            "$union": {"u": [1]}, "$remove": {"r": 1}, "$set_once": {"o": 1}, "$set": {"s": 1}, "$unset": "x"});
        let names: Vec<&str> = accept(record)
            .updates
            .iter()
            .map(|update| update.op.wire_name())
            .collect();
        assert_eq!(
            names,
            [
                "$set",
                "$set_once",
                "$add",
                "$append",
                "$union",
                "$remove",
                "$unset",
                "$delete"
            ]
        );
    }

    #[test]
    fn key_and_id_are_required_and_bounded() {
        assert_eq!(
            rejected_field(json!({"$group_id": "g", "$set": {}})),
            "$group_key"
        );
        assert_eq!(
            rejected_field(json!({"$group_key": 5, "$group_id": "g", "$set": {}})),
            "$group_key"
        );
        assert_eq!(
            rejected_field(json!({"$group_key": "", "$group_id": "g", "$set": {}})),
            "$group_key"
        );
        assert_eq!(
            rejected_field(json!({"$group_key": "k", "$set": {}})),
            "$group_id"
        );
        assert_eq!(
            rejected_field(json!({"$group_key": "k", "$group_id": ["g"], "$set": {}})),
            "$group_id"
        );
        assert!(
            validate_group_update(
                0,
                json!({"$group_key": "k", "$group_id": "g".repeat(255), "$set": {}}),
                NOW_MS,
                &Limits::default()
            )
            .is_ok()
        );
        assert_eq!(
            rejected_field(json!({"$group_key": "k", "$group_id": "g".repeat(256), "$set": {}})),
            "$group_id"
        );
    }

    #[test]
    fn an_operation_is_required() {
        assert_eq!(
            rejected_field(json!({"$group_key": "k", "$group_id": "g"})),
            "record"
        );
        assert_eq!(
            rejected_field(json!({"$group_key": "k", "$group_id": "g", "$set": "x"})),
            "$set"
        );
    }

    #[test]
    fn record_size_is_checked_at_the_limit_and_one_over() {
        let record = json!({"$group_key": "k", "$group_id": "g", "$set": {}});
        let n_bytes = serde_json::to_vec(&record).expect("serializable").len();
        let limits = Limits {
            record_bytes_max: n_bytes,
            ..Limits::default()
        };
        assert!(validate_group_update(0, record.clone(), NOW_MS, &limits).is_ok());
        let limits = Limits {
            record_bytes_max: n_bytes - 1,
            ..Limits::default()
        };
        let res = validate_group_update(0, record, NOW_MS, &limits);
        assert_eq!(res.map_err(|error| error.field), Err("record".to_owned()));
    }
}
