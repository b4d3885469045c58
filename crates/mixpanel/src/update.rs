//! The operations of a profile or group update record (`$set`, `$add`, ...),
//! shared by `/engage` and `/groups`.
//!
//! SDKs send one operation per record, but the format allows several. They
//! become several updates, always in this order, whatever the key order in
//! the JSON (which `serde_json` does not keep anyway): `$set`, `$set_once`,
//! `$add`, `$append`, `$union`, `$remove`, `$unset`, `$delete`. Mixpanel
//! does not document an order; this one applies writes before removals and
//! the profile deletion last, so a record never recreates what it deletes.

use events::{ProfileOp, Properties};
use serde_json::{Map, Value};

use crate::Limits;
use crate::limits::{check_properties, truncate_strings};
use crate::record::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Set,
    SetOnce,
    Add,
    Append,
    Union,
    Remove,
    Unset,
    Delete,
}

impl OpKind {
    /// The order updates are produced in (see the module docs).
    const ORDER: [OpKind; 8] = [
        OpKind::Set,
        OpKind::SetOnce,
        OpKind::Add,
        OpKind::Append,
        OpKind::Union,
        OpKind::Remove,
        OpKind::Unset,
        OpKind::Delete,
    ];

    fn wire_name(self) -> &'static str {
        match self {
            OpKind::Set => "$set",
            OpKind::SetOnce => "$set_once",
            OpKind::Add => "$add",
            OpKind::Append => "$append",
            OpKind::Union => "$union",
            OpKind::Remove => "$remove",
            OpKind::Unset => "$unset",
            OpKind::Delete => "$delete",
        }
    }
}

/// Takes every operation out of `record`, in the fixed order. At least one
/// is required.
pub(crate) fn take_operations(
    record: &mut Map<String, Value>,
    limits: &Limits,
) -> Result<Vec<ProfileOp>, Invalid> {
    let mut ops = Vec::new();
    for kind in OpKind::ORDER {
        if let Some(value) = record.remove(kind.wire_name()) {
            ops.push(operation(kind, value, limits)?);
        }
    }
    if ops.is_empty() {
        return Err(Invalid::new(
            "record",
            "has no operation ($set, $set_once, $add, $append, $union, $remove, $unset or $delete)",
        ));
    }
    Ok(ops)
}

fn operation(kind: OpKind, value: Value, limits: &Limits) -> Result<ProfileOp, Invalid> {
    let field = kind.wire_name();
    match kind {
        OpKind::Set => object_operand(field, value, limits).map(ProfileOp::Set),
        OpKind::SetOnce => object_operand(field, value, limits).map(ProfileOp::SetOnce),
        OpKind::Add => {
            let properties = object_operand(field, value, limits)?;
            require_values(field, &properties, Value::is_number, "must be a number")?;
            Ok(ProfileOp::Add(properties))
        }
        OpKind::Append => object_operand(field, value, limits).map(ProfileOp::Append),
        OpKind::Union => {
            let properties = object_operand(field, value, limits)?;
            require_values(field, &properties, Value::is_array, "must be a list")?;
            Ok(ProfileOp::Union(properties))
        }
        OpKind::Remove => object_operand(field, value, limits).map(ProfileOp::Remove),
        OpKind::Unset => unset_names(value, limits).map(ProfileOp::Unset),
        // Mixpanel ignores the value of `$delete`.
        OpKind::Delete => Ok(ProfileOp::Delete),
    }
}

/// An object operand, within the event limits, its strings truncated.
fn object_operand(field: &str, value: Value, limits: &Limits) -> Result<Properties, Invalid> {
    let Value::Object(mut properties) = value else {
        return Err(Invalid::new(field, "must be an object"));
    };
    check_properties(&properties, limits)
        .map_err(|violation| Invalid::from_violation(field, violation, limits.properties_max))?;
    properties
        .values_mut()
        .for_each(|value| truncate_strings(value, limits.string_chars_max));
    Ok(properties)
}

fn require_values(
    field: &str,
    properties: &Properties,
    is_valid: fn(&Value) -> bool,
    message: &str,
) -> Result<(), Invalid> {
    match properties.iter().find(|(_, value)| !is_valid(value)) {
        Some((key, _)) => Err(Invalid::new(format!("{field}.{}", short_key(key)), message)),
        None => Ok(()),
    }
}

/// `$unset` takes a list of property names, or a single name. Names are not
/// truncated: a cut name would unset another property.
fn unset_names(value: Value, limits: &Limits) -> Result<Vec<String>, Invalid> {
    const FIELD: &str = "$unset";
    let items = match value {
        Value::String(name) => return Ok(vec![name]),
        Value::Array(items) => items,
        _ => return Err(Invalid::new(FIELD, "must be a list of property names")),
    };
    if items.len() > limits.properties_max {
        return Err(Invalid::new(
            FIELD,
            format!("has more than {} properties", limits.properties_max),
        ));
    }
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(name) => names.push(name),
            _ => return Err(Invalid::new(FIELD, "must be a list of property names")),
        }
    }
    Ok(names)
}

/// A property key as it may appear in an error's `field`.
fn short_key(key: &str) -> String {
    let mut key = key.to_owned();
    crate::limits::truncate_string(&mut key, crate::record::ID_CHARS_MAX);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(record: Value) -> Result<Vec<ProfileOp>, Invalid> {
        ops_with(record, &Limits::default())
    }

    fn ops_with(record: Value, limits: &Limits) -> Result<Vec<ProfileOp>, Invalid> {
        let Value::Object(mut record) = record else {
            panic!("test records are objects")
        };
        take_operations(&mut record, limits)
    }

    fn object(value: Value) -> Properties {
        match value {
            Value::Object(map) => map,
            _ => Properties::new(),
        }
    }

    fn rejected_field(record: Value) -> String {
        match ops(record) {
            Err(invalid) => invalid.field,
            Ok(ops) => panic!("expected a rejection, got {ops:?}"),
        }
    }

    #[test]
    fn several_operations_come_out_in_the_fixed_order() {
        let record = json!({"$delete": "", "$unset": ["x"], "$remove": {"r": 1}, "$union": {"u": [1]}, "$append": {"l": 2},
            "$add": {"n": 1}, "$set_once": {"o": 1}, "$set": {"s": 1}, "$token": "t"});
        let ops = ops(record).expect("valid operations");
        let names: Vec<&str> = ops.iter().map(ProfileOp::wire_name).collect();
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
        assert_eq!(ops.first(), Some(&ProfileOp::Set(object(json!({"s": 1})))));
    }

    #[test]
    fn at_least_one_operation_is_required() {
        assert_eq!(
            rejected_field(json!({"$token": "t", "$sett": {}})),
            "record"
        );
    }

    #[test]
    fn object_operations_take_objects() {
        for op in ["$set", "$set_once", "$append", "$remove", "$add", "$union"] {
            assert_eq!(rejected_field(json!({op: [1]})), op);
        }
        assert_eq!(
            ops(json!({"$append": {"l": {"nested": 1}}})).map(|ops| ops.len()),
            Ok(1)
        );
    }

    #[test]
    fn add_takes_numbers_only() {
        assert_eq!(
            ops(json!({"$add": {"n": 1, "m": -2.5}})),
            Ok(vec![ProfileOp::Add(object(json!({"n": 1, "m": -2.5})))])
        );
        assert_eq!(rejected_field(json!({"$add": {"n": "1"}})), "$add.n");
    }

    #[test]
    fn union_takes_lists_only() {
        assert_eq!(
            ops(json!({"$union": {"tags": ["a"]}})),
            Ok(vec![ProfileOp::Union(object(json!({"tags": ["a"]})))])
        );
        assert_eq!(
            rejected_field(json!({"$union": {"tags": "a"}})),
            "$union.tags"
        );
    }

    #[test]
    fn unset_takes_names_or_one_name() {
        assert_eq!(
            ops(json!({"$unset": ["a", "b"]})),
            Ok(vec![ProfileOp::Unset(vec!["a".to_owned(), "b".to_owned()])])
        );
        assert_eq!(
            ops(json!({"$unset": "a"})),
            Ok(vec![ProfileOp::Unset(vec!["a".to_owned()])])
        );
        assert_eq!(rejected_field(json!({"$unset": ["a", 1]})), "$unset");
        assert_eq!(rejected_field(json!({"$unset": {"a": 1}})), "$unset");
    }

    #[test]
    fn delete_takes_anything() {
        for value in [json!(""), json!(null), json!({"x": 1})] {
            assert_eq!(ops(json!({"$delete": value})), Ok(vec![ProfileOp::Delete]));
        }
    }

    #[test]
    fn event_limits_apply_to_operation_objects() {
        let limits = Limits {
            properties_max: 2,
            collection_len_max: 2,
            string_chars_max: 3,
            nesting_depth_max: 2,
            ..Limits::default()
        };
        assert!(ops_with(json!({"$set": {"a": 1, "b": 2}}), &limits).is_ok());
        let res = ops_with(json!({"$set": {"a": 1, "b": 2, "c": 3}}), &limits);
        assert_eq!(res.map_err(|invalid| invalid.field), Err("$set".to_owned()));
        assert!(ops_with(json!({"$union": {"a": [1, 2]}}), &limits).is_ok());
        let res = ops_with(json!({"$union": {"a": [1, 2, 3]}}), &limits);
        assert_eq!(
            res.map_err(|invalid| invalid.field),
            Err("$union.a".to_owned())
        );
        assert!(ops_with(json!({"$set": {"deep": {"a": {"b": 1}}}}), &limits).is_ok());
        let res = ops_with(json!({"$set": {"deep": {"a": {"b": {"c": 1}}}}}), &limits);
        assert_eq!(
            res.map_err(|invalid| invalid.field),
            Err("$set.deep".to_owned())
        );
        let res = ops_with(json!({"$set": {"name": "abcd", "list": ["wxyz"]}}), &limits);
        assert_eq!(
            res,
            Ok(vec![ProfileOp::Set(object(
                json!({"name": "abc", "list": ["wxy"]})
            ))])
        );
        assert!(ops_with(json!({"$unset": ["a", "b"]}), &limits).is_ok());
        assert!(ops_with(json!({"$unset": ["a", "b", "c"]}), &limits).is_err());
    }
}
