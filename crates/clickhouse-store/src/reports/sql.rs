//! SQL text for ClickHouse: literals, property reads, filters, and the
//! local-time buckets of a report's interval.

use super::unsupported;
use query::spec::{Filter, Interval, Op, Source};
use query::QueryError;
use serde_json::Value;

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;

/// A string literal: backslashes and quotes escaped.
pub(crate) fn string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The JSON text of a top-level property of the event: `''` when absent.
/// Its own column when it has one (see `schema::PROPERTY_COLUMNS`).
pub(crate) fn property(key: &str) -> String {
    match crate::schema::PROPERTY_COLUMNS.iter().find(|(k, _)| *k == key) {
        Some((_, column)) => (*column).to_owned(),
        None => format!("property_values[indexOf(property_keys, {})]", string(key)),
    }
}

/// The column a report's profile property is uploaded into (see
/// `scope::Scope::with_profiles`): named by the key's bytes in hex, so any
/// key makes a valid identifier.
pub(crate) fn profile_property(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("profile_{hex}")
}

/// The JSON text of an event or profile property, `''` when absent.
pub(crate) fn property_of(source: Source, key: &str) -> String {
    match source {
        Source::Event => property(key),
        Source::Profile => profile_property(key),
    }
}

/// A breakdown segment of a property: its JSON text, `''` when absent or
/// null (one "not set" segment).
pub(crate) fn segment(key: &str) -> String {
    segment_of(Source::Event, key)
}

/// [`segment`] of an event or profile property. Numbers are one type, as
/// in the engine: `3` and `3.0` are one segment (ClickHouse writes the
/// double's shortest text, which [`segment_value`] reads back).
pub(crate) fn segment_of(source: Source, key: &str) -> String {
    let raw = property_of(source, key);
    format!("multiIf({raw} = 'null', '', match({raw}, '^-?[0-9]'), toString(toFloat64OrZero({raw})), {raw})")
}

/// A numeric property's segment as the label of the bucket it falls in
/// (`"< 10"`, `"10 - 100"`, `">= 1000"`), other values as themselves.
pub(crate) fn bucketed_segment(source: Source, key: &str, edges: &[f64]) -> Result<String, QueryError> {
    if edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) || edges.iter().any(|e| !e.is_finite()) {
        return Err(QueryError::BadSpec("breakdown buckets must be increasing finite numbers".into()));
    }
    let raw = property_of(source, key);
    let text = |x: f64| number_json(x).to_string();
    let label = |label: String| string(&Value::String(label).to_string());
    let number = format!("toFloat64OrZero({raw})");
    let mut cases = vec![format!("{number} < {}, {}", exact(edges[0]), label(format!("< {}", text(edges[0]))))];
    for pair in edges.windows(2) {
        cases.push(format!("{number} < {}, {}", exact(pair[1]), label(format!("{} - {}", text(pair[0]), text(pair[1])))));
    }
    let last = label(format!(">= {}", text(edges[edges.len() - 1])));
    Ok(format!("multiIf({raw} = 'null', '', match({raw}, '^-?[0-9]'), multiIf({}, {last}), {raw})", cases.join(", ")))
}

/// A double written so that ClickHouse reads back exactly it: an integer,
/// or the division of its integer mantissa by a power of two (an exact
/// division), never a decimal literal that a parser might round otherwise.
fn exact(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        return format!("{}", x as i64);
    }
    // x = sign * mantissa * 2^exponent, the mantissa an integer.
    let bits = x.to_bits();
    let sign: i64 = if bits >> 63 == 0 { 1 } else { -1 };
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & 0x000f_ffff_ffff_ffff;
    let (mut mantissa, mut exponent) = if biased == 0 { (fraction << 1, -1075) } else { (fraction | (1 << 52), biased - 1075) };
    while mantissa % 2 == 0 && exponent < 0 {
        mantissa /= 2;
        exponent += 1;
    }
    if (-62..0).contains(&exponent) {
        format!("({} / {})", sign * mantissa as i64, 1u64 << -exponent)
    } else {
        format!("{x:?}")
    }
}

/// The engine's JSON of a number: integers without a fraction.
fn number_json(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        Value::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map(Value::Number).unwrap_or(Value::Null)
    }
}

/// A segment's JSON value from [`segment`]'s text (`''`: not set); numbers
/// as the engine writes them.
pub(crate) fn segment_value(raw: &str) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Number(n)) => raw.parse::<f64>().map(number_json).unwrap_or(Value::Number(n)),
        Ok(value) => value,
        Err(_) => Value::String(raw.to_owned()),
    }
}

/// The test of an event name (`$any`: every event).
pub(crate) fn event_named(event: &str) -> String {
    if event == "$any" { "1".to_owned() } else { format!("event = {}", string(event)) }
}

/// An event selector's test: its name and its own filters.
pub(crate) fn selector(event: &str, filters: &[Filter], cohorts: &Cohorts) -> Result<String, QueryError> {
    Ok(format!("({} AND {})", event_named(event), filters_with(filters, cohorts)?))
}

/// The predicate of a list of filters (all must hold); `1` for none.
pub(crate) fn filters(list: &[Filter]) -> Result<String, QueryError> {
    filters_with(list, &Cohorts::new())
}

/// Each cohort's members as a statement of units (see `cohorts`).
pub(crate) type Cohorts = std::collections::HashMap<i64, String>;

/// [`filters`] that may test cohort membership, with `cohorts` holding the
/// statement of each cohort the filters name.
pub(crate) fn filters_with(list: &[Filter], cohorts: &Cohorts) -> Result<String, QueryError> {
    if list.is_empty() {
        return Ok("1".to_owned());
    }
    let parts = list.iter().map(|one| filter(one, cohorts)).collect::<Result<Vec<_>, _>>()?;
    Ok(format!("({})", parts.join(" AND ")))
}

fn filter(one: &Filter, cohorts: &Cohorts) -> Result<String, QueryError> {
    match one {
        Filter::Property { property: key, op, value, source } => property_test(&property_of(*source, key), *op, value),
        Filter::Cohort { cohort } => Ok(format!("unit IN ({})", cohorts.get(cohort).ok_or_else(|| unsupported("a cohort filter here"))?)),
        Filter::NotCohort { not_cohort } => Ok(format!("unit NOT IN ({})", cohorts.get(not_cohort).ok_or_else(|| unsupported("a cohort filter here"))?)),
        Filter::Any { any } => {
            let parts = any.iter().map(|one| filter(one, cohorts)).collect::<Result<Vec<_>, _>>()?;
            Ok(if parts.is_empty() { "0".to_owned() } else { format!("({})", parts.join(" OR ")) })
        }
        Filter::All { all } => filters_with(all, cohorts),
    }
}

/// `raw` (a value's JSON text, `''` when absent) tested as docs/reports.md
/// says: strings as strings, numbers as one numeric type, booleans as
/// booleans, lists and objects by their compact text.
fn property_test(raw: &str, op: Op, value: &Value) -> Result<String, QueryError> {
    let is_number = format!("match({raw}, '^-?[0-9]')");
    let number = |v: &Value| -> Result<f64, QueryError> {
        v.as_f64().ok_or_else(|| QueryError::BadSpec(format!("{op:?} needs a number, got {v}")))
    };
    let equals = |v: &Value| -> String {
        match v {
            Value::Number(n) => format!("({is_number} AND toFloat64OrZero({raw}) = {})", exact(n.as_f64().unwrap_or(0.0))),
            other => format!("{raw} = {}", string(&other.to_string())),
        }
    };
    let list = |v: &Value| -> Result<Vec<Value>, QueryError> {
        v.as_array().cloned().ok_or_else(|| QueryError::BadSpec(format!("{op:?} needs a list, got {v}")))
    };
    Ok(match op {
        Op::Eq => equals(value),
        Op::Neq => format!("NOT ({})", equals(value)),
        Op::In => {
            let parts: Vec<String> = list(value)?.iter().map(equals).collect();
            if parts.is_empty() { "0".to_owned() } else { format!("({})", parts.join(" OR ")) }
        }
        Op::NotIn => {
            let parts: Vec<String> = list(value)?.iter().map(equals).collect();
            if parts.is_empty() { "1".to_owned() } else { format!("NOT ({})", parts.join(" OR ")) }
        }
        Op::Gt => format!("({is_number} AND toFloat64OrZero({raw}) > {})", exact(number(value)?)),
        Op::Gte => format!("({is_number} AND toFloat64OrZero({raw}) >= {})", exact(number(value)?)),
        Op::Lt => format!("({is_number} AND toFloat64OrZero({raw}) < {})", exact(number(value)?)),
        Op::Lte => format!("({is_number} AND toFloat64OrZero({raw}) <= {})", exact(number(value)?)),
        Op::Between => {
            let bounds = list(value)?;
            let [low, high] = bounds.as_slice() else { return Err(QueryError::BadSpec("between needs [low, high]".into())) };
            format!("({is_number} AND toFloat64OrZero({raw}) >= {} AND toFloat64OrZero({raw}) <= {})", exact(number(low)?), exact(number(high)?))
        }
        Op::Set => format!("({raw} != '' AND {raw} != 'null')"),
        Op::NotSet => format!("({raw} = '' OR {raw} = 'null')"),
        Op::Contains | Op::NotContains => {
            let needle = value.as_str().ok_or_else(|| QueryError::BadSpec(format!("{op:?} needs a string value, got {value}")))?;
            // A string value, decoded from its JSON text, containing the needle.
            let decoded = format!("visitParamExtractString(concat('{{\"v\":', {raw}, '}}'), 'v')");
            let contains = format!("(startsWith({raw}, '\"') AND position({decoded}, {}) > 0)", string(needle));
            if op == Op::Contains { contains } else { format!("NOT {contains}") }
        }
    })
}

/// The `numerator / denominator` quantile of a sorted array column,
/// interpolated between the two nearest ranks exactly as the engine's
/// `quantile` computes it (the same floating-point steps); NULL for an empty
/// array. The fraction is written as an integer division, which gives the
/// same double as the engine's literal whatever the engine's literal parser.
pub(crate) fn quantile(sorted: &str, numerator: u32, denominator: u32) -> String {
    let position = format!("(({numerator} / {denominator}) * (length({sorted}) - 1))");
    let lower = format!("toUInt64(floor({position}))");
    let fraction = format!("({position} - floor({position}))");
    let low = format!("toFloat64({sorted}[{lower} + 1])");
    let high = format!("toFloat64({sorted}[{lower} + 2])");
    format!("if(length({sorted}) = 0, NULL, if({fraction} = 0 OR {lower} + 1 >= length({sorted}), {low}, {low} + ({high} - {low}) * {fraction}))")
}

/// The bucket of `time_ms` as an integer: for `hour` the local hour number,
/// else the local day number of the bucket's first day (the day, its week's
/// Monday, its month's first). `offsets` are the zone's `(from, offset)`.
pub(crate) fn bucket(interval: Interval, offsets: &[(i64, i64)]) -> String {
    bucket_of("time_ms", interval, offsets)
}

/// [`bucket`] of another column of milliseconds.
pub(crate) fn bucket_of(column: &str, interval: Interval, offsets: &[(i64, i64)]) -> String {
    let offset = match offsets {
        [] => "0".to_owned(),
        [(_, only)] => only.to_string(),
        [(_, first), rest @ ..] => {
            let mut cases: Vec<String> = Vec::new();
            let mut previous = *first;
            for (from, offset) in rest {
                cases.push(format!("{column} < {from}, {previous}"));
                previous = *offset;
            }
            format!("multiIf({}, {previous})", cases.join(", "))
        }
    };
    let local = format!("({column} + {offset})");
    let day = format!("intDiv({local}, {MS_PER_DAY})");
    match interval {
        Interval::Hour => format!("intDiv({local}, {MS_PER_HOUR})"),
        Interval::Day => day,
        Interval::Week => format!("({day} - (({day} + 3) % 7))"),
        Interval::Month => format!("toInt64(toUInt16(toStartOfMonth(toDate(toUInt16({day})))))"),
    }
}

/// The engine's label of a bucket number from [`bucket`].
pub(crate) fn bucket_label(interval: Interval, bucket: i64) -> String {
    let date_of = |day: i64| jiff::civil::date(1970, 1, 1).checked_add(jiff::Span::new().days(day)).map(|d| d.to_string()).unwrap_or_default();
    match interval {
        Interval::Hour => format!("{}T{:02}:00", date_of(bucket.div_euclid(24)), bucket.rem_euclid(24)),
        _ => date_of(bucket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped() {
        assert_eq!(string("it's a \\ test"), "'it\\'s a \\\\ test'");
    }

    #[test]
    fn buckets_are_labelled_as_the_engine_labels_them() {
        // 2026-11-26 is day 20783, a Thursday; its week starts on Monday the 23rd.
        assert_eq!(bucket_label(Interval::Day, 20783), "2026-11-26");
        assert_eq!(bucket_label(Interval::Hour, 20783 * 24 + 7), "2026-11-26T07:00");
        let week_start = 20783 - ((20783 + 3) % 7);
        assert_eq!(bucket_label(Interval::Week, week_start), "2026-11-23");
        assert_eq!(bucket(Interval::Day, &[(0, 0)]), "intDiv((time_ms + 0), 86400000)");
        assert!(bucket(Interval::Day, &[(0, 3_600_000), (100, 7_200_000)]).contains("multiIf(time_ms < 100, 3600000, 7200000)"));
    }

    #[test]
    fn numbers_are_one_type_and_written_exactly() {
        assert_eq!(segment_value("3.0"), serde_json::json!(3));
        assert_eq!(segment_value("2.5"), serde_json::json!(2.5));
        assert_eq!(segment_value("\"3\""), serde_json::json!("3"));
        assert_eq!(segment_value(""), Value::Null);
        assert_eq!(exact(100.0), "100");
        assert_eq!(exact(100.5), "(201 / 2)");
        assert_eq!(exact(0.1), "(3602879701896397 / 36028797018963968)");
        assert_eq!(exact(-2.75), "(-11 / 4)");
        assert!(matches!(bucketed_segment(Source::Event, "n", &[2.0, 1.0]), Err(QueryError::BadSpec(_))));
        let sql = bucketed_segment(Source::Event, "n", &[10.0, 100.0]).unwrap();
        assert!(sql.contains("'\"< 10\"'") && sql.contains("'\"10 - 100\"'") && sql.contains("'\">= 100\"'"), "{sql}");
    }

    #[test]
    fn filters_read_typed_values() {
        let f: Vec<Filter> = serde_json::from_value(serde_json::json!([{"property": "plan", "op": "eq", "value": "pro"}, {"property": "n", "op": "gt", "value": 2}])).unwrap();
        let sql = filters(&f).unwrap();
        assert!(sql.contains("property_values[indexOf(property_keys, 'plan')] = '\"pro\"'"), "{sql}");
        assert!(sql.contains("toFloat64OrZero(property_values[indexOf(property_keys, 'n')]) > 2"), "{sql}");
        let cohort: Vec<Filter> = serde_json::from_value(serde_json::json!([{"cohort": 3}])).unwrap();
        assert!(matches!(filters(&cohort), Err(QueryError::Unsupported(_))));
    }
}
