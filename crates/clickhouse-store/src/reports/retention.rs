//! Retention in ClickHouse SQL: first-time or recurring births, brackets
//! `on` or `on_or_after`, by day, week or month.
//!
//! Per person: the first-ever `born` event (all of the project's history is
//! read for it, as the rule says "first-ever"), as the smallest (time, event)
//! of the born events, and whether that row is also a return; the return
//! times from the birth to the end of the last bracket, less the birth row
//! itself. (Columns a lambda reads are also named outside it: ClickHouse
//! 18.16 drops a subquery column that only a lambda reads.) Each return's bracket is `intDiv(t - birth, unit)`; the outer
//! query counts people per (cohort, bracket) after an `ARRAY JOIN` of each
//! person's distinct brackets (or, `on_or_after`, of `0..=last`).
//! Recurring births are the first born event in range of each cohort bucket,
//! one row per birth after an `ARRAY JOIN`.

use super::sql;
use super::backend;
use crate::client::Client;
use query::result::{RetentionCohort, RetentionResult};
use query::spec::{Interval, RetentionKind, RetentionMode, RetentionSpec, RetentionUnit};
use query::{parse_date, Calendar, QueryError};
use std::collections::BTreeMap;

const MAX_PERIODS: usize = 400;
const MS_PER_DAY: i64 = 86_400_000;

#[derive(serde::Deserialize)]
struct Size {
    cohort: i64,
    n: u64,
}

#[derive(serde::Deserialize)]
struct Count {
    cohort: i64,
    k: i64,
    n: u64,
}

pub(crate) fn run(client: &Client, meta: &meta::Meta, project: &meta::Project, spec: &RetentionSpec) -> Result<RetentionResult, QueryError> {
    if spec.periods == 0 || spec.periods > MAX_PERIODS {
        return Err(QueryError::BadSpec(format!("periods must be 1 to {MAX_PERIODS}")));
    }
    let calendar = Calendar::new(&project.timezone)?;
    let from = parse_date(&spec.from, "from")?;
    let to = parse_date(&spec.to, "to")?;
    calendar.range(from, to)?;
    let (interval, unit_ms) = match spec.unit {
        RetentionUnit::Day => (Interval::Day, MS_PER_DAY),
        RetentionUnit::Week => (Interval::Week, 7 * MS_PER_DAY),
        RetentionUnit::Month => (Interval::Month, 30 * MS_PER_DAY),
    };
    let buckets = calendar.buckets(from, to, interval);
    let start = buckets.starts[0];
    let end = *buckets.starts.last().unwrap_or(&start);
    let periods = spec.periods as i64;
    let horizon = end.saturating_add(unit_ms.saturating_mul(periods));
    // Births may lie anywhere before `end` ("first-ever"); returns up to the
    // last bracket's end.
    let filters: Vec<&query::spec::Filter> = spec.filters.iter().chain(spec.born.filters.iter()).chain(spec.returning.filters.iter()).collect();
    let (scope, cohorts) = super::prepare(client, meta, project, &spec.counted, (0, horizon), &filters, None, &calendar, to)?;
    let test = |event: &str, filters: &[query::spec::Filter]| -> Result<String, QueryError> {
        let mut all = spec.filters.clone();
        all.extend(filters.iter().cloned());
        sql::selector(event, &all, &cohorts)
    };
    let born = test(&spec.born.event, &spec.born.filters)?;
    let returns = test(&spec.returning.event, &spec.returning.filters)?;
    let events = scope.events_of(&spec.counted, &format!("({born} OR {returns})"));
    let offsets = calendar.utc_offsets(start, end);
    let cohort = sql::bucket_of("birth", interval, &offsets);
    // Each birth as (time, event, whether that row is also a return).
    let born_row = format!("tuple(time_ms, event, toUInt8({returns}))");
    // The expression of the person's births, and the columns it reads.
    let (births, helpers) = match spec.retention {
        // The first-ever born event (a birth before the range makes no cohort).
        RetentionKind::FirstTime => (format!("[arraySort(groupArrayIf({born_row}, {born}))[1]]"), String::new()),
        // The first born event in range of each cohort bucket.
        RetentionKind::Recurring => {
            let cohort_of_row = sql::bucket_of("tupleElement(x, 1)", interval, &offsets);
            (
                "arrayFilter((x, c, i) -> i = indexOf(row_cohorts, c), born_rows, row_cohorts, arrayEnumerate(row_cohorts))".to_owned(),
                format!(
                    "arraySort(groupArrayIf({born_row}, {born} AND time_ms >= {start} AND time_ms < {end})) AS born_rows, \
                     arrayMap(x -> {cohort_of_row}, born_rows) AS row_cohorts, "
                ),
            )
        }
    };
    let person_sql = format!(
        "SELECT birth, is_return, {cohort} AS cohort, \
                arrayFilter(t -> t >= birth AND t < birth + {window}, return_times) AS in_window, \
                if(is_return = 1, arrayFilter((t, i) -> NOT (t = birth AND i = indexOf(in_window, birth)), in_window, arrayEnumerate(in_window)), in_window) AS returned, \
                arrayReduce('groupUniqArray', arrayMap(t -> intDiv(t - birth, {unit_ms}), returned)) AS brackets \
         FROM (SELECT tupleElement(first_born, 1) AS birth, tupleElement(first_born, 3) AS is_return, return_times \
               FROM (SELECT {helpers}{births} AS births, groupArrayIf(time_ms, {returns}) AS return_times FROM ({events}) GROUP BY unit) \
               ARRAY JOIN births AS first_born) \
         WHERE birth >= {start} AND birth < {end}",
        window = unit_ms * periods,
    );
    let sizes: Vec<Size> = client.query(&format!("SELECT cohort, count() AS n FROM ({person_sql}) GROUP BY cohort")).map_err(backend)?;
    let brackets = match spec.mode {
        RetentionMode::On => "brackets",
        RetentionMode::OnOrAfter => "range(toUInt64(arrayReduce('max', brackets) + 1))",
    };
    let counts: Vec<Count> = client
        .query(&format!(
            "SELECT cohort, toInt64(bracket) AS k, count() AS n FROM ({person_sql}) ARRAY JOIN {brackets} AS bracket WHERE length(brackets) > 0 GROUP BY cohort, bracket"
        ))
        .map_err(backend)?;
    let label_of = |bucket: i64| sql::bucket_label(interval, bucket);
    let mut cohorts: BTreeMap<usize, RetentionCohort> = BTreeMap::new();
    let index_of: std::collections::HashMap<&str, usize> = buckets.labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    for size in sizes {
        let label = label_of(size.cohort);
        let Some(&index) = index_of.get(label.as_str()) else { continue };
        cohorts.insert(index, RetentionCohort { start: label, size: size.n, counts: vec![0; spec.periods] });
    }
    for count in counts {
        let label = label_of(count.cohort);
        let (Some(index), Ok(k)) = (index_of.get(label.as_str()), usize::try_from(count.k)) else { continue };
        if let Some(cohort) = cohorts.get_mut(index)
            && let Some(cell) = cohort.counts.get_mut(k)
        {
            *cell = count.n;
        }
    }
    Ok(RetentionResult { cohorts: cohorts.into_values().filter(|c| c.size > 0).collect() })
}
