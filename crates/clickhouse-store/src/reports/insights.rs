//! Insights in ClickHouse SQL: per entry, one `GROUP BY bucket, segment`
//! statement for the points and, with a breakdown, one `GROUP BY segment`
//! for the whole-range totals that order and limit the segments (uniques
//! cannot be summed from the points). Shaped into the engine's result.

use super::sql;
use super::backend;
use crate::client::Client;
use query::result::{FormulaSeries, InsightsResult, Series};
use query::spec::{Aggregate, Breakdown, InsightsEvent, InsightsSpec, Interval, Measure, Source};
use query::{parse_date, Calendar, QueryError};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

#[derive(serde::Deserialize)]
struct Cell {
    bucket: i64,
    segment: String,
    /// Null: a property aggregate over no values.
    #[serde(deserialize_with = "super::exact_f64_or_null")]
    n: Option<f64>,
}

#[derive(serde::Deserialize)]
struct Total {
    segment: String,
    #[serde(deserialize_with = "super::exact_f64_or_null")]
    n: Option<f64>,
}

pub(crate) fn run(client: &Client, meta: &meta::Meta, project: &meta::Project, spec: &InsightsSpec) -> Result<InsightsResult, QueryError> {
    if spec.events.is_empty() {
        return Err(QueryError::BadSpec("events must list at least one event".into()));
    }
    if spec.events.len() > 26 {
        return Err(QueryError::BadSpec("at most 26 events (A to Z)".into()));
    }
    let formulas = spec
        .formulas
        .iter()
        .map(|formula| query::parse_formula(&formula.expression, spec.events.len()))
        .collect::<Result<Vec<_>, _>>()?;
    let from = parse_date(&spec.from, "from")?;
    let to = parse_date(&spec.to, "to")?;
    let mut result = run_period(client, meta, project, spec, &formulas, from, to)?;
    if spec.compare.is_some() {
        // The range of equal length ending the day before `from`.
        let days = (to - from).get_days() as i64 + 1;
        let previous_to = from.checked_sub(jiff::Span::new().days(1)).map_err(|_| QueryError::BadSpec("from is too early".into()))?;
        let previous_from = previous_to.checked_sub(jiff::Span::new().days(days - 1)).map_err(|_| QueryError::BadSpec("from is too early".into()))?;
        result.previous = Some(Box::new(run_period(client, meta, project, spec, &formulas, previous_from, previous_to)?));
    }
    Ok(result)
}

/// The segment of the segments a limit left out (docs/reports.md).
const OTHER: &str = "$other";

/// Whole-range values per segment (JSON text): a breakdown's order and limit.
type Totals = HashMap<String, Option<f64>>;

/// One entry's points per segment (`None`: no breakdown), in the order met.
type EntryPoints = Vec<(Option<Value>, Vec<Option<f64>>)>;

fn run_period(
    client: &Client,
    meta: &meta::Meta,
    project: &meta::Project,
    spec: &InsightsSpec,
    formulas: &[query::FormulaExpression],
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> Result<InsightsResult, QueryError> {
    // A breakdown's key; a cohort breakdown has none (its segments come
    // from the cohorts' member statements, below).
    let breakdown_key: Option<(Source, &str, Option<&[f64]>)> = match &spec.breakdown {
        None => None,
        Some(Breakdown::Name(key)) => Some((Source::Event, key, None)),
        Some(Breakdown::Property { property, source, buckets }) => Some((*source, property, buckets.as_deref())),
        Some(Breakdown::Cohorts { .. }) => Some((Source::Event, "", None)),
    };
    let calendar = Calendar::new(&project.timezone)?;
    let (start, end) = calendar.range(from, to)?;
    let buckets = calendar.buckets(from, to, spec.interval);
    let label_index: HashMap<&str, usize> = buckets.labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    let bucket_sql = sql::bucket(spec.interval, &calendar.utc_offsets(start, end));
    // A property set to null is "not set", one segment with the absent.
    let filters: Vec<&query::spec::Filter> = spec.filters.iter().chain(spec.events.iter().flat_map(|entry| entry.filters.iter())).collect();
    let cohort_day = parse_date(&spec.to, "to")?;
    let (mut scope, cohorts) = super::prepare(client, meta, project, &spec.unit, (start, end), &filters, spec.breakdown.as_ref(), &calendar, cohort_day)?;
    let segment_sql = match (&spec.breakdown, breakdown_key) {
        // One row per cohort the unit is in (none: no segment), named by its
        // id; membership is a column of the scope's events.
        (Some(Breakdown::Cohorts { cohort }), _) => {
            let flags: Vec<(String, String)> = cohort
                .iter()
                .map(|id| (format!("in_cohort_{id}"), format!("unit IN ({})", cohorts.get(id).map_or("SELECT ''", String::as_str))))
                .collect();
            let tests: Vec<String> = cohort.iter().map(|id| format!("if(in_cohort_{id}, '{id}', '')")).collect();
            scope.add_columns(flags);
            format!("arrayJoin(arrayFilter(c -> c != '', [{}]))", tests.join(", "))
        }
        (_, None) => "''".to_owned(),
        (_, Some((source, key, None))) => sql::segment_of(source, key),
        (_, Some((source, key, Some(edges)))) => sql::bucketed_segment(source, key, edges)?,
    };
    let shared_filters = sql::filters_with(&spec.filters, &cohorts)?;

    let mut result = InsightsResult::default();
    let mut entries: Vec<EntryPoints> = Vec::with_capacity(spec.events.len());
    for entry in &spec.events {
        if matches!(entry.measure, Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90) && entry.property.is_none() {
            return Err(QueryError::BadSpec(format!("measure {:?} needs a property", entry.measure).to_lowercase()));
        }
        let event_test = sql::event_named(&entry.event);
        let predicate = format!("{event_test} AND {shared_filters} AND {}", sql::filters_with(&entry.filters, &cohorts)?);
        // The entry's cells (bucket, segment) and whole-range totals per
        // segment, over the events that also pass `extra`.
        let measure_of = |extra: &str, segment_sql: &str| -> Result<(Vec<Cell>, Totals), QueryError> {
            let predicate = format!("{predicate} AND {extra}");
            Ok(match entry.measure {
                Measure::Dau | Measure::Wau | Measure::Mau => {
                    if spec.interval != Interval::Day {
                        return Err(QueryError::BadSpec("dau, wau and mau need interval \"day\"".into()));
                    }
                    let window: i64 = match entry.measure {
                        Measure::Dau => 1,
                        Measure::Wau => 7,
                        _ => 30,
                    };
                    // Each event counts on its local day and the window-1 days after.
                    let early = from.checked_sub(jiff::Span::new().days(window - 1)).map_err(|_| QueryError::BadSpec("from is too early".into()))?;
                    let early_start = calendar.day_start(early);
                    let day_sql = sql::bucket(Interval::Day, &calendar.utc_offsets(early_start, end));
                    let events = scope.events_from(&spec.unit, &predicate, early_start);
                    let (first_day, last_day) = (day_number(from), day_number(to));
                    let cells: Vec<Cell> = client
                        .query(&format!(
                            "SELECT local_day + offset AS bucket, segment, toFloat64(uniqExact(unit)) AS n \
                             FROM (SELECT {day_sql} AS local_day, {segment_sql} AS segment, unit FROM ({events})) \
                             ARRAY JOIN range({window}) AS offset WHERE bucket >= {first_day} AND bucket <= {last_day} GROUP BY bucket, segment"
                        ))
                        .map_err(backend)?;
                    // People active in the range itself: the segment's total, and
                    // whether it has a series at all.
                    let rows: Vec<Total> = client
                        .query(&format!("SELECT {segment_sql} AS segment, toFloat64(uniqExact(unit)) AS n FROM ({events}) WHERE time_ms >= {start} GROUP BY segment"))
                        .map_err(backend)?;
                    let totals: Totals = rows.into_iter().map(|t| (t.segment, t.n)).collect();
                    let cells = cells.into_iter().filter(|cell| breakdown_key.is_none() || totals.contains_key(&cell.segment)).collect();
                    (cells, totals)
                }
                Measure::Total | Measure::Uniques | Measure::Frequency | Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90 => {
                    let events = scope.events_of(&spec.unit, &predicate);
                    let cells: Vec<Cell> = client.query(&grouped(entry, &[("bucket", &bucket_sql), ("segment", segment_sql)], &events)).map_err(backend)?;
                    let totals = if breakdown_key.is_some() {
                        let rows: Vec<Total> = client.query(&grouped(entry, &[("segment", segment_sql)], &events)).map_err(backend)?;
                        rows.into_iter().map(|t| (t.segment, t.n)).collect()
                    } else {
                        HashMap::new()
                    };
                    (cells, totals)
                }
            })
        };
        let (cells, totals) = measure_of("1", &segment_sql)?;
        let mut points: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
        if breakdown_key.is_none() {
            points.insert(String::new(), vec![empty_value(entry.measure); buckets.labels.len()]);
        }
        for cell in cells {
            let label = sql::bucket_label(spec.interval, cell.bucket);
            let Some(&index) = label_index.get(label.as_str()) else { continue };
            points.entry(cell.segment).or_insert_with(|| vec![empty_value(entry.measure); buckets.labels.len()])[index] = cell.n;
        }
        let measure = measure_name(entry.measure);
        // Each series with its segment's JSON text.
        let mut series: Vec<(String, Series)> = points
            .iter()
            .map(|(segment, values)| {
                let series = Series {
                    event: entry.event.clone(),
                    measure: measure.clone(),
                    segment: breakdown_key.map(|_| sql::segment_value(segment)),
                    points: buckets.labels.iter().cloned().zip(values.iter().copied()).collect(),
                    total: totals.get(segment).copied().flatten(),
                };
                (segment.clone(), series)
            })
            .collect();
        let mut entry_points: EntryPoints = points.into_iter().map(|(segment, values)| (breakdown_key.map(|_| sql::segment_value(&segment)), values)).collect();
        if breakdown_key.is_some() {
            series.sort_by(|(_, a), (_, b)| {
                let (x, y) = (a.total.unwrap_or(f64::NEG_INFINITY), b.total.unwrap_or(f64::NEG_INFINITY));
                y.total_cmp(&x).then_with(|| query::compare_segments(a.segment.as_ref().unwrap_or(&Value::Null), b.segment.as_ref().unwrap_or(&Value::Null)))
            });
            if let Some(limit) = spec.limit {
                let left_out: Vec<String> = series.iter().skip(limit).map(|(raw, _)| raw.clone()).collect();
                series.truncate(limit);
                if spec.other && !left_out.is_empty() {
                    // "$other": the left-out segments as one, counted again
                    // (uniques cannot be summed).
                    let in_left_out = match &spec.breakdown {
                        // A person in several left-out cohorts counts once.
                        Some(Breakdown::Cohorts { cohort }) => {
                            let flags: Vec<String> = cohort.iter().filter(|id| left_out.contains(&id.to_string())).map(|id| format!("in_cohort_{id}")).collect();
                            format!("({})", flags.join(" OR "))
                        }
                        _ => format!("{segment_sql} IN ({})", left_out.iter().map(|raw| sql::string(raw)).collect::<Vec<_>>().join(", ")),
                    };
                    let (cells, totals) = measure_of(&in_left_out, "''")?;
                    let mut values = vec![empty_value(entry.measure); buckets.labels.len()];
                    for cell in cells {
                        let label = sql::bucket_label(spec.interval, cell.bucket);
                        if let Some(&index) = label_index.get(label.as_str()) {
                            values[index] = cell.n;
                        }
                    }
                    let total = totals.get("").copied().unwrap_or_else(|| empty_value(entry.measure));
                    let other = Value::from(OTHER);
                    series.push((
                        String::new(),
                        Series {
                            event: entry.event.clone(),
                            measure: measure.clone(),
                            segment: Some(other.clone()),
                            points: buckets.labels.iter().cloned().zip(values.iter().copied()).collect(),
                            total,
                        },
                    ));
                    entry_points.push((Some(other), values));
                }
            }
        }
        entries.push(entry_points);
        let mut series: Vec<Series> = series.into_iter().map(|(_, series)| series).collect();
        if spec.limit.is_none() || breakdown_key.is_none() {
            series.iter_mut().for_each(|s| s.total = None);
        }
        result.series.extend(series);
    }
    // Formulas: per segment of the listed series, in order of first
    // appearance; a letter without the segment counts no events (0).
    let mut kept: Vec<Option<Value>> = Vec::new();
    for series in &result.series {
        if !kept.contains(&series.segment) {
            kept.push(series.segment.clone());
        }
    }
    for (formula, expression) in spec.formulas.iter().zip(formulas) {
        for segment in &kept {
            let points = buckets
                .labels
                .iter()
                .enumerate()
                .map(|(l, label)| {
                    let value = expression.evaluate(&|letter| {
                        entries[letter].iter().find(|(s, _)| s == segment).map_or(empty_value(spec.events[letter].measure), |(_, values)| values[l])
                    });
                    (label.clone(), value)
                })
                .collect();
            result.formulas.push(FormulaSeries { name: formula.name.clone(), expression: formula.expression.clone(), segment: segment.clone(), points });
        }
    }
    Ok(result)
}


fn measure_name(measure: Measure) -> String {
    serde_json::to_value(measure).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A statement of one measure grouped by `keys` (alias, expression), with
/// the value as `n`: events, people, or (`frequency`) each person's events
/// folded by the entry's aggregate as the engine folds them.
fn grouped(entry: &InsightsEvent, keys: &[(&str, &str)], events: &str) -> String {
    let aliases: Vec<&str> = keys.iter().map(|(alias, _)| *alias).collect();
    let selected: Vec<String> = keys.iter().map(|(alias, expression)| format!("{expression} AS {alias}")).collect();
    let (selected, aliases) = (selected.join(", "), aliases.join(", "));
    match entry.measure {
        Measure::Uniques => format!("SELECT {selected}, toFloat64(uniqExact(unit)) AS n FROM ({events}) GROUP BY {aliases}"),
        Measure::Frequency => {
            let fold = match entry.aggregate.unwrap_or_default() {
                Aggregate::Avg => "arraySum(counts) / length(counts)".to_owned(),
                Aggregate::Min => "toFloat64(counts[1])".to_owned(),
                Aggregate::Max => "toFloat64(counts[length(counts)])".to_owned(),
                Aggregate::Median => sql::quantile("counts", 1, 2),
                Aggregate::P90 => sql::quantile("counts", 9, 10),
            };
            format!(
                "SELECT {aliases}, toFloat64({fold}) AS n FROM (SELECT {aliases}, arraySort(groupArray(per_unit)) AS counts \
                 FROM (SELECT {selected}, unit, count() AS per_unit FROM ({events}) GROUP BY {aliases}, unit) GROUP BY {aliases})"
            )
        }
        Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90 => {
            // The numeric values of the property (other values are skipped),
            // sorted: the order-independent aggregates read ranks.
            let raw = sql::property(entry.property.as_deref().unwrap_or_default());
            let fold = match entry.measure {
                Measure::Sum => "if(length(vals) = 0, NULL, arraySum(vals))".to_owned(),
                Measure::Avg => "if(length(vals) = 0, NULL, arraySum(vals) / length(vals))".to_owned(),
                Measure::Min => "if(length(vals) = 0, NULL, vals[1])".to_owned(),
                Measure::Max => "if(length(vals) = 0, NULL, vals[length(vals)])".to_owned(),
                Measure::Median => sql::quantile("vals", 1, 2),
                _ => sql::quantile("vals", 9, 10),
            };
            format!(
                "SELECT {aliases}, {fold} AS n FROM (SELECT {selected}, arraySort(groupArrayIf(toFloat64OrZero({raw}), match({raw}, '^-?[0-9]'))) AS vals \
                 FROM ({events}) GROUP BY {aliases})"
            )
        }
        _ => format!("SELECT {selected}, toFloat64(count()) AS n FROM ({events}) GROUP BY {aliases}"),
    }
}

/// A measure over no events: 0 for counts, null for property aggregates.
fn empty_value(measure: Measure) -> Option<f64> {
    match measure {
        Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90 => None,
        _ => Some(0.0),
    }
}

/// Days since 1970-01-01 of a date.
fn day_number(date: jiff::civil::Date) -> i64 {
    (date - jiff::civil::date(1970, 1, 1)).get_days() as i64
}
