//! Validation of one event record (`/track` and `/import`), following
//! Mixpanel's rules (wire reference, sections 1.2, 1.3, 2.1 and 2.2).
//!
//! `/track` is forgiving, as the browser and mobile SDKs rely on it: a
//! missing `time` is the arrival time, a missing `distinct_id` is empty.
//! `/import` is strict, as Mixpanel's is: historical data must say when and
//! who, so those records are rejected instead of guessed.
//!
//! The reserved keys are taken out of the properties: `token` (auth, the
//! server's business), `ip` (used for geolocation and never stored), `time`,
//! `distinct_id` and `$insert_id` (they become the fields of
//! [`events::Event`]), `bucket`, `$bucket` and `$ignore`.

use events::{Event, Properties, millis_from_client_time};
use serde_json::{Map, Value};

use crate::limits::{check_properties, serialized_len_exceeds, truncate_string, truncate_strings};
use crate::record::{ID_CHARS_MAX, Invalid, id_text, is_placeholder_id, reported_id, reported_insert_id};
use crate::{IpProperty, Limits, RecordError};

/// 1971-01-01T00:00:00Z: `/import` rejects anything earlier.
const IMPORT_TIME_MS_MIN: i64 = 31_536_000_000;
/// `/import` rejects times more than this ahead of the server clock.
const IMPORT_FUTURE_MS_MAX: i64 = 3_600_000;
/// `/import`'s `$insert_id` is at most 36 bytes of `[A-Za-z0-9-]`.
const IMPORT_INSERT_ID_BYTES_MAX: usize = 36;

/// Which rule set applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/track`: defaults for time and distinct id.
    Track,
    /// `/import`: time, distinct id and properties required; adds `$import`.
    Import,
}

/// A valid event, with what the server needs besides it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInput {
    /// `properties.token`, if it was a string. The server checks it.
    pub token: Option<String>,
    /// `properties.ip`.
    pub ip: IpProperty,
    /// The normalised event.
    pub event: Event,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// Valid.
    Accepted(EventInput),
    /// `$ignore` was set: dropped silently, as Mixpanel does.
    Ignored,
    /// Invalid, with the reason.
    Rejected(RecordError),
}

/// Validates one event record. `index` is its position in the request, for
/// the error; `new_insert_id` is called when the record has no `$insert_id`.
pub fn validate_event(
    index: usize,
    record: Value,
    mode: Mode,
    now_ms: i64,
    limits: &Limits,
    new_insert_id: &mut dyn FnMut() -> String,
) -> RecordOutcome {
    match event_from_record(record, mode, now_ms, limits, new_insert_id) {
        Ok(Some(input)) => RecordOutcome::Accepted(input),
        Ok(None) => RecordOutcome::Ignored,
        Err(Rejected { invalid, insert_id }) => {
            RecordOutcome::Rejected(invalid.into_record_error(index, insert_id))
        }
    }
}

/// A rejected record: why, and the `$insert_id` it is reported with (the
/// client's, when it is a string of at most [`ID_CHARS_MAX`] characters).
/// The id is looked up only once a record is rejected: doing it for every
/// record cost a few percent of the request's CPU.
struct Rejected {
    invalid: Invalid,
    insert_id: Option<String>,
}

impl Invalid {
    fn reported_with(self, insert_id: Option<String>) -> Rejected {
        Rejected { invalid: self, insert_id }
    }
}

/// `Ok(None)` when the event is to be ignored.
fn event_from_record(
    record: Value,
    mode: Mode,
    now_ms: i64,
    limits: &Limits,
    new_insert_id: &mut dyn FnMut() -> String,
) -> Result<Option<EventInput>, Rejected> {
    if serialized_len_exceeds(&record, limits.record_bytes_max) {
        return Err(Invalid::too_large(limits.record_bytes_max).reported_with(reported_insert_id(&record)));
    }
    // A record or properties that are not objects have no `$insert_id`.
    let Value::Object(mut record) = record else {
        return Err(Invalid::new("record", "must be a json object").reported_with(None));
    };
    let mut properties = take_properties(&mut record, mode).map_err(|invalid| invalid.reported_with(None))?;
    if is_ignored(properties.remove("$ignore")) {
        return Ok(None);
    }
    // Until `take_insert_id`, the client's id is still in the properties.
    let reported = |properties: &Properties| properties.get("$insert_id").and_then(Value::as_str).and_then(reported_id);
    let name = take_event_name(&mut record, limits).map_err(|invalid| invalid.reported_with(reported(&properties)))?;
    let token = match properties.remove("token") {
        Some(Value::String(token)) => Some(token),
        _ => None,
    };
    let ip = IpProperty::from_value(properties.remove("ip"));
    properties.remove("bucket");
    properties.remove("$bucket");
    let time_ms = take_time(&mut properties, mode, now_ms).map_err(|invalid| invalid.reported_with(reported(&properties)))?;
    let distinct_id = take_distinct_id(&mut properties, mode).map_err(|invalid| invalid.reported_with(reported(&properties)))?;
    let client_insert_id = take_insert_id(&mut properties, mode)?;
    check_properties(&properties, limits).map_err(|violation| {
        Invalid::from_violation("properties", violation, limits.properties_max)
            .reported_with(client_insert_id.as_deref().and_then(reported_id))
    })?;
    let insert_id = match client_insert_id {
        Some(insert_id) if !insert_id.is_empty() => insert_id,
        _ => new_insert_id(),
    };
    properties
        .values_mut()
        .for_each(|value| truncate_strings(value, limits.string_chars_max));
    if mode == Mode::Import {
        properties.insert("$import".to_owned(), Value::Bool(true));
    }
    let event = Event {
        name,
        distinct_id,
        time_ms,
        insert_id,
        properties,
    };
    Ok(Some(EventInput { token, ip, event }))
}

fn take_properties(record: &mut Map<String, Value>, mode: Mode) -> Result<Properties, Invalid> {
    match (record.remove("properties"), mode) {
        (Some(Value::Object(properties)), _) => Ok(properties),
        (None | Some(Value::Null), Mode::Track) => Ok(Properties::new()),
        (None, Mode::Import) => Err(Invalid::new("properties", "is required")),
        (Some(_), _) => Err(Invalid::new("properties", "must be an object")),
    }
}

/// `$ignore` set to anything but `false`, `null` or `"false"`.
fn is_ignored(value: Option<Value>) -> bool {
    match value {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::String(text)) => text != "false",
        Some(_) => true,
    }
}

fn take_event_name(record: &mut Map<String, Value>, limits: &Limits) -> Result<String, Invalid> {
    match record.remove("event") {
        Some(Value::String(mut name)) if !name.is_empty() => {
            truncate_string(&mut name, limits.string_chars_max);
            Ok(name)
        }
        Some(Value::String(_)) => Err(Invalid::new("event", "must not be empty")),
        None | Some(Value::Null) => Err(Invalid::new("event", "is required")),
        Some(_) => Err(Invalid::new("event", "must be a string")),
    }
}

fn take_time(properties: &mut Properties, mode: Mode, now_ms: i64) -> Result<i64, Invalid> {
    const FIELD: &str = "properties.time";
    let time_ms = match (properties.remove("time"), mode) {
        (None | Some(Value::Null), Mode::Track) => return Ok(now_ms),
        (None | Some(Value::Null), Mode::Import) => return Err(Invalid::new(FIELD, "is required")),
        (Some(value), _) => millis_from_client_time(&value)
            .map_err(|error| Invalid::new(FIELD, error.to_string()))?,
    };
    if mode == Mode::Import {
        if time_ms < IMPORT_TIME_MS_MIN {
            return Err(Invalid::new(FIELD, "must not be before 1971-01-01"));
        }
        if time_ms > now_ms.saturating_add(IMPORT_FUTURE_MS_MAX) {
            return Err(Invalid::new(
                FIELD,
                "must not be more than 1 hour in the future",
            ));
        }
    }
    Ok(time_ms)
}

/// Simplified ID Merge: `$user_id`, else `"$device:" + $device_id`, else
/// the client's `distinct_id`. `$user_id` and `$device_id` stay in the
/// properties; null or empty ones count as absent.
fn take_distinct_id(properties: &mut Properties, mode: Mode) -> Result<String, Invalid> {
    let client_distinct_id = properties.remove("distinct_id");
    let (field, id, prefix) = if let Some(user_id) = identity_property(properties, "$user_id")? {
        ("properties.$user_id", user_id, "")
    } else if let Some(device_id) = identity_property(properties, "$device_id")? {
        ("properties.$device_id", device_id, "$device:")
    } else {
        const FIELD: &str = "properties.distinct_id";
        match client_distinct_id {
            None | Some(Value::Null) if mode == Mode::Import => {
                return Err(Invalid::new(FIELD, "is required"));
            }
            None | Some(Value::Null) => return Ok(String::new()),
            Some(value) => {
                let id = id_text(&value)
                    .ok_or_else(|| Invalid::new(FIELD, "must be a string or a number"))?;
                (FIELD, id, "")
            }
        }
    };
    if mode == Mode::Import && is_placeholder_id(&id) {
        return Err(Invalid::new(field, "is a placeholder value"));
    }
    let distinct_id = format!("{prefix}{id}");
    if distinct_id.chars().count() > ID_CHARS_MAX {
        return Err(Invalid::new(
            field,
            format!("must be at most {ID_CHARS_MAX} characters"),
        ));
    }
    Ok(distinct_id)
}

fn identity_property(
    properties: &Properties,
    key: &'static str,
) -> Result<Option<String>, Invalid> {
    match properties.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match id_text(value) {
            Some(id) => Ok(Some(id).filter(|id| !id.is_empty())),
            None => Err(Invalid::new(
                format!("properties.{key}"),
                "must be a string or a number",
            )),
        },
    }
}

/// The client's `$insert_id`, checked: `None` when it sent none, and on
/// `/track` an empty one as it is. The caller makes one up for both: an
/// empty id would deduplicate unrelated events.
fn take_insert_id(properties: &mut Properties, mode: Mode) -> Result<Option<String>, Rejected> {
    const FIELD: &str = "properties.$insert_id";
    let insert_id = match properties.remove("$insert_id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(insert_id)) => insert_id,
        Some(_) => return Err(Invalid::new(FIELD, "must be a string").reported_with(None)),
    };
    let rejected = |invalid: Invalid| Err(invalid.reported_with(reported_id(&insert_id)));
    match mode {
        Mode::Track if insert_id.is_empty() => Ok(Some(insert_id)),
        Mode::Track if insert_id.chars().count() > ID_CHARS_MAX => rejected(Invalid::new(
            FIELD,
            format!("must be at most {ID_CHARS_MAX} characters"),
        )),
        Mode::Track => Ok(Some(insert_id)),
        Mode::Import => {
            let well_formed = !insert_id.is_empty()
                && insert_id.len() <= IMPORT_INSERT_ID_BYTES_MAX
                && insert_id
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
            if !well_formed {
                return rejected(Invalid::new(
                    FIELD,
                    "must be 1 to 36 characters of [A-Za-z0-9-]",
                ));
            }
            if is_placeholder_id(&insert_id) {
                return rejected(Invalid::new(FIELD, "is a placeholder value"));
            }
            Ok(Some(insert_id))
        }
    }
}

#[cfg(test)]
mod tests;
