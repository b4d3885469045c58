//! Column-at-a-time reading for the query engine: the core columns of a part
//! (user key, time, event) and, on demand, one property. Nothing is turned
//! into rows; string columns are handed over as dictionaries so that the
//! reader interns each distinct value once per batch, not once per row.

use super::derived_id;
use super::{DISTINCT_ID, EVENT, INSERT_ID, META_SPILLED, OVERFLOW, PROPERTY_PREFIX, TIME, USER_KEY};
use crate::error::{Error, IoContext};
use arrow::array::{Array, AsArray, DictionaryArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema, TimestampMillisecondType, UInt32Type};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const BATCH_ROWS: usize = 65_536;

/// The columns every report needs, in the part's (user key, time) order.
#[derive(Debug, Default)]
pub struct CoreColumns {
    pub user_keys: Vec<u32>,
    pub times: Vec<i64>,
    /// Index into `event_names`.
    pub events: Vec<u32>,
    pub event_names: Vec<String>,
    /// The distinct id of each user key in the part, in key order.
    pub distinct_ids: Vec<(u32, String)>,
}

/// One property value of one row, as stored.
#[derive(Debug, Clone, Copy)]
pub enum PropertyValue<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A list, an object, or a value in the overflow column.
    Json(&'a Value),
}

/// Receives one property column.
pub trait PropertyVisitor {
    fn value(&mut self, row: usize, value: PropertyValue<'_>);
    /// Rows `first..first + keys.len()` hold `values[key]` (`None`: not set).
    fn dictionary(&mut self, first: usize, values: &[&str], keys: &[Option<u32>]);
}

fn parquet_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |source| Error::Parquet { path: path.to_path_buf(), source }
}

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::DataCorruption { path: path.to_path_buf(), detail: detail.into() }
}

/// Opens `path` reading only `columns`, with string columns in `as_dictionary`
/// decoded as dictionaries.
/// Reading `distinct_id` brings the columns it may be derived from, when the
/// part left any id out.
fn open(path: &Path, columns: &[&str], as_dictionary: &[&str]) -> Result<(ParquetRecordBatchReaderBuilder<std::fs::File>, Vec<String>), Error> {
    let file = std::fs::File::open(path).at(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error(path))?;
    let schema = builder.schema().clone();
    let mut columns = columns.to_vec();
    let mut as_dictionary = as_dictionary.to_vec();
    if columns.contains(&DISTINCT_ID) && derived_id::elided_any(&builder) {
        columns.extend(derived_id::SOURCE_COLUMNS);
        as_dictionary.extend(derived_id::SOURCE_COLUMNS);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            if as_dictionary.contains(&field.name().as_str()) && field.data_type() == &DataType::Utf8 {
                Field::new(field.name(), DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), field.is_nullable())
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    let spilled = spilled_keys(&builder);
    let file = std::fs::File::open(path).at(path)?;
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())));
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).map_err(parquet_error(path))?;
    let indices: Vec<usize> = columns.iter().filter_map(|name| schema.index_of(name).ok()).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    Ok((builder.with_projection(mask).with_batch_size(BATCH_ROWS), spilled))
}

fn spilled_keys(builder: &ParquetRecordBatchReaderBuilder<std::fs::File>) -> Vec<String> {
    builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|pairs| pairs.iter().find(|kv| kv.key == META_SPILLED))
        .and_then(|kv| kv.value.as_deref())
        .and_then(|text| serde_json::from_str::<Vec<String>>(text).ok())
        .unwrap_or_default()
}

/// Reads the user key, time and event columns, and the distinct id of each user key.
pub fn read_core(path: &Path) -> Result<CoreColumns, Error> {
    read_core_columns(path, None)
}

/// [`read_core`], and the `$insert_id` of every row (for deduplicating
/// across the parts of a day that is not yet merged).
pub fn read_core_with_insert_ids(path: &Path) -> Result<(CoreColumns, Vec<String>), Error> {
    let mut insert_ids = Vec::new();
    let core = read_core_columns(path, Some(&mut insert_ids))?;
    Ok((core, insert_ids))
}

fn read_core_columns(path: &Path, mut insert_ids: Option<&mut Vec<String>>) -> Result<CoreColumns, Error> {
    let columns: &[&str] = if insert_ids.is_some() { &[USER_KEY, TIME, EVENT, DISTINCT_ID, INSERT_ID] } else { &[USER_KEY, TIME, EVENT, DISTINCT_ID] };
    let (builder, _) = open(path, columns, &[EVENT])?;
    let reader = builder.build().map_err(parquet_error(path))?;
    let mut core = CoreColumns::default();
    let mut name_codes: HashMap<String, u32> = HashMap::new();
    for batch in reader {
        let batch = batch?;
        let column = |name: &str| batch.column_by_name(name).ok_or_else(|| corrupt(path, format!("missing column {name}")));
        let user_keys = column(USER_KEY)?.as_primitive_opt::<UInt32Type>().ok_or_else(|| corrupt(path, "user_key type"))?;
        let times = column(TIME)?.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| corrupt(path, "time type"))?;
        let events = column(EVENT)?.as_dictionary_opt::<Int32Type>().ok_or_else(|| corrupt(path, "event type"))?;
        let distinct_ids = column(DISTINCT_ID)?.as_string_opt::<i32>().ok_or_else(|| corrupt(path, "distinct_id type"))?;
        let id_sources = derived_id::IdSources::of(&batch);
        let names = events.values().as_string_opt::<i32>().ok_or_else(|| corrupt(path, "event dictionary type"))?;
        // Dictionaries are small (event names); mapped once per batch.
        let codes: Vec<u32> = (0..names.len())
            .map(|i| {
                let next = name_codes.len() as u32;
                *name_codes.entry(names.value(i).to_owned()).or_insert(next)
            })
            .collect();
        for (i, key) in events.keys().values().iter().enumerate() {
            let code = codes.get(*key as usize).copied().ok_or_else(|| corrupt(path, format!("event key {key} out of range")))?;
            core.events.push(code);
            let user_key = user_keys.value(i);
            if core.distinct_ids.last().is_none_or(|(last, _)| *last != user_key) {
                let id = if distinct_ids.is_valid(i) { Some(distinct_ids.value(i).to_owned()) } else { id_sources.derive(i) };
                core.distinct_ids.push((user_key, id.ok_or_else(|| corrupt(path, format!("row {i} has no distinct id")))?));
            }
        }
        core.user_keys.extend_from_slice(user_keys.values());
        core.times.extend_from_slice(times.values());
        if let Some(out) = insert_ids.as_deref_mut() {
            let ids = super::insert_id::column_as_text(column(INSERT_ID)?).ok_or_else(|| corrupt(path, "insert_id type"))?;
            out.extend((0..ids.len()).map(|i| ids.value(i).to_owned()));
        }
    }
    core.event_names = vec![String::new(); name_codes.len()];
    for (name, code) in name_codes {
        core.event_names[code as usize] = name;
    }
    // A key's rows are contiguous (parts are sorted by key), so this only
    // removes nothing; it guards the invariant the reader relies on.
    core.distinct_ids.dedup_by_key(|(key, _)| *key);
    Ok(core)
}

/// Reads property `key` of every row: from its typed column and, when the key
/// has no column or also spilled there, from the overflow column.
pub fn read_property(path: &Path, key: &str, visitor: &mut dyn PropertyVisitor) -> Result<(), Error> {
    let column_name = format!("{PROPERTY_PREFIX}{key}");
    let (probe, spilled) = open(path, &[], &[])?;
    let has_column = probe.schema().index_of(&column_name).is_ok();
    drop(probe);
    let read_overflow = !has_column || spilled.iter().any(|k| k == key);
    let mut columns = Vec::new();
    if has_column {
        columns.push(column_name.as_str());
    }
    if read_overflow {
        columns.push(OVERFLOW);
    }
    let (builder, _) = open(path, &columns, &[column_name.as_str()])?;
    let reader = builder.build().map_err(parquet_error(path))?;
    // Keys that JSON writes literally can be looked for before parsing a row.
    let literal_key = !key.chars().any(|c| c == '"' || c == '\\' || c.is_control());
    let mut first = 0usize;
    for batch in reader {
        let batch = batch?;
        if has_column
            && let Some(array) = batch.column_by_name(&column_name) {
                visit_typed(path, first, array.as_ref(), visitor)?;
            }
        if read_overflow
            && let Some(array) = batch.column_by_name(OVERFLOW) {
                let overflow = array.as_string_opt::<i32>().ok_or_else(|| corrupt(path, "properties type"))?;
                for i in 0..overflow.len() {
                    if overflow.is_null(i) || (literal_key && !overflow.value(i).contains(key)) {
                        continue;
                    }
                    let rest: Map<String, Value> =
                        serde_json::from_str(overflow.value(i)).map_err(|e| corrupt(path, format!("overflow json: {e}")))?;
                    if let Some(value) = rest.get(key) {
                        visit_json(first + i, value, visitor);
                    }
                }
            }
        first += batch.num_rows();
    }
    Ok(())
}

fn visit_typed(path: &Path, first: usize, array: &dyn Array, visitor: &mut dyn PropertyVisitor) -> Result<(), Error> {
    match array.data_type() {
        DataType::Dictionary(_, _) => {
            let dictionary: &DictionaryArray<Int32Type> = array.as_dictionary_opt().ok_or_else(|| corrupt(path, "dictionary key type"))?;
            let values = dictionary.values().as_string_opt::<i32>().ok_or_else(|| corrupt(path, "dictionary value type"))?;
            let texts: Vec<&str> = (0..values.len()).map(|i| values.value(i)).collect();
            let keys: Vec<Option<u32>> = dictionary.keys().iter().map(|key| key.map(|k| k as u32)).collect();
            visitor.dictionary(first, &texts, &keys);
        }
        DataType::Utf8 => {
            let strings = array.as_string::<i32>();
            for i in 0..strings.len() {
                if strings.is_valid(i) {
                    visitor.value(first + i, PropertyValue::Str(strings.value(i)));
                }
            }
        }
        DataType::Int64 => {
            let numbers = array.as_primitive::<Int64Type>();
            for i in 0..numbers.len() {
                if numbers.is_valid(i) {
                    visitor.value(first + i, PropertyValue::Int(numbers.value(i)));
                }
            }
        }
        DataType::Float64 => {
            let numbers = array.as_primitive::<Float64Type>();
            for i in 0..numbers.len() {
                if numbers.is_valid(i) {
                    visitor.value(first + i, PropertyValue::Float(numbers.value(i)));
                }
            }
        }
        DataType::Boolean => {
            let flags = array.as_boolean();
            for i in 0..flags.len() {
                if flags.is_valid(i) {
                    visitor.value(first + i, PropertyValue::Bool(flags.value(i)));
                }
            }
        }
        other => return Err(corrupt(path, format!("property column of type {other}"))),
    }
    Ok(())
}

/// Hands a JSON value to the visitor in its most specific form. JSON null is
/// "not set".
pub fn visit_json(row: usize, value: &Value, visitor: &mut dyn PropertyVisitor) {
    match value {
        Value::Null => {}
        Value::String(text) => visitor.value(row, PropertyValue::Str(text)),
        Value::Bool(flag) => visitor.value(row, PropertyValue::Bool(*flag)),
        Value::Number(number) => match number.as_i64() {
            Some(int) => visitor.value(row, PropertyValue::Int(int)),
            None => visitor.value(row, PropertyValue::Float(number.as_f64().unwrap_or(f64::NAN))),
        },
        Value::Array(_) | Value::Object(_) => visitor.value(row, PropertyValue::Json(value)),
    }
}
