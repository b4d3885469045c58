//! Rows to a Parquet part.

use super::raw_properties::{scalar, RowEntries, Scalar};
use super::schema::{choose_columns, ColumnType, PropertyColumn};
use super::{derived_id, encoding};
use super::{DISTINCT_ID, EVENT, FORMAT_VERSION, INSERT_ID, META_FORMAT, META_SPILLED, OVERFLOW, PROPERTY_PREFIX, TIME, USER_KEY};
use crate::buffer::Row;
use crate::error::{Error, IoContext};
use arrow::array::{ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder};
use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Rows per Parquet row group: large enough for good compression, small
/// enough that a reader can skip by statistics.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Size facts of a written part.
pub(crate) struct WrittenPart {
    pub(crate) bytes: u64,
}

/// Writes `rows`, which must be sorted by (user key, time), to `path`. The
/// file is not yet durable: the caller syncs the filesystem once for all the
/// parts of a flush (see `Flusher::make_durable`) before any is published.
/// How a part's pages are compressed. Flushed parts (level 0) live only until
/// their first merge and are read back once: LZ4 is cheap both ways. Merged
/// parts are the ones that stay: zstd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartCompression {
    Transient,
    Lasting,
}

impl PartCompression {
    pub(crate) fn for_level(level: u32) -> PartCompression {
        if level == 0 { PartCompression::Transient } else { PartCompression::Lasting }
    }

    /// Flushed parts are read whole, by their first merge or a day's scan:
    /// statistics per column chunk (readers use their null counts) are all
    /// they need, without a column or offset index. Lasting parts keep page
    /// statistics for other readers of the files.
    fn statistics(self) -> EnabledStatistics {
        match self {
            PartCompression::Transient => EnabledStatistics::Chunk,
            PartCompression::Lasting => EnabledStatistics::Page,
        }
    }

    fn codec(self) -> Compression {
        match self {
            PartCompression::Transient => Compression::LZ4_RAW,
            PartCompression::Lasting => Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
        }
    }
}

pub(crate) fn write_part(path: &Path, rows: &[&Row], columns_max: usize, compression: PartCompression) -> Result<WrittenPart, Error> {
    debug_assert!(rows.windows(2).all(|w| (w[0].user_key, w[0].time_ms) <= (w[1].user_key, w[1].time_ms)));
    // The buffer keeps the JSON text; it is read once, into slices of itself.
    let properties = RowEntries::read(rows);
    let columns = choose_columns(properties.rows(), columns_max);
    let mut spilled = BTreeSet::new();
    let batch = build_batch(rows, &properties, &columns, &mut spilled)?;
    write_batch(path, &batch, &spilled, compression)
}

/// Rows per slice in [`write_batch`].
const SLICE_ROWS: usize = 16 * 1024;

/// Writes a batch in the part layout (sorted, deduplicated by the caller);
/// not yet durable, as for [`write_part`]. String columns may be dictionaries
/// (a merge keeps them so): they are written as plain strings, one slice at
/// a time, so that only a slice is ever decoded.
pub(crate) fn write_batch(path: &Path, batch: &RecordBatch, spilled: &BTreeSet<String>, compression: PartCompression) -> Result<WrittenPart, Error> {
    let plain = |data_type: &DataType| match data_type {
        DataType::Dictionary(_, values) => values.as_ref().clone(),
        other => other.clone(),
    };
    // From format 3 a distinct id may be left to its `$user_id` or `$device_id`.
    let nullable = |f: &Field| f.is_nullable() || f.name() == DISTINCT_ID;
    let fields: Vec<Field> = batch.schema().fields().iter().map(|f| Field::new(f.name(), plain(f.data_type()), nullable(f))).collect();
    let schema = Arc::new(Schema::new(fields));
    let distinct_id_index = schema.index_of(DISTINCT_ID).ok();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    let file = std::fs::File::create(path).at(path)?;
    let parquet_error = |source| Error::Parquet { path: path.to_path_buf(), source };
    // Flushed parts live until their first merge: only lasting ones are worth the count.
    let encodings = if compression == PartCompression::Lasting { encoding::choose(batch) } else { Vec::new() };
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties(spilled, &encodings, compression))).map_err(parquet_error)?;
    let n = batch.num_rows();
    // An empty batch is written too: the part then holds its schema.
    let starts: Vec<usize> = if n == 0 { vec![0] } else { (0..n).step_by(SLICE_ROWS).collect() };
    for offset in starts {
        let slice = batch.slice(offset, SLICE_ROWS.min(n - offset));
        let columns = slice
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| if column.data_type() == field.data_type() { Ok(column.clone()) } else { arrow::compute::cast(column, field.data_type()) })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let mut plain_slice = RecordBatch::try_new(schema.clone(), columns)?;
        if let Some(index) = distinct_id_index
            && let Some(distinct_ids) = plain_slice.column(index).as_string_opt::<i32>()
        {
            let elided = derived_id::elide(distinct_ids, &derived_id::IdSources::of(&plain_slice));
            let mut columns = plain_slice.columns().to_vec();
            columns[index] = Arc::new(elided);
            plain_slice = RecordBatch::try_new(schema.clone(), columns)?;
        }
        writer.write(&plain_slice).map_err(parquet_error)?;
    }
    let file = writer.into_inner().map_err(parquet_error)?;
    let bytes = file.metadata().at(path)?.len();
    Ok(WrittenPart { bytes })
}

fn writer_properties(spilled: &BTreeSet<String>, encodings: &[(String, Encoding)], compression: PartCompression) -> WriterProperties {
    let spilled_json = serde_json::to_string(spilled).unwrap_or_else(|_| "[]".to_owned());
    let sorting = [0, 1].map(|column_idx| SortingColumn { column_idx, descending: false, nulls_first: false });
    let mut builder = WriterProperties::builder()
        .set_compression(compression.codec())
        .set_dictionary_enabled(true)
        .set_statistics_enabled(compression.statistics())
        .set_offset_index_disabled(compression == PartCompression::Transient)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .set_column_dictionary_enabled(ColumnPath::from(TIME), false)
        // Every insert id is unique: a dictionary only adds its indices, and
        // its lengths (nearly all 16) delta-coded cost next to nothing.
        .set_column_dictionary_enabled(ColumnPath::from(INSERT_ID), false)
        .set_column_encoding(ColumnPath::from(INSERT_ID), Encoding::DELTA_LENGTH_BYTE_ARRAY)
        .set_column_encoding(ColumnPath::from(TIME), Encoding::DELTA_BINARY_PACKED)
        // Sorted user keys: runs of one key, deltas of 0 or small steps.
        .set_column_dictionary_enabled(ColumnPath::from(USER_KEY), false)
        .set_column_encoding(ColumnPath::from(USER_KEY), Encoding::DELTA_BINARY_PACKED)
        .set_sorting_columns(Some(sorting.to_vec()));
    for (name, encoding) in encodings {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(name.as_str()), false).set_column_encoding(ColumnPath::from(name.as_str()), *encoding);
    }
    builder
        .set_key_value_metadata(Some(vec![
            KeyValue::new(META_FORMAT.to_owned(), FORMAT_VERSION.to_owned()),
            KeyValue::new(META_SPILLED.to_owned(), spilled_json),
        ]))
        .build()
}

enum PropertyBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
}

impl PropertyBuilder {
    fn new(column_type: ColumnType, capacity: usize) -> PropertyBuilder {
        match column_type {
            ColumnType::Utf8 => PropertyBuilder::Utf8(StringBuilder::with_capacity(capacity, capacity * 8)),
            ColumnType::Int64 => PropertyBuilder::Int64(Int64Builder::with_capacity(capacity)),
            ColumnType::Float64 => PropertyBuilder::Float64(Float64Builder::with_capacity(capacity)),
            ColumnType::Boolean => PropertyBuilder::Boolean(BooleanBuilder::with_capacity(capacity)),
        }
    }

    fn append_null(&mut self) {
        match self {
            PropertyBuilder::Utf8(b) => b.append_null(),
            PropertyBuilder::Int64(b) => b.append_null(),
            PropertyBuilder::Float64(b) => b.append_null(),
            PropertyBuilder::Boolean(b) => b.append_null(),
        }
    }

    /// Appends a value the column holds (see `ColumnType::holds`).
    fn append(&mut self, value: &Scalar<'_>) {
        match (self, value) {
            (PropertyBuilder::Utf8(b), Scalar::Str(s)) => b.append_value(s),
            (PropertyBuilder::Int64(b), Scalar::Int(i)) => b.append_value(*i),
            (PropertyBuilder::Float64(b), Scalar::Int(i)) => b.append_value(*i as f64),
            (PropertyBuilder::Float64(b), Scalar::BigUnsigned(u)) => b.append_value(*u as f64),
            (PropertyBuilder::Float64(b), Scalar::Float(f)) => b.append_value(*f),
            (PropertyBuilder::Boolean(b), Scalar::Bool(v)) => b.append_value(*v),
            (builder, _) => builder.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            PropertyBuilder::Utf8(b) => Arc::new(b.finish()),
            PropertyBuilder::Int64(b) => Arc::new(b.finish()),
            PropertyBuilder::Float64(b) => Arc::new(b.finish()),
            PropertyBuilder::Boolean(b) => Arc::new(b.finish()),
        }
    }
}

fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Utf8 => DataType::Utf8,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
    }
}

pub(crate) fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn build_batch(rows: &[&Row], properties: &RowEntries<'_>, columns: &[PropertyColumn], spilled: &mut BTreeSet<String>) -> Result<RecordBatch, Error> {
    let n = rows.len();
    let mut user_keys = UInt32Builder::with_capacity(n);
    let mut times = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut names = StringBuilder::with_capacity(n, n * 12);
    let mut distinct_ids = StringBuilder::with_capacity(n, n * 16);
    let mut insert_ids = BinaryBuilder::with_capacity(n, n * 16);
    let mut insert_id_bytes = Vec::with_capacity(40);
    let mut overflow = StringBuilder::with_capacity(n, n * 16);
    let mut property_builders: Vec<PropertyBuilder> =
        columns.iter().map(|c| PropertyBuilder::new(c.column_type, n)).collect();
    let mut rest = String::new();
    let column_of: hashbrown::HashMap<&str, usize> = columns.iter().enumerate().map(|(index, column)| (column.key.as_str(), index)).collect();
    // The last row each column got a value in.
    let mut filled_in_row = vec![usize::MAX; columns.len()];
    for (row_number, (row, row_properties)) in rows.iter().zip(properties.rows()).enumerate() {
        user_keys.append_value(row.user_key);
        times.append_value(row.time_ms);
        names.append_value(&row.name);
        distinct_ids.append_value(&row.distinct_id);
        insert_id_bytes.clear();
        super::insert_id::encode_into(&row.insert_id, &mut insert_id_bytes);
        insert_ids.append_value(&insert_id_bytes);
        // A spilled value is copied as the JSON text it already is.
        rest.clear();
        let mut spill = |key: &str, raw: &str| {
            rest.push(if rest.is_empty() { '{' } else { ',' });
            rest.push_str(&serde_json::to_string(key).unwrap_or_default());
            rest.push(':');
            rest.push_str(raw);
        };
        // Each value goes to its column or, without one or of another type,
        // to the overflow object; the columns the row lacks get a null.
        for (key, raw) in row_properties.entries() {
            let Some(&index) = column_of.get(key) else {
                spill(key, raw);
                continue;
            };
            let value = scalar(raw);
            if columns[index].column_type.holds(&value) {
                property_builders[index].append(&value);
            } else {
                property_builders[index].append_null();
                if !spilled.contains(key) {
                    spilled.insert(key.to_owned());
                }
                spill(key, raw);
            }
            filled_in_row[index] = row_number;
        }
        for (builder, filled_in) in property_builders.iter_mut().zip(&filled_in_row) {
            if *filled_in != row_number {
                builder.append_null();
            }
        }
        if rest.is_empty() {
            overflow.append_null();
        } else {
            rest.push('}');
            overflow.append_value(&rest);
        }
    }
    let mut fields = vec![
        Field::new(USER_KEY, DataType::UInt32, false),
        Field::new(TIME, time_type(), false),
        Field::new(EVENT, DataType::Utf8, false),
        Field::new(DISTINCT_ID, DataType::Utf8, false),
        Field::new(INSERT_ID, DataType::Binary, false),
    ];
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(user_keys.finish()),
        Arc::new(times.finish()),
        Arc::new(names.finish()),
        Arc::new(distinct_ids.finish()),
        Arc::new(insert_ids.finish()),
    ];
    for (column, mut builder) in columns.iter().zip(property_builders) {
        fields.push(Field::new(format!("{PROPERTY_PREFIX}{}", column.key), arrow_type(column.column_type), true));
        arrays.push(builder.finish());
    }
    fields.push(Field::new(OVERFLOW, DataType::Utf8, true));
    arrays.push(Arc::new(overflow.finish()));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

#[cfg(test)]
mod tests {
    use events::Properties;

    /// The buffer's properties text comes out of a `Map` with its keys in
    /// order, which `raw_properties::read_entries` relies on to skip sorting
    /// (and the overflow objects keep): serde_json's `Map` is a `BTreeMap`
    /// unless its `preserve_order` feature is on somewhere in the build.
    /// This fails if it ever is.
    #[test]
    fn properties_iterate_in_key_order() {
        let mut properties = Properties::new();
        for key in ["zeta", "$os", "alpha", "Beta", "mp_lib", "_x"] {
            properties.insert(key.to_owned(), serde_json::Value::Null);
        }
        let keys: Vec<&String> = properties.keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
