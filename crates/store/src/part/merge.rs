//! Merging parts column by column, for compaction: no row is turned back
//! into JSON. The inputs' schemas are unified (a key with integer columns in
//! some parts and float columns in others becomes float, as one part with
//! both would have chosen), the rows are sorted by (user key, time, event,
//! insert id) and deduplicated keeping the copy from the latest input.

use super::write::{write_batch, PartCompression, WrittenPart};
use super::{EVENT, INSERT_ID, META_SPILLED, OVERFLOW, PROPERTY_PREFIX, TIME, USER_KEY};
use crate::error::{Error, IoContext};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, lexsort_to_indices, take, SortColumn};
use arrow::datatypes::{DataType, Field, Schema, TimestampMillisecondType, UInt32Type};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

pub(crate) struct MergedPart {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) min_time_ms: i64,
    pub(crate) max_time_ms: i64,
}

struct Input {
    batch: RecordBatch,
    spilled: BTreeSet<String>,
}

/// String property columns stay dictionary-encoded while merging: a day's
/// rows in memory then take their keys, not a copy of every string.
fn dictionary_of(field: &Field) -> Field {
    if field.name().starts_with(PROPERTY_PREFIX) && field.data_type() == &DataType::Utf8 {
        Field::new(field.name(), DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), field.is_nullable())
    } else {
        field.clone()
    }
}

fn read_input(path: &Path) -> Result<Input, Error> {
    let file = std::fs::File::open(path).at(path)?;
    let parquet_error = |source| Error::Parquet { path: path.to_path_buf(), source };
    let plain = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?.schema().clone();
    let fields: Vec<Field> = plain.fields().iter().map(|f| dictionary_of(f)).collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new_with_metadata(fields, plain.metadata().clone())));
    let file = std::fs::File::open(path).at(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).map_err(parquet_error)?;
    let spilled = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|pairs| pairs.iter().find(|kv| kv.key == META_SPILLED))
        .and_then(|kv| kv.value.as_deref())
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let batches = builder.build().map_err(parquet_error)?.collect::<Result<Vec<_>, _>>()?;
    let batch = binary_insert_ids(concat_batches(&schema, &batches)?)?;
    let batch = super::derived_id::restore_in_batch(batch).map_err(|detail| Error::DataCorruption { path: path.to_path_buf(), detail })?;
    Ok(Input { batch, spilled })
}

/// A format 1 part's text insert ids in the binary form, so that parts of
/// both formats merge (and compare) alike.
fn binary_insert_ids(batch: RecordBatch) -> Result<RecordBatch, Error> {
    let Some(index) = batch.schema().index_of(INSERT_ID).ok().filter(|&i| batch.column(i).data_type() == &DataType::Utf8) else {
        return Ok(batch);
    };
    let text = batch.column(index).as_string::<i32>();
    let mut encoded = arrow::array::BinaryBuilder::with_capacity(text.len(), text.len() * 17);
    let mut scratch = Vec::with_capacity(40);
    for i in 0..text.len() {
        scratch.clear();
        super::insert_id::encode_into(text.value(i), &mut scratch);
        encoded.append_value(&scratch);
    }
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[index] = Field::new(INSERT_ID, DataType::Binary, false);
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(encoded.finish());
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// The unified schema, or `None` when two parts disagree on a column's type
/// in a way a cast cannot settle (the caller then merges row by row).
fn unify(inputs: &[Input]) -> Option<Arc<Schema>> {
    let mut property_types: BTreeMap<String, DataType> = BTreeMap::new();
    let mut core: Vec<Field> = Vec::new();
    for input in inputs {
        for field in input.batch.schema().fields() {
            if !field.name().starts_with(PROPERTY_PREFIX) {
                if !core.iter().any(|f| f.name() == field.name()) {
                    core.push(field.as_ref().clone());
                }
                continue;
            }
            match property_types.get(field.name()) {
                None => {
                    property_types.insert(field.name().clone(), field.data_type().clone());
                }
                Some(known) if known == field.data_type() => {}
                Some(DataType::Int64 | DataType::Float64) if matches!(field.data_type(), DataType::Int64 | DataType::Float64) => {
                    property_types.insert(field.name().clone(), DataType::Float64);
                }
                Some(_) => return None,
            }
        }
    }
    let overflow = core.iter().position(|f| f.name() == OVERFLOW)?;
    let overflow_field = core.remove(overflow);
    let mut fields = core;
    fields.extend(property_types.into_iter().map(|(name, data_type)| Field::new(name, data_type, true)));
    fields.push(overflow_field);
    Some(Arc::new(Schema::new(fields)))
}

fn project(input: &RecordBatch, schema: &Arc<Schema>) -> Result<RecordBatch, Error> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match input.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
            Some(column) => Ok(cast(column, field.data_type())?),
            None => Ok(arrow::array::new_null_array(field.data_type(), input.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>, Error>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Merges the parts at `inputs` (oldest data first) into `output`; `None`
/// when their schemas cannot be unified column-wise.
pub(crate) fn merge_parts(inputs: &[&Path], output: &Path) -> Result<Option<MergedPart>, Error> {
    let inputs = inputs.iter().map(|path| read_input(path)).collect::<Result<Vec<_>, _>>()?;
    let Some(schema) = unify(&inputs) else { return Ok(None) };
    let mut spilled: BTreeSet<String> = BTreeSet::new();
    for input in &inputs {
        spilled.extend(input.spilled.iter().cloned());
        // A key that has a column now but was in this input's overflow.
        let has_overflow = input.batch.column_by_name(OVERFLOW).is_some_and(|c| c.null_count() < c.len());
        if has_overflow {
            for field in schema.fields().iter().filter(|f| f.name().starts_with(PROPERTY_PREFIX)) {
                if input.batch.column_by_name(field.name()).is_none() {
                    spilled.insert(field.name()[PROPERTY_PREFIX.len()..].to_owned());
                }
            }
        }
    }
    // Each copy is dropped as soon as the next exists: a settled day can
    // be a few hundred thousand rows, and compaction runs beside ingestion.
    let projected = inputs.into_iter().map(|input| project(&input.batch, &schema)).collect::<Result<Vec<_>, _>>()?;
    let all = concat_batches(&schema, &projected)?;
    drop(projected);
    let kept = sorted_unique_indices(&all)?;
    let inputs: Vec<ArrayRef> = all.columns().to_vec();
    drop(all);
    // Each input column is dropped as soon as its sorted copy exists.
    let columns = inputs.into_iter().map(|column| take(column.as_ref(), &kept, None)).collect::<Result<Vec<_>, _>>()?;
    let merged = RecordBatch::try_new(schema, columns)?;
    let times = merged.column_by_name(TIME).and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>()).ok_or_else(|| Error::DataCorruption {
        path: output.to_path_buf(),
        detail: "merged time column".to_owned(),
    })?;
    let min_time_ms = arrow::compute::min(times).unwrap_or_default();
    let max_time_ms = arrow::compute::max(times).unwrap_or_default();
    let WrittenPart { bytes } = write_batch(output, &merged, &spilled, PartCompression::Lasting)?;
    Ok(Some(MergedPart { rows: merged.num_rows() as u64, bytes, min_time_ms, max_time_ms }))
}

/// Row indices in (user key, time, event, insert id) order, keeping only the
/// last (latest-ingested) row of each deduplication key.
fn sorted_unique_indices(all: &RecordBatch) -> Result<UInt32Array, Error> {
    let column = |name: &str| all.column_by_name(name).cloned().ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("missing column {name}")));
    let (user_keys, times, events, insert_ids) = (column(USER_KEY)?, column(TIME)?, column(EVENT)?, column(INSERT_ID)?);
    let arrival: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..all.num_rows() as u32));
    let sort_columns: Vec<SortColumn> = [&user_keys, &times, &events, &insert_ids, &arrival]
        .into_iter()
        .map(|values| SortColumn { values: values.clone(), options: None })
        .collect();
    let order = lexsort_to_indices(&sort_columns, None)?;
    let user_keys = user_keys.as_primitive::<UInt32Type>();
    let times = times.as_primitive::<TimestampMillisecondType>();
    let (events, insert_ids) = (events.as_string::<i32>(), insert_ids.as_binary::<i32>());
    let same_key = |a: usize, b: usize| {
        user_keys.value(a) == user_keys.value(b) && times.value(a) == times.value(b) && insert_ids.value(a) == insert_ids.value(b) && events.value(a) == events.value(b)
    };
    let order = order.values();
    let mut kept = Vec::with_capacity(order.len());
    for position in 0..order.len() {
        let row = order[position] as usize;
        let next_is_same = order.get(position + 1).is_some_and(|next| same_key(row, *next as usize));
        if !next_is_same {
            kept.push(row as u32);
        }
    }
    Ok(UInt32Array::from(kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Row;
    use crate::part::{read_part, write_part};
    use serde_json::{json, Value};

    fn row(user_key: u32, time_ms: i64, insert_id: &str, properties: Value) -> Row {
        let Value::Object(properties) = properties else { panic!("not an object") };
        let event = events::Event { name: "E".into(), distinct_id: format!("u{user_key}"), time_ms, insert_id: insert_id.into(), properties };
        Row { user_key, ..Row::from_event(event) }
    }

    fn write(path: &Path, rows: &[Row], columns_max: usize) {
        write_part(path, &rows.iter().collect::<Vec<_>>(), columns_max, crate::part::PartCompression::Transient).unwrap();
    }

    #[test]
    fn merging_unifies_columns_and_keeps_the_latest_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (older, newer, merged) = (dir.path().join("1.parquet"), dir.path().join("2.parquet"), dir.path().join("3.parquet"));
        write(&older, &[row(0, 10, "a", json!({"n": 1, "v": "old"})), row(1, 5, "b", json!({"n": 2}))], 8);
        // In the newer part `n` is a float column and `rare` lives in the overflow (column limit 1).
        write(&newer, &[row(0, 7, "c", json!({"n": 2.5})), row(0, 10, "a", json!({"n": 1.5, "v": "new", "rare": true}))], 1);
        let result = merge_parts(&[older.as_path(), newer.as_path()], &merged).unwrap().expect("schemas unify");
        assert_eq!(result.rows, 3);
        assert_eq!((result.min_time_ms, result.max_time_ms), (5, 10));
        let rows = read_part(&merged).unwrap();
        let keys: Vec<(u32, i64, &str)> = rows.iter().map(|r| (r.user_key, r.time_ms, r.insert_id())).collect();
        assert_eq!(keys, vec![(0, 7, "c"), (0, 10, "a"), (1, 5, "b")]);
        let latest = rows[1].parse_properties();
        assert_eq!(latest["v"], "new", "the newer copy wins: {latest:?}");
        assert_eq!(latest["rare"], true);
        assert_eq!(latest["n"], 1.5);
        assert_eq!(rows[2].parse_properties()["n"], 2.0, "ints and floats share a float column");
    }

    /// Rewrites a part as format 1 wrote it: insert ids as text.
    fn as_format_1(path: &Path) {
        let input = read_input(path).unwrap();
        let index = input.batch.schema().index_of(INSERT_ID).unwrap();
        let text = crate::part::insert_id::column_as_text(input.batch.column(index)).unwrap();
        let mut fields: Vec<Field> = input.batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[index] = Field::new(INSERT_ID, DataType::Utf8, false);
        let mut columns = input.batch.columns().to_vec();
        columns[index] = Arc::new(text);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        write_batch(path, &batch, &input.spilled, PartCompression::Transient).unwrap();
    }

    #[test]
    fn parts_with_text_and_binary_insert_ids_merge_and_deduplicate() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new, merged) = (dir.path().join("1.parquet"), dir.path().join("2.parquet"), dir.path().join("3.parquet"));
        let hex = "1f0911818ab582c09de0a7e4ce8b8a8a";
        let uuid = "d746f56f-db17-430b-983c-181d92dc4b4c";
        write(&old, &[row(0, 10, hex, json!({"v": "old"})), row(0, 11, "k3j4h5g6f7d8s9a0", json!({})), row(1, 5, uuid, json!({}))], 8);
        as_format_1(&old);
        assert_eq!(read_part(&old).unwrap()[0].insert_id(), hex);
        write(&new, &[row(0, 10, hex, json!({"v": "new"})), row(2, 1, "plain", json!({}))], 8);
        let result = merge_parts(&[old.as_path(), new.as_path()], &merged).unwrap().expect("schemas unify");
        assert_eq!(result.rows, 4, "the copy of {hex} is stored once");
        let rows = read_part(&merged).unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.insert_id()).collect();
        assert_eq!(ids, vec![hex, "k3j4h5g6f7d8s9a0", uuid, "plain"]);
        assert_eq!(rows[0].parse_properties()["v"], "new");
    }

    #[test]
    fn left_out_distinct_ids_survive_a_merge_even_where_a_source_column_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, merged) = (dir.path().join("1.parquet"), dir.path().join("2.parquet"), dir.path().join("3.parquet"));
        let with = |key: u32, time: i64, distinct_id: &str, properties: Value| Row { distinct_id: distinct_id.into(), ..row(key, time, &format!("i{time}"), properties) };
        write(&a, &[with(0, 1, "u0", json!({"$user_id": "u0"})), with(1, 2, "$device:d1", json!({"$device_id": "d1"}))], 8);
        // No $user_id column in this part: after the merge its rows hold nulls there.
        write(&b, &[with(1, 3, "$device:d1", json!({"$device_id": "d1"})), with(2, 4, "u2", json!({"$device_id": "d2"}))], 8);
        merge_parts(&[a.as_path(), b.as_path()], &merged).unwrap().expect("schemas unify");
        let ids: Vec<String> = read_part(&merged).unwrap().iter().map(|r| r.distinct_id.to_string()).collect();
        assert_eq!(ids, ["u0", "$device:d1", "$device:d1", "u2"]);
    }

    #[test]
    fn conflicting_column_types_are_left_to_the_row_merge() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("1.parquet"), dir.path().join("2.parquet"));
        write(&a, &[row(0, 1, "a", json!({"x": "text"}))], 8);
        write(&b, &[row(0, 2, "b", json!({"x": true}))], 8);
        assert!(merge_parts(&[a.as_path(), b.as_path()], &dir.path().join("3.parquet")).unwrap().is_none());
    }
}
