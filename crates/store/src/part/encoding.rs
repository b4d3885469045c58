//! Choosing, for a lasting part, the property columns a dictionary does not
//! suit, and their encoding.
//!
//! Parquet's default, a dictionary with bit-packed indices, is right for
//! columns of few values (countries, plans). Where a part holds many values,
//! the indices are wider than a byte and zstd finds nothing in them:
//! - integers (latencies, token counts) take about a quarter less as
//!   bit-packed deltas; byte-stream split would take a third less, but
//!   DuckDB reads that only for floats;
//! - floats take less as byte-stream split (each byte of the value its own
//!   stream for zstd);
//! - strings whose value changes with the user (a company id, a `$user_id`)
//!   repeat within each user's run of rows: as prefix-coded deltas against
//!   the previous row a repeat costs next to nothing, where dictionary
//!   indices cost their full width in every row. A URL changes nearly every
//!   row but recurs: it keeps its dictionary ([`runs_pay`] tells them apart).
//!
//! Measured on the generated SaaS data, 1M events: 32.1 to 30.4 bytes per
//! event (`./scripts/bench.sh --events 1000000`).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use parquet::basic::Encoding;
use std::collections::HashSet;
use std::hash::Hash;

use super::PROPERTY_PREFIX;

/// A column with more distinct values than this in a part gets no dictionary:
/// its indices would be wider than a byte.
const DICTIONARY_VALUES_MAX: usize = 256;

/// Rows looked at per column: merges run beside ingestion, and a sample
/// tells a category from a per-user value as well as every row does. Strings
/// are sampled as one contiguous stretch, since runs are what they are
/// judged by.
const SAMPLE_ROWS: usize = 16 * 1024;

/// The property columns of `batch` that should not be dictionary-encoded, and
/// the encoding each should have instead.
pub(crate) fn choose(batch: &RecordBatch) -> Vec<(String, Encoding)> {
    let mut chosen = Vec::new();
    let step = batch.num_rows().div_ceil(SAMPLE_ROWS).max(1);
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.name().starts_with(PROPERTY_PREFIX) {
            continue;
        }
        let sample = (0..column.len()).step_by(step).filter(|&row| column.is_valid(row));
        let stretch = (0..column.len().min(SAMPLE_ROWS)).filter(|&row| column.is_valid(row));
        let encoding = match column.data_type() {
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                too_many_for_a_dictionary(sample.map(|row| values.value(row))).then_some(Encoding::DELTA_BINARY_PACKED)
            }
            DataType::Float64 => {
                let values = column.as_primitive::<Float64Type>();
                too_many_for_a_dictionary(sample.map(|row| values.value(row).to_bits())).then_some(Encoding::BYTE_STREAM_SPLIT)
            }
            DataType::Utf8 => {
                let values = column.as_string::<i32>();
                runs_pay(stretch.map(|row| values.value(row))).then_some(Encoding::DELTA_BYTE_ARRAY)
            }
            // A merge's string columns.
            DataType::Dictionary(key, _) if **key == DataType::Int32 => {
                let dictionary = column.as_dictionary::<Int32Type>();
                let Some(values) = dictionary.values().as_string_opt::<i32>() else { continue };
                let keys = dictionary.keys();
                runs_pay(stretch.map(|row| values.value(keys.value(row) as usize))).then_some(Encoding::DELTA_BYTE_ARRAY)
            }
            _ => None,
        };
        if let Some(encoding) = encoding {
            chosen.push((field.name().clone(), encoding));
        }
    }
    chosen
}

/// Whether prefix-coded deltas would take clearly less than a dictionary, by
/// a rough count of bytes before compression: a dictionary costs each
/// distinct value once and an index of `log2(distinct)` bits per row; deltas
/// cost about two bytes and the new suffix wherever the value changes from
/// the row before. Per-user values (few changes, many values) pass; URLs and
/// other categories that change every row but recur do not.
fn runs_pay<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let mut distinct = HashSet::new();
    let (mut rows, mut distinct_bytes, mut delta_bytes) = (0usize, 0usize, 0usize);
    let mut previous: Option<&str> = None;
    for value in values {
        rows += 1;
        if distinct.insert(value) {
            distinct_bytes += value.len();
        }
        if previous != Some(value) {
            let shared = previous.map_or(0, |p| p.bytes().zip(value.bytes()).take_while(|(a, b)| a == b).count());
            delta_bytes += 2 + value.len() - shared;
        }
        previous = Some(value);
    }
    if distinct.len() <= DICTIONARY_VALUES_MAX {
        return false;
    }
    let index_bits = usize::BITS - (distinct.len() - 1).leading_zeros();
    let dictionary_bytes = distinct_bytes + rows * index_bits as usize / 8;
    delta_bytes * 4 < dictionary_bytes * 3
}

/// Whether `values` holds more than [`DICTIONARY_VALUES_MAX`] distinct values
/// (stops counting there).
fn too_many_for_a_dictionary<T: Hash + Eq>(values: impl Iterator<Item = T>) -> bool {
    let mut seen = HashSet::with_capacity(DICTIONARY_VALUES_MAX + 1);
    for value in values {
        if seen.insert(value) && seen.len() > DICTIONARY_VALUES_MAX {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, DictionaryArray, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn only_many_valued_columns_leave_the_dictionary() {
        let n = 20_000;
        let users: Vec<String> = (0..n).map(|i| format!("u{}", i / 4)).collect();
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("properties.latency", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i * 37 % 1009)))),
            ("properties.status", Arc::new(Int64Array::from_iter_values((0..n).map(|i| 200 + i % 4)))),
            ("properties.score", Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 / 7.0)))),
            ("properties.company", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("org_{}", i / 3))))),
            ("properties.url", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("/page/{}", i % 600))))),
            ("properties.user", Arc::new(users.iter().map(String::as_str).collect::<DictionaryArray<Int32Type>>())),
            ("time", Arc::new(Int64Array::from_iter_values(0..n))),
        ];
        let schema = Schema::new(columns.iter().map(|(name, c)| Field::new(*name, c.data_type().clone(), true)).collect::<Vec<_>>());
        let batch = RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, c)| c).collect()).unwrap();
        let chosen = choose(&batch);
        assert_eq!(
            chosen,
            vec![
                ("properties.latency".to_owned(), Encoding::DELTA_BINARY_PACKED),
                ("properties.score".to_owned(), Encoding::BYTE_STREAM_SPLIT),
                ("properties.company".to_owned(), Encoding::DELTA_BYTE_ARRAY),
                ("properties.user".to_owned(), Encoding::DELTA_BYTE_ARRAY),
            ],
            "status has 4 values; url changes every row among 600 values, so a dictionary pays"
        );
    }
}
