//! Cohorts: sets of people defined by what they did (at least N times, or
//! not at all, within a period) and by their profile properties. Computed at
//! query time, as Mixpanel does, over the same table as every report.

use crate::calendar::{add_days, next_day, parse_date};
use crate::context::Context;
use crate::error::QueryError;
use crate::filter::{compile, RowFilter};
use crate::spec::{CohortPeriod, CohortRule, Filter, Source};
use jiff::civil::Date;

/// Evaluates `rule` for every unit; "the last K days" end on `day`.
pub(crate) fn members(context: &Context<'_>, rule: &CohortRule, day: Date) -> Result<Vec<bool>, QueryError> {
    let n_units = context.table.n_units();
    match rule {
        CohortRule::All { all } => {
            let mut out = vec![true; n_units];
            for rule in all {
                let part = members(context, rule, day)?;
                out.iter_mut().zip(part).for_each(|(o, p)| *o &= p);
            }
            Ok(out)
        }
        CohortRule::Any { any } => {
            let mut out = vec![false; n_units];
            for rule in any {
                let part = members(context, rule, day)?;
                out.iter_mut().zip(part).for_each(|(o, p)| *o |= p);
            }
            Ok(out)
        }
        CohortRule::Profile(filter) => {
            let filter = compile(context, &as_profile_filter(filter))?;
            Ok((0..n_units).map(|unit| filter.test(0, unit)).collect())
        }
        CohortRule::Did { did, at_least, period, filters } => {
            let counts = counts(context, did, period, filters, day)?;
            Ok(counts.into_iter().map(|n| n >= *at_least).collect())
        }
        CohortRule::DidNot { did_not, period, filters } => {
            let counts = counts(context, did_not, period, filters, day)?;
            Ok(counts.into_iter().map(|n| n == 0).collect())
        }
    }
}

/// Profile rules test profile properties unless they say otherwise.
fn as_profile_filter(filter: &Filter) -> Filter {
    match filter {
        Filter::Property { property, op, value, .. } => {
            Filter::Property { property: property.clone(), op: *op, value: value.clone(), source: Source::Profile }
        }
        Filter::Any { any } => Filter::Any { any: any.iter().map(as_profile_filter).collect() },
        Filter::All { all } => Filter::All { all: all.iter().map(as_profile_filter).collect() },
        other => other.clone(),
    }
}

fn period_range(context: &Context<'_>, period: &CohortPeriod, day: Date) -> Result<(i64, i64), QueryError> {
    let from = match (&period.from, period.within_days) {
        (Some(from), _) => parse_date(from, "from")?,
        (None, Some(days)) if days > 0 => add_days(day, 1 - i64::from(days)),
        (None, Some(_)) => return Err(QueryError::bad("within_days must be at least 1")),
        (None, None) => Date::constant(1970, 1, 1),
    };
    let to = match &period.to {
        Some(to) => parse_date(to, "to")?,
        None => day,
    };
    if to < from {
        return Err(QueryError::bad("a cohort period ends before it starts"));
    }
    Ok((context.calendar.day_start(from), context.calendar.day_start(next_day(to))))
}

fn counts(context: &Context<'_>, event: &str, period: &CohortPeriod, filters: &[Filter], day: Date) -> Result<Vec<u64>, QueryError> {
    let table = context.table;
    let (start, end) = period_range(context, period, day)?;
    let filter = RowFilter::All(filters.iter().map(|f| compile(context, f)).collect::<Result<_, _>>()?);
    let code = if event == "$any" { None } else { Some(table.event_code(event)) };
    let mut out = vec![0u64; table.n_units()];
    if code == Some(None) {
        return Ok(out);
    }
    for (unit, count) in out.iter_mut().enumerate() {
        let rows = table.rows_of(unit);
        let first = table.first_at_or_after(rows.clone(), start);
        for row in first..rows.end {
            if table.times[row] >= end {
                break;
            }
            if code.is_some_and(|c| c != Some(table.events[row])) {
                continue;
            }
            if filter.test(row, unit) {
                *count += 1;
            }
        }
    }
    Ok(out)
}
