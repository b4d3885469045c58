//! Choosing a part's property columns from the rows it will hold.

use events::Properties;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Utf8,
    Int64,
    Float64,
    Boolean,
}

impl ColumnType {
    /// Whether a value can be stored in a column of this type.
    pub(crate) fn holds(self, value: &Value) -> bool {
        match (self, value) {
            (ColumnType::Utf8, Value::String(_)) => true,
            (ColumnType::Boolean, Value::Bool(_)) => true,
            (ColumnType::Int64, Value::Number(n)) => n.is_i64(),
            (ColumnType::Float64, Value::Number(n)) => float_exact(n),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PropertyColumn {
    pub(crate) key: String,
    pub(crate) column_type: ColumnType,
}

#[derive(Default)]
struct KeyStats {
    n_rows: usize,
    n_strings: usize,
    n_ints: usize,
    n_floats: usize,
    n_bools: usize,
}

/// A key gets a column when it occurs in at least this share of the rows
/// (1 in 64) and is among the `columns_max` most frequent keys.
const COLUMN_SHARE_MIN_DIVISOR: usize = 64;

pub(crate) fn choose_columns(rows: &[Properties], columns_max: usize) -> Vec<PropertyColumn> {
    let mut stats: HashMap<&str, KeyStats> = HashMap::new();
    for properties in rows {
        for (key, value) in properties {
            let entry = stats.entry(key.as_str()).or_default();
            entry.n_rows += 1;
            match value {
                Value::String(_) => entry.n_strings += 1,
                Value::Bool(_) => entry.n_bools += 1,
                Value::Number(n) if n.is_i64() => entry.n_ints += 1,
                Value::Number(_) => entry.n_floats += 1,
                _ => {}
            }
        }
    }
    let n_rows_min = (rows.len() / COLUMN_SHARE_MIN_DIVISOR).max(1);
    let mut candidates: Vec<(&str, KeyStats)> =
        stats.into_iter().filter(|(_, s)| s.n_rows >= n_rows_min).collect();
    candidates.sort_by(|a, b| b.1.n_rows.cmp(&a.1.n_rows).then(a.0.cmp(b.0)));
    let mut columns: Vec<PropertyColumn> = candidates
        .into_iter()
        .filter_map(|(key, s)| Some(PropertyColumn { key: key.to_owned(), column_type: majority_type(&s)? }))
        .take(columns_max)
        .collect();
    columns.sort_by(|a, b| a.key.cmp(&b.key));
    columns
}

fn majority_type(stats: &KeyStats) -> Option<ColumnType> {
    let n_numbers = stats.n_ints + stats.n_floats;
    let best = stats.n_strings.max(n_numbers).max(stats.n_bools);
    if best == 0 {
        return None;
    }
    Some(if best == stats.n_strings {
        ColumnType::Utf8
    } else if best == n_numbers {
        if stats.n_floats == 0 { ColumnType::Int64 } else { ColumnType::Float64 }
    } else {
        ColumnType::Boolean
    })
}

/// Integers beyond 2^53 would lose digits in a float column: they spill.
fn float_exact(number: &serde_json::Number) -> bool {
    const EXACT_MAX: u64 = 1 << 53;
    if let Some(i) = number.as_i64() {
        return i.unsigned_abs() <= EXACT_MAX;
    }
    if let Some(u) = number.as_u64() {
        return u <= EXACT_MAX;
    }
    number.as_f64().is_some_and(f64::is_finite)
}
