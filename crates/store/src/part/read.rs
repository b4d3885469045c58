//! A Parquet part back to rows, for export and compaction. (The query engine
//! reads columns directly and never materialises rows.)

use super::{DISTINCT_ID, EVENT, INSERT_ID, OVERFLOW, PROPERTY_PREFIX, TIME, USER_KEY};
use crate::buffer::Row;
use crate::error::{Error, IoContext};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType, UInt32Type};
use serde_json::value::RawValue;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};
use std::path::Path;

pub(crate) fn read_part(path: &Path) -> Result<Vec<Row>, Error> {
    let file = std::fs::File::open(path).at(path)?;
    let parquet_error = |source| Error::Parquet { path: path.to_path_buf(), source };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?.build().map_err(parquet_error)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        append_rows(path, &batch, &mut rows)?;
    }
    Ok(rows)
}

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::DataCorruption { path: path.to_path_buf(), detail: detail.into() }
}

fn append_rows(path: &Path, batch: &RecordBatch, rows: &mut Vec<Row>) -> Result<(), Error> {
    let column = |name: &str| batch.column_by_name(name).ok_or_else(|| corrupt(path, format!("missing column {name}")));
    let user_keys = column(USER_KEY)?.as_primitive_opt::<UInt32Type>().ok_or_else(|| corrupt(path, "user_key type"))?;
    let times = column(TIME)?.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| corrupt(path, "time type"))?;
    let names = column(EVENT)?.as_string_opt::<i32>().ok_or_else(|| corrupt(path, "event type"))?;
    let stored_ids = column(DISTINCT_ID)?.as_string_opt::<i32>().ok_or_else(|| corrupt(path, "distinct_id type"))?;
    let distinct_ids = super::derived_id::restore(stored_ids, &super::derived_id::IdSources::of(batch))
        .map_err(|row| corrupt(path, format!("row {row} has no distinct id")))?;
    let insert_ids = super::insert_id::column_as_text(column(INSERT_ID)?).ok_or_else(|| corrupt(path, "insert_id type"))?;
    let overflow = column(OVERFLOW)?.as_string_opt::<i32>().ok_or_else(|| corrupt(path, "properties type"))?;
    let schema = batch.schema();
    let property_columns: Vec<(&str, &dyn Array)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter_map(|(field, array)| Some((field.name().strip_prefix(PROPERTY_PREFIX)?, array.as_ref())))
        .collect();
    rows.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut properties = Map::new();
        for (key, array) in &property_columns {
            if let Some(value) = value_at(*array, i) {
                properties.insert((*key).to_owned(), value);
            }
        }
        if overflow.is_valid(i) {
            let rest: Map<String, Value> =
                serde_json::from_str(overflow.value(i)).map_err(|e| corrupt(path, format!("overflow json: {e}")))?;
            properties.extend(rest);
        }
        let text = serde_json::to_string(&properties).map_err(|e| corrupt(path, e.to_string()))?;
        rows.push(Row {
            user_key: user_keys.value(i),
            time_ms: times.value(i),
            name: names.value(i).into(),
            distinct_id: distinct_ids.value(i).into(),
            insert_id: insert_ids.value(i).into(),
            properties: RawValue::from_string(text).map_err(|e| corrupt(path, e.to_string()))?,
        });
    }
    Ok(())
}

fn value_at(array: &dyn Array, i: usize) -> Option<Value> {
    if array.is_null(i) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(Value::from(array.as_string::<i32>().value(i))),
        DataType::Int64 => Some(Value::from(array.as_primitive::<Int64Type>().value(i))),
        DataType::Float64 => Some(Value::from(array.as_primitive::<Float64Type>().value(i))),
        DataType::Boolean => Some(Value::from(array.as_boolean().value(i))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::part::write_part;
    use serde_json::json;

    fn row(user_key: u32, time_ms: i64, properties: Value) -> Row {
        let Value::Object(properties) = properties else { panic!("properties must be an object") };
        let event = events::Event {
            name: "Page View".into(),
            distinct_id: format!("u{user_key}"),
            time_ms,
            insert_id: format!("id{user_key}x{time_ms}"),
            properties,
        };
        Row { user_key, ..Row::from_event(event) }
    }

    #[test]
    fn rows_round_trip_through_a_part_with_typed_and_spilled_properties() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p/1.parquet");
        let rows = [row(0, 10, json!({"$browser": "Chrome", "n": 1, "x": 1.5, "ok": true})),
            row(0, 20, json!({"$browser": "Firefox", "n": "not a number", "nested": {"a": [1, 2]}})),
            row(1, 5, json!({"$browser": null, "n": 3, "x": 2, "ok": false})),
            row(2, 7, json!({}))];
        let refs: Vec<&Row> = rows.iter().collect();
        let written = write_part(&path, &refs, 64, crate::part::PartCompression::Lasting).unwrap();
        assert!(written.bytes > 0);
        let back = read_part(&path).unwrap();
        assert_eq!(back.len(), rows.len());
        for (original, read) in rows.iter().zip(&back) {
            assert_eq!(read.user_key, original.user_key);
            assert_eq!(read.name, original.name);
            assert_eq!(read.time_ms, original.time_ms);
            assert_eq!(read.insert_id, original.insert_id);
            let (read_properties, original_properties) = (read.parse_properties(), original.parse_properties());
            assert_eq!(read_properties.len(), original_properties.len(), "{read_properties:?}");
            for (key, value) in &original_properties {
                let got = &read_properties[key];
                let same = got == value || (got.as_f64().is_some() && got.as_f64() == value.as_f64());
                assert!(same, "{key}: {got} != {value}");
            }
        }
    }

    fn with_id(distinct_id: &str, user_key: u32, properties: Value) -> Row {
        let Value::Object(properties) = properties else { panic!("properties must be an object") };
        let event = events::Event { name: "E".into(), distinct_id: distinct_id.into(), time_ms: 1, insert_id: format!("i{user_key}"), properties };
        Row { user_key, ..Row::from_event(event) }
    }

    #[test]
    fn derivable_distinct_ids_are_left_out_of_the_file_and_come_back_on_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.parquet");
        let rows = [
            with_id("u1", 0, json!({"$user_id": "u1", "$device_id": "d1"})),
            with_id("$device:d2", 1, json!({"$device_id": "d2"})),
            with_id("u3", 2, json!({"$user_id": "someone else", "$device_id": "d3"})),
            with_id("$device:d4", 3, json!({"$user_id": 4, "$device_id": "d4"})),
            with_id("server-side", 4, json!({})),
        ];
        write_part(&path, &rows.iter().collect::<Vec<_>>(), 64, crate::part::PartCompression::Lasting).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let stored: Vec<arrow::array::RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(|b| b.unwrap()).collect();
        let stored_ids: Vec<Option<&str>> = stored[0].column_by_name(crate::part::DISTINCT_ID).unwrap().as_string::<i32>().iter().collect();
        // Row 3's numeric $user_id is spilled, not in the string column: the device rule holds.
        assert_eq!(stored_ids, vec![None, None, Some("u3"), None, Some("server-side")]);
        let back: Vec<String> = read_part(&path).unwrap().iter().map(|r| r.distinct_id.to_string()).collect();
        assert_eq!(back, ["u1", "$device:d2", "u3", "$device:d4", "server-side"]);
        assert_eq!(read_part(&path).unwrap()[3].parse_properties()["$user_id"], 4);
        let core = crate::part::read_core(&path).unwrap();
        let core_ids: Vec<(u32, &str)> = core.distinct_ids.iter().map(|(k, id)| (*k, id.as_str())).collect();
        assert_eq!(core_ids, vec![(0, "u1"), (1, "$device:d2"), (2, "u3"), (3, "$device:d4"), (4, "server-side")]);
    }

    #[test]
    fn many_valued_integers_are_delta_coded_and_few_valued_ones_keep_a_dictionary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.parquet");
        let rows: Vec<Row> = (0..2000).map(|i| row(i, 1, json!({"latency": i * 7919 % 100_003, "status": 200 + i % 3, "x": i as f64 / 3.0}))).collect();
        write_part(&path, &rows.iter().collect::<Vec<_>>(), 64, crate::part::PartCompression::Lasting).unwrap();
        let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        use parquet::file::reader::FileReader;
        let encodings = |name: &str| {
            let group = reader.metadata().row_group(0);
            let column = group.columns().iter().find(|c| c.column_path().string() == name).unwrap();
            column.encodings().collect::<Vec<_>>()
        };
        use parquet::basic::Encoding;
        assert!(encodings("properties.latency").contains(&Encoding::DELTA_BINARY_PACKED), "{:?}", encodings("properties.latency"));
        assert!(encodings("properties.x").contains(&Encoding::BYTE_STREAM_SPLIT), "{:?}", encodings("properties.x"));
        assert!(encodings("properties.status").contains(&Encoding::RLE_DICTIONARY), "{:?}", encodings("properties.status"));
        let back = read_part(&path).unwrap();
        for (original, read) in rows.iter().zip(&back) {
            assert_eq!(read.parse_properties(), original.parse_properties());
        }
    }

    #[test]
    fn a_column_limit_sends_the_rest_to_the_overflow_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.parquet");
        let rows: Vec<Row> = (0..10).map(|i| row(i, 1, json!({"a": i, "b": "x", "c": true}))).collect();
        write_part(&path, &rows.iter().collect::<Vec<_>>(), 1, crate::part::PartCompression::Transient).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names.iter().filter(|n| n.starts_with(PROPERTY_PREFIX)).count(), 1, "{names:?}");
        let back = read_part(&path).unwrap();
        assert_eq!(back[3].parse_properties(), rows[3].parse_properties());
    }
}
