//! Validation of one `/engage` record: a user profile update (wire
//! reference, section 3).
//!
//! Shape: `{"$token", "$distinct_id", <operations>, <modifiers>}`. The
//! operations are read by the `update` module, in its fixed order. The
//! browser SDK also sends `$device_id` and `$user_id` at the top level;
//! they, `$latitude`/`$longitude` and any unknown key are ignored, so a
//! newer SDK field never fails an update.

use events::ProfileUpdate;
use serde_json::{Map, Value};

use crate::limits::serialized_len_exceeds;
use crate::record::{ID_CHARS_MAX, Invalid, id_text, is_true_flag, take_update_time};
use crate::update::take_operations;
use crate::{IpProperty, Limits, RecordError};

/// A valid profile record: one update per operation it held.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileInput {
    /// `$token`, if it was a string. The server checks it.
    pub token: Option<String>,
    /// The `$ip` modifier.
    pub ip: IpProperty,
    /// In the order `$set`, `$set_once`, `$add`, `$append`, `$union`,
    /// `$remove`, `$unset`, `$delete`, all with the same id and time.
    pub updates: Vec<ProfileUpdate>,
}

/// Validates one profile update record. `now_ms` is the time of updates
/// without `$time`.
///
/// # Errors
///
/// A [`RecordError`] naming the first problem found: not an object, too
/// large, a missing or bad `$distinct_id` or `$time`, no operation, or an
/// operation of the wrong type or over the limits.
pub fn validate_profile_update(
    index: usize,
    record: Value,
    now_ms: i64,
    limits: &Limits,
) -> Result<ProfileInput, RecordError> {
    profile_from_record(record, now_ms, limits)
        .map_err(|invalid| invalid.into_record_error(index, None))
}

fn profile_from_record(
    record: Value,
    now_ms: i64,
    limits: &Limits,
) -> Result<ProfileInput, Invalid> {
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
    let distinct_id = take_profile_distinct_id(&mut record)?;
    let ip = IpProperty::from_value(record.remove("$ip"));
    let time_ms = take_update_time(&mut record, now_ms)?;
    let ignore_time = is_true_flag(record.get("$ignore_time"));
    let ignore_alias = is_true_flag(record.get("$ignore_alias"));
    let ops = take_operations(&mut record, limits)?;
    let updates = ops
        .into_iter()
        .map(|op| ProfileUpdate {
            distinct_id: distinct_id.clone(),
            time_ms,
            ignore_time,
            ignore_alias,
            op,
        })
        .collect();
    Ok(ProfileInput { token, ip, updates })
}

fn take_profile_distinct_id(record: &mut Map<String, Value>) -> Result<String, Invalid> {
    const FIELD: &str = "$distinct_id";
    let distinct_id = match record.remove(FIELD) {
        None | Some(Value::Null) => return Err(Invalid::new(FIELD, "is required")),
        Some(value) => {
            id_text(&value).ok_or_else(|| Invalid::new(FIELD, "must be a string or a number"))?
        }
    };
    if distinct_id.is_empty() {
        return Err(Invalid::new(FIELD, "must not be empty"));
    }
    if distinct_id.chars().count() > ID_CHARS_MAX {
        return Err(Invalid::new(
            FIELD,
            format!("must be at most {ID_CHARS_MAX} characters"),
        ));
    }
    Ok(distinct_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::ProfileOp;
    use serde_json::json;

    const NOW_MS: i64 = 1_795_317_755_287;

    fn accept(record: Value) -> ProfileInput {
        validate_profile_update(0, record, NOW_MS, &Limits::default())
            .expect("valid profile update")
    }

    fn rejected_field(record: Value) -> String {
        match validate_profile_update(4, record, NOW_MS, &Limits::default()) {
            Err(error) => {
                assert_eq!(error.index, 4);
                error.field
            }
            Ok(input) => panic!("expected a rejection, got {input:?}"),
        }
    }

    fn properties(value: Value) -> events::Properties {
        match value {
            Value::Object(map) => map,
            _ => events::Properties::new(),
        }
    }

    #[test]
    fn browser_people_set_is_accepted() {
        let record = json!({"$set": {"$browser": "Chrome", "plan": "pro"}, "$token": "tok", "$distinct_id": "u1",
            "$device_id": "d1", "$user_id": "u1"});
        let input = accept(record);
        assert_eq!(input.token.as_deref(), Some("tok"));
        assert_eq!(input.ip, IpProperty::Absent);
        let expected = ProfileUpdate {
            distinct_id: "u1".to_owned(),
            time_ms: NOW_MS,
            ignore_time: false,
            ignore_alias: false,
            op: ProfileOp::Set(properties(json!({"$browser": "Chrome", "plan": "pro"}))),
        };
        assert_eq!(input.updates, vec![expected]);
    }

    #[test]
    fn python_modifiers_are_read() {
        let record = json!({"$token": "tok", "$distinct_id": 42, "$time": 1_700_000_000.5, "$ip": "0",
            "$ignore_time": true, "$add": {"n": 1}, "$latitude": 1.0, "$longitude": 2.0});
        let input = accept(record);
        assert_eq!(input.ip, IpProperty::Disabled);
        let update = input.updates.first().expect("one update");
        assert_eq!(update.distinct_id, "42");
        assert_eq!(update.time_ms, 1_700_000_000_500);
        assert!(update.ignore_time);
        assert!(!update.ignore_alias);
    }

    #[test]
    fn delete_keeps_ignore_alias() {
        let input = accept(
            json!({"$distinct_id": "u", "$delete": "", "$ignore_alias": true, "$ip": "198.51.100.7"}),
        );
        assert_eq!(input.ip, IpProperty::Address("198.51.100.7".to_owned()));
        assert_eq!(input.updates.len(), 1);
        assert!(
            input
                .updates
                .iter()
                .all(|update| update.ignore_alias && update.op == ProfileOp::Delete)
        );
    }

    #[test]
    fn several_operations_become_several_updates() {
        let input = accept(json!({"$distinct_id": "u", "$unset": ["a"], "$set": {"b": 1}}));
        let names: Vec<&str> = input
            .updates
            .iter()
            .map(|update| update.op.wire_name())
            .collect();
        assert_eq!(names, ["$set", "$unset"]);
    }

    #[test]
    fn distinct_id_is_required_and_bounded() {
        assert_eq!(rejected_field(json!({"$set": {}})), "$distinct_id");
        assert_eq!(
            rejected_field(json!({"$distinct_id": "", "$set": {}})),
            "$distinct_id"
        );
        assert_eq!(
            rejected_field(json!({"$distinct_id": true, "$set": {}})),
            "$distinct_id"
        );
        let at_limit = accept(json!({"$distinct_id": "u".repeat(255), "$set": {}}));
        assert_eq!(at_limit.updates.len(), 1);
        assert_eq!(
            rejected_field(json!({"$distinct_id": "u".repeat(256), "$set": {}})),
            "$distinct_id"
        );
    }

    #[test]
    fn an_operation_is_required() {
        assert_eq!(
            rejected_field(json!({"$distinct_id": "u", "$token": "t"})),
            "record"
        );
    }

    #[test]
    fn bad_shapes_are_rejected() {
        assert_eq!(
            rejected_field(json!([{"$distinct_id": "u", "$set": {}}])),
            "record"
        );
        assert_eq!(
            rejected_field(json!({"$distinct_id": "u", "$set": {}, "$time": "noon"})),
            "$time"
        );
        assert_eq!(
            rejected_field(json!({"$distinct_id": "u", "$add": {"n": "one"}})),
            "$add.n"
        );
    }

    #[test]
    fn record_size_is_checked_at_the_limit_and_one_over() {
        let record = json!({"$distinct_id": "u", "$set": {"a": "b"}});
        let n_bytes = serde_json::to_vec(&record).expect("serializable").len();
        let limits = Limits {
            record_bytes_max: n_bytes,
            ..Limits::default()
        };
        assert!(validate_profile_update(0, record.clone(), NOW_MS, &limits).is_ok());
        let limits = Limits {
            record_bytes_max: n_bytes - 1,
            ..Limits::default()
        };
        let res = validate_profile_update(0, record, NOW_MS, &limits);
        assert_eq!(res.map_err(|error| error.field), Err("record".to_owned()));
    }

    #[test]
    fn strings_in_operations_are_truncated() {
        let input = accept(json!({"$distinct_id": "u", "$set": {"name": "n".repeat(256)}}));
        let expected = ProfileOp::Set(properties(json!({"name": "n".repeat(255)})));
        assert_eq!(
            input.updates.first().map(|update| &update.op),
            Some(&expected)
        );
    }
}
