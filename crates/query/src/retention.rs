//! Retention: people born (first-time or recurring) in each cohort bucket,
//! and in which rolling brackets after their birth they came back.

use crate::calendar::{parse_date, MS_PER_DAY};
use crate::context::Context;
use crate::error::QueryError;
use crate::filter::compile_all;
use crate::parallel::over_units;
use crate::result::{RetentionCohort, RetentionResult};
use crate::spec::{Interval, RetentionKind, RetentionMode, RetentionSpec, RetentionUnit};

const MAX_PERIODS: usize = 400;

pub(crate) fn run(context: &Context<'_>, spec: &RetentionSpec) -> Result<RetentionResult, QueryError> {
    let table = context.table;
    if spec.periods == 0 || spec.periods > MAX_PERIODS {
        return Err(QueryError::bad(format!("periods must be 1 to {MAX_PERIODS}")));
    }
    let from = parse_date(&spec.from, "from")?;
    let to = parse_date(&spec.to, "to")?;
    context.calendar.range(from, to)?;
    let (interval, unit_ms) = match spec.unit {
        RetentionUnit::Day => (Interval::Day, MS_PER_DAY),
        RetentionUnit::Week => (Interval::Week, 7 * MS_PER_DAY),
        RetentionUnit::Month => (Interval::Month, 30 * MS_PER_DAY),
    };
    let buckets = context.calendar.buckets(from, to, interval);
    let (start, end) = buckets.range();
    let mut born_filters = spec.filters.clone();
    born_filters.extend(spec.born.filters.iter().cloned());
    let mut return_filters = spec.filters.clone();
    return_filters.extend(spec.returning.filters.iter().cloned());
    let born_filter = compile_all(context, &born_filters)?;
    let return_filter = compile_all(context, &return_filters)?;
    let (born_trivial, return_trivial) = (born_filter.is_trivial(), return_filter.is_trivial());
    let code = |name: &str| if name == "$any" { Some(None) } else { table.event_code(name).map(Some) };
    let (Some(born_code), return_code) = (code(&spec.born.event), code(&spec.returning.event)) else {
        return Ok(RetentionResult::default());
    };
    let periods = spec.periods;
    let n_labels = buckets.labels.len();
    struct Acc {
        sizes: Vec<u64>,
        counts: Vec<u64>,
        brackets: Vec<bool>,
    }
    let accumulators = over_units(
        table,
        || Acc { sizes: vec![0; n_labels], counts: vec![0; n_labels * periods], brackets: vec![false; periods] },
        |acc, units| {
            for unit in units {
                let rows = table.rows_of(unit);
                let is_born = |row: usize| born_code.is_none_or(|c| c == table.events[row]) && (born_trivial || born_filter.test(row, unit));
                // Births: (row, time, cohort label).
                let mut births: Vec<(usize, i64, usize)> = Vec::new();
                match spec.retention {
                    RetentionKind::FirstTime => {
                        if let Some(row) = rows.clone().find(|r| is_born(*r)) {
                            let time = table.times[row];
                            if time >= start && time < end {
                                births.push((row, time, buckets.label(time)));
                            }
                        }
                    }
                    RetentionKind::Recurring => {
                        let first = table.first_at_or_after(rows.clone(), start);
                        for row in first..rows.end {
                            let time = table.times[row];
                            if time >= end {
                                break;
                            }
                            if is_born(row) {
                                let label = buckets.label(time);
                                if births.last().is_none_or(|b| b.2 != label) {
                                    births.push((row, time, label));
                                }
                            }
                        }
                    }
                }
                let Some(return_code) = return_code else {
                    for (_, _, label) in &births {
                        acc.sizes[*label] += 1;
                    }
                    continue;
                };
                for (birth_row, birth, label) in births {
                    acc.sizes[label] += 1;
                    acc.brackets.iter_mut().for_each(|b| *b = false);
                    let first = table.first_at_or_after(rows.clone(), birth);
                    let limit = birth.saturating_add(unit_ms.saturating_mul(periods as i64));
                    let mut last_bracket: Option<usize> = None;
                    for row in first..rows.end {
                        let time = table.times[row];
                        if time >= limit {
                            break;
                        }
                        if row == birth_row || return_code.is_some_and(|c| c != table.events[row]) || !(return_trivial || return_filter.test(row, unit)) {
                            continue;
                        }
                        let k = ((time - birth) / unit_ms) as usize;
                        acc.brackets[k] = true;
                        last_bracket = Some(last_bracket.map_or(k, |l: usize| l.max(k)));
                    }
                    match spec.mode {
                        RetentionMode::On => {
                            for (k, hit) in acc.brackets.iter().enumerate() {
                                if *hit {
                                    acc.counts[label * periods + k] += 1;
                                }
                            }
                        }
                        RetentionMode::OnOrAfter => {
                            if let Some(last) = last_bracket {
                                for k in 0..=last {
                                    acc.counts[label * periods + k] += 1;
                                }
                            }
                        }
                    }
                }
            }
        },
    );
    let mut sizes = vec![0u64; n_labels];
    let mut counts = vec![0u64; n_labels * periods];
    for acc in accumulators {
        sizes.iter_mut().zip(&acc.sizes).for_each(|(a, b)| *a += b);
        counts.iter_mut().zip(&acc.counts).for_each(|(a, b)| *a += b);
    }
    let cohorts = (0..n_labels)
        .filter(|l| sizes[*l] > 0)
        .map(|l| RetentionCohort { start: buckets.labels[l].clone(), size: sizes[l], counts: counts[l * periods..(l + 1) * periods].to_vec() })
        .collect();
    Ok(RetentionResult { cohorts })
}
