//! Choosing a part's property columns from the rows it will hold.

use super::raw_properties::{kind, Kind, RowView, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Utf8,
    Int64,
    Float64,
    Boolean,
}

impl ColumnType {
    /// Whether a value can be stored in a column of this type.
    pub(crate) fn holds(self, value: &Scalar<'_>) -> bool {
        match (self, value) {
            (ColumnType::Utf8, Scalar::Str(_)) | (ColumnType::Boolean, Scalar::Bool(_)) | (ColumnType::Int64, Scalar::Int(_)) => true,
            (ColumnType::Float64, Scalar::Int(i)) => i.unsigned_abs() <= FLOAT_EXACT_MAX,
            (ColumnType::Float64, Scalar::BigUnsigned(u)) => *u <= FLOAT_EXACT_MAX,
            (ColumnType::Float64, Scalar::Float(f)) => f.is_finite(),
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

/// Chooses the columns of a part from its rows' properties (JSON objects).
pub(crate) fn choose_columns<'r, 'a: 'r>(rows: impl ExactSizeIterator<Item = RowView<'r, 'a>>, columns_max: usize) -> Vec<PropertyColumn> {
    let n_rows = rows.len();
    let mut stats: hashbrown::HashMap<&'r str, KeyStats> = hashbrown::HashMap::new();
    for row in rows {
        for (key, value) in row.entries() {
            let entry = stats.entry(key).or_default();
            entry.n_rows += 1;
            match kind(value) {
                Kind::Str => entry.n_strings += 1,
                Kind::Bool => entry.n_bools += 1,
                Kind::Int => entry.n_ints += 1,
                Kind::OtherNumber => entry.n_floats += 1,
                Kind::Null | Kind::Nested => {}
            }
        }
    }
    let n_rows_min = (n_rows / COLUMN_SHARE_MIN_DIVISOR).max(1);
    let mut candidates: Vec<(&str, KeyStats)> = stats.into_iter().filter(|(_, s)| s.n_rows >= n_rows_min).collect();
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
const FLOAT_EXACT_MAX: u64 = 1 << 53;
