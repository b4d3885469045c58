//! Insights: counts, uniques, active users, frequencies and property
//! aggregates per time bucket and segment.
//!
//! One pass per event entry over the table. Each worker owns a grid of cells
//! (bucket × segment, plus one "whole range" row for totals); uniques use a
//! stamp per cell, the last unit counted there, which works because a unit's
//! rows are contiguous.

use crate::calendar::{add_days, parse_date, Buckets};
use crate::context::Context;
use crate::error::QueryError;
use crate::filter::{compile_all, RowFilter};
use crate::formula;
use crate::parallel::{over_rows, over_units, quantile};
use crate::result::{InsightsResult, Series};
use crate::segments::Segmenter;
use crate::spec::{Aggregate, Interval, InsightsEvent, InsightsSpec, Measure};
use crate::value::compare_segments;
use serde_json::Value as Json;
use std::collections::BTreeMap;

const NO_UNIT: u32 = u32::MAX;

pub(crate) fn run(context: &Context<'_>, spec: &InsightsSpec) -> Result<InsightsResult, QueryError> {
    let mut result = run_period(context, spec, &spec.from, &spec.to)?;
    if spec.compare.is_some() {
        let from = parse_date(&spec.from, "from")?;
        let to = parse_date(&spec.to, "to")?;
        let days = (to - from).get_days() as i64 + 1;
        let previous_to = add_days(from, -1);
        let previous_from = add_days(previous_to, 1 - days);
        let previous = run_period(context, spec, &previous_from.to_string(), &previous_to.to_string())?;
        result.previous = Some(Box::new(previous));
    }
    Ok(result)
}

/// One entry's numbers: per segment, a value per label and the whole-range total.
struct EntryNumbers {
    segments: Vec<SegmentNumbers>,
}

struct SegmentNumbers {
    present: bool,
    points: Vec<Option<f64>>,
    total: Option<f64>,
}

fn run_period(context: &Context<'_>, spec: &InsightsSpec, from: &str, to: &str) -> Result<InsightsResult, QueryError> {
    if spec.events.is_empty() {
        return Err(QueryError::bad("events must list at least one event"));
    }
    if spec.events.len() > 26 {
        return Err(QueryError::bad("at most 26 events (A to Z)"));
    }
    let from = parse_date(from, "from")?;
    let to = parse_date(to, "to")?;
    context.calendar.range(from, to)?;
    let buckets = context.calendar.buckets(from, to, spec.interval);
    let segmenter = Segmenter::new(context, spec.breakdown.as_ref())?;
    let mut numbers = Vec::with_capacity(spec.events.len());
    for entry in &spec.events {
        numbers.push(entry_numbers(context, spec, entry, &buckets, &segmenter, from, to)?);
    }
    let mut result = InsightsResult::default();
    let breakdown = !segmenter.is_none();
    // Each entry's "$other" points, for formulas.
    let mut other_points: Vec<Option<Vec<Option<f64>>>> = vec![None; spec.events.len()];
    for (index, (entry, computed)) in spec.events.iter().zip(&numbers).enumerate() {
        let measure = serde_json::to_value(entry.measure).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let mut series: Vec<Series> = computed
            .segments
            .iter()
            .enumerate()
            .filter(|(_, numbers)| numbers.present || !breakdown)
            .map(|(s, numbers)| Series {
                event: entry.event.clone(),
                measure: measure.clone(),
                segment: breakdown.then(|| segmenter.labels[s].clone()),
                points: buckets.labels.iter().cloned().zip(numbers.points.iter().copied()).collect(),
                total: numbers.total,
            })
            .collect();
        if breakdown {
            series.sort_by(|a, b| {
                let (x, y) = (a.total.unwrap_or(f64::NEG_INFINITY), b.total.unwrap_or(f64::NEG_INFINITY));
                y.total_cmp(&x).then_with(|| compare_segments(a.segment.as_ref().unwrap_or(&Json::Null), b.segment.as_ref().unwrap_or(&Json::Null)))
            });
            if let Some(limit) = spec.limit {
                if spec.other && series.len() > limit {
                    // "$other": the left-out segments as one, counted again
                    // (uniques cannot be summed).
                    let index_of = |s: &Series| segmenter.labels.iter().position(|l| Some(l) == s.segment.as_ref()).map(|i| i as u32);
                    let keep: Vec<u32> = series[..limit].iter().filter_map(index_of).collect();
                    let fold: Vec<u32> = series[limit..].iter().filter_map(index_of).collect();
                    let folded = segmenter.with_other(&keep, &fold);
                    let other = entry_numbers(context, spec, entry, &buckets, &folded, from, to)?;
                    let numbers = &other.segments[keep.len()];
                    other_points[index] = Some(numbers.points.clone());
                    series.truncate(limit);
                    series.push(Series {
                        event: entry.event.clone(),
                        measure: measure.clone(),
                        segment: Some(Json::from(crate::segments::OTHER)),
                        points: buckets.labels.iter().cloned().zip(numbers.points.iter().copied()).collect(),
                        total: numbers.total,
                    });
                } else {
                    series.truncate(limit);
                }
            }
        }
        if spec.limit.is_none() || !breakdown {
            series.iter_mut().for_each(|s| s.total = None);
        }
        result.series.extend(series);
    }
    if !spec.formulas.is_empty() {
        let kept: Vec<Option<Json>> = {
            let mut kept: Vec<Option<Json>> = Vec::new();
            for series in &result.series {
                if !kept.contains(&series.segment) {
                    kept.push(series.segment.clone());
                }
            }
            kept
        };
        for formula in &spec.formulas {
            let expression = formula::parse(&formula.expression, spec.events.len())?;
            for segment in &kept {
                let is_other = segment.as_ref().and_then(Json::as_str) == Some(crate::segments::OTHER);
                let s = match segment {
                    None => Some(0),
                    Some(label) => segmenter.labels.iter().position(|l| l == label),
                };
                let points: BTreeMap<String, Option<f64>> = buckets
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(l, label)| {
                        // A letter without this segment has the measure of no
                        // events: 0 for counts, null for property aggregates.
                        let value = expression.evaluate(&|letter| match (is_other, &other_points[letter], s) {
                            (true, Some(points), _) => points[l],
                            (true, None, _) | (false, _, None) => empty_value(spec.events[letter].measure),
                            (false, _, Some(s)) => numbers[letter].segments[s].points[l],
                        });
                        (label.clone(), value)
                    })
                    .collect();
                result.formulas.push(crate::result::FormulaSeries {
                    name: formula.name.clone(),
                    expression: formula.expression.clone(),
                    segment: segment.clone(),
                    points,
                });
            }
        }
    }
    Ok(result)
}

/// A measure over no events.
fn empty_value(measure: Measure) -> Option<f64> {
    match measure {
        Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90 => None,
        _ => Some(0.0),
    }
}

/// One entry's numbers for every segment of `segmenter`.
fn entry_numbers(
    context: &Context<'_>,
    spec: &InsightsSpec,
    entry: &InsightsEvent,
    buckets: &Buckets,
    segmenter: &Segmenter,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> Result<EntryNumbers, QueryError> {
    let mut filters = spec.filters.clone();
    filters.extend(entry.filters.iter().cloned());
    let filter = compile_all(context, &filters)?;
    let event = match entry.event.as_str() {
        "$any" => EventMatch::Any,
        name => context.table.event_code(name).map_or(EventMatch::Nothing, EventMatch::Code),
    };
    match entry.measure {
        Measure::Dau | Measure::Wau | Measure::Mau => {
            if spec.interval != Interval::Day {
                return Err(QueryError::bad("dau, wau and mau need interval \"day\""));
            }
            let days = match entry.measure {
                Measure::Dau => 1,
                Measure::Wau => 7,
                _ => 30,
            };
            Ok(active_units(context, segmenter, event, &filter, from, to, days))
        }
        _ => grid(context, buckets, segmenter, event, &filter, entry),
    }
}

#[derive(Debug, Clone, Copy)]
enum EventMatch {
    Any,
    Code(u32),
    Nothing,
}

impl EventMatch {
    #[inline]
    fn matches(self, code: u32) -> bool {
        match self {
            EventMatch::Any => true,
            EventMatch::Code(c) => c == code,
            EventMatch::Nothing => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fold {
    Count,
    Uniques,
    Frequency,
    Values,
}

const FOLD_COUNT: u8 = 0;
const FOLD_UNIQUES: u8 = 1;
const FOLD_FREQUENCY: u8 = 2;
const FOLD_VALUES: u8 = 3;

/// What one grid pass reads.
struct Scan<'a> {
    table: &'a crate::table::Table,
    buckets: &'a Buckets,
    segmenter: &'a Segmenter,
    event: EventMatch,
    filter: &'a RowFilter,
    filtered: bool,
    numbers: Option<&'a [f64]>,
    column: Option<&'a crate::value::Column>,
    start: i64,
    end: i64,
    n_segments: usize,
    whole: usize,
}

impl Scan<'_> {
    /// The numeric property value of `row`, if any, into both cells.
    #[inline(always)]
    fn push_value(&self, grid: &mut Grid, row: usize, cell: usize, whole_cell: usize) {
        if let (Some(numbers), Some(column)) = (self.numbers, self.column) {
            let code = column.codes.get(row);
            if code != crate::value::MISSING {
                let value = numbers[code as usize];
                if !value.is_nan() {
                    grid.values[cell].push(value);
                    grid.values[whole_cell].push(value);
                }
            }
        }
    }

    /// Rows in table order, without units: counts and values only.
    fn run_rows<const FOLD: u8>(&self, grid: &mut Grid, rows: std::ops::Range<usize>) {
        let n_segments = self.n_segments;
        let table = self.table;
        let (times, events) = (&table.times[rows.clone()], &table.events[rows.clone()]);
        let (event, start, end, filtered) = (self.event, self.start, self.end, self.filtered);
        let labeller = self.buckets.labeller();
        if let (FOLD_COUNT, false, Some(lookup)) = (FOLD, filtered, self.segmenter.by_row()) {
            // The hot case (counts by an event property, no filter): everything in locals.
            let counts = &mut grid.counts[..];
            for (i, (&time, &code)) in times.iter().zip(events).enumerate() {
                if time < start || time >= end || !event.matches(code) {
                    continue;
                }
                let segment = match lookup {
                    None => 0,
                    Some((codes, segment_of, missing)) => match codes.get(rows.start + i) {
                        crate::value::MISSING => missing as usize,
                        value => segment_of[value as usize] as usize,
                    },
                };
                counts[labeller.label(time) * n_segments + segment] += 1;
            }
            return;
        }
        for (i, (&time, &code)) in times.iter().zip(events).enumerate() {
            if time < start || time >= end || !event.matches(code) {
                continue;
            }
            let row = rows.start + i;
            if filtered && !self.filter.test(row, 0) {
                continue;
            }
            let label = self.buckets.label(time);
            self.segmenter.for_each(row, 0, |segment| {
                let s = segment as usize;
                let cell = label * n_segments + s;
                if FOLD == FOLD_COUNT {
                    grid.counts[cell] += 1;
                    return;
                }
                grid.matched[s] += 1;
                self.push_value(grid, row, cell, self.whole * n_segments + s);
            });
        }
    }

    fn run<const FOLD: u8>(&self, grid: &mut Grid, units: std::ops::Range<usize>) {
        let table = self.table;
        let n_segments = self.n_segments;
        let (times, events) = (&table.times[..], &table.events[..]);
        let (event, end, filtered) = (self.event, self.end, self.filtered);
        for unit in units {
            let rows = table.rows_of(unit);
            let first = table.first_at_or_after(rows.clone(), self.start);
            for row in first..rows.end {
                let time = times[row];
                if time >= end {
                    break;
                }
                if !event.matches(events[row]) || (filtered && !self.filter.test(row, unit)) {
                    continue;
                }
                let label = self.buckets.label(time);
                self.segmenter.for_each(row, unit, |segment| {
                    let s = segment as usize;
                    let cell = label * n_segments + s;
                    if FOLD == FOLD_COUNT {
                        // Totals and "matched" are summed from the cells afterwards.
                        grid.counts[cell] += 1;
                        return;
                    }
                    grid.matched[s] += 1;
                    let whole_cell = self.whole * n_segments + s;
                    match FOLD {
                        FOLD_COUNT => {}
                        FOLD_UNIQUES => {
                            for c in [cell, whole_cell] {
                                if grid.stamps[c] != unit as u32 {
                                    grid.stamps[c] = unit as u32;
                                    grid.counts[c] += 1;
                                }
                            }
                        }
                        FOLD_FREQUENCY => {
                            for c in [cell, whole_cell] {
                                if grid.unit_counts[c] == 0 {
                                    grid.touched.push(c as u32);
                                }
                                grid.unit_counts[c] += 1;
                            }
                        }
                        _ => self.push_value(grid, row, cell, whole_cell),
                    }
                });
            }
            if FOLD == FOLD_FREQUENCY {
                for c in grid.touched.drain(..) {
                    let c = c as usize;
                    grid.values[c].push(f64::from(grid.unit_counts[c]));
                    grid.unit_counts[c] = 0;
                }
            }
        }
    }
}

struct Grid {
    counts: Vec<u64>,
    stamps: Vec<u32>,
    values: Vec<Vec<f64>>,
    unit_counts: Vec<u32>,
    touched: Vec<u32>,
    matched: Vec<u64>,
}

fn grid(
    context: &Context<'_>,
    buckets: &Buckets,
    segmenter: &Segmenter,
    event: EventMatch,
    filter: &RowFilter,
    entry: &InsightsEvent,
) -> Result<EntryNumbers, QueryError> {
    let table = context.table;
    let n_labels = buckets.labels.len();
    let n_segments = segmenter.len();
    let n_cells = (n_labels + 1) * n_segments;
    let whole = n_labels;
    let fold = match entry.measure {
        Measure::Total => Fold::Count,
        Measure::Uniques => Fold::Uniques,
        Measure::Frequency => Fold::Frequency,
        _ => Fold::Values,
    };
    let numbers: Option<Vec<f64>> = match fold {
        Fold::Values => {
            let property = entry.property.as_deref().ok_or_else(|| QueryError::bad(format!("measure {:?} needs a property", entry.measure).to_lowercase()))?;
            let column = table.column(property)?;
            Some(column.numbers())
        }
        _ => None,
    };
    let column = match fold {
        Fold::Values => entry.property.as_deref().map(|p| table.column(p)).transpose()?,
        _ => None,
    };
    let (start, end) = buckets.range();
    let filtered = !filter.is_trivial();
    let scan = Scan { table, buckets, segmenter, event, filter, filtered, numbers: numbers.as_deref(), column: column.as_deref(), start, end, n_segments, whole };
    let make = || Grid {
        counts: vec![0; n_cells],
        stamps: Vec::new(),
        values: if fold == Fold::Values { vec![Vec::new(); n_cells] } else { Vec::new() },
        unit_counts: Vec::new(),
        touched: Vec::new(),
        matched: vec![0; n_segments],
    };
    // Counts and property values need no unit: one flat pass over the rows.
    let flat = matches!(fold, Fold::Count | Fold::Values) && !segmenter.reads_units() && !filter.reads_units();
    let accumulators = if flat {
        over_rows(table.n_rows(), make, |grid, rows| {
            if matches!(event, EventMatch::Nothing) {
                return;
            }
            match fold {
                Fold::Count => scan.run_rows::<FOLD_COUNT>(grid, rows),
                _ => scan.run_rows::<FOLD_VALUES>(grid, rows),
            }
        })
    } else {
        over_units(
        table,
        || Grid {
            counts: vec![0; n_cells],
            stamps: if fold == Fold::Uniques { vec![NO_UNIT; n_cells] } else { Vec::new() },
            values: if matches!(fold, Fold::Values | Fold::Frequency) { vec![Vec::new(); n_cells] } else { Vec::new() },
            unit_counts: if fold == Fold::Frequency { vec![0; n_cells] } else { Vec::new() },
            touched: Vec::new(),
            matched: vec![0; n_segments],
        },
        |grid, units| {
            if matches!(event, EventMatch::Nothing) {
                return;
            }
            // One specialised loop per fold: no per-row dispatch on it.
            match fold {
                Fold::Count => scan.run::<FOLD_COUNT>(grid, units),
                Fold::Uniques => scan.run::<FOLD_UNIQUES>(grid, units),
                Fold::Frequency => scan.run::<FOLD_FREQUENCY>(grid, units),
                Fold::Values => scan.run::<FOLD_VALUES>(grid, units),
            }
        },
    )
    };
    let mut merged = accumulators.into_iter();
    let mut total = merged.next().unwrap_or_else(|| unreachable!("over_units returns at least one accumulator"));
    for grid in merged {
        total.counts.iter_mut().zip(&grid.counts).for_each(|(a, b)| *a += b);
        total.matched.iter_mut().zip(&grid.matched).for_each(|(a, b)| *a += b);
        for (a, b) in total.values.iter_mut().zip(grid.values) {
            a.extend(b);
        }
    }
    if fold == Fold::Count {
        for s in 0..n_segments {
            let sum: u64 = (0..n_labels).map(|l| total.counts[l * n_segments + s]).sum();
            total.counts[whole * n_segments + s] = sum;
            total.matched[s] = sum;
        }
    }
    let aggregate = match entry.measure {
        Measure::Frequency => entry.aggregate.unwrap_or_default(),
        Measure::Avg => Aggregate::Avg,
        Measure::Min => Aggregate::Min,
        Measure::Max => Aggregate::Max,
        Measure::Median => Aggregate::Median,
        Measure::P90 => Aggregate::P90,
        _ => Aggregate::Avg,
    };
    let value_of = |cell: usize, values: &mut Vec<f64>| -> Option<f64> {
        match fold {
            Fold::Count | Fold::Uniques => Some(total.counts[cell] as f64),
            // No people in a bucket: each did it zero times.
            Fold::Frequency => Some(fold_values(values, aggregate).unwrap_or(0.0)),
            _ if entry.measure == Measure::Sum => (!values.is_empty()).then(|| values.iter().sum()),
            _ => fold_values(values, aggregate),
        }
    };
    let mut values = std::mem::take(&mut total.values);
    let segments = (0..n_segments)
        .map(|s| {
            let mut empty = Vec::new();
            let mut cell_values = |cell: usize| -> Option<f64> {
                let list = values.get_mut(cell).unwrap_or(&mut empty);
                value_of(cell, list)
            };
            let points = (0..n_labels).map(|l| cell_values(l * n_segments + s)).collect();
            let total_value = cell_values(whole * n_segments + s);
            SegmentNumbers { present: total.matched[s] > 0, points, total: total_value }
        })
        .collect();
    Ok(EntryNumbers { segments })
}

pub(crate) fn fold_values(values: &mut [f64], aggregate: Aggregate) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    match aggregate {
        Aggregate::Avg => Some(values.iter().sum::<f64>() / values.len() as f64),
        Aggregate::Min => values.iter().copied().reduce(f64::min),
        Aggregate::Max => values.iter().copied().reduce(f64::max),
        Aggregate::Median => quantile(values, 0.5),
        Aggregate::P90 => quantile(values, 0.9),
    }
}

/// DAU / WAU / MAU: per day, the distinct units active in the `window` days
/// ending that day.
fn active_units(
    context: &Context<'_>,
    segmenter: &Segmenter,
    event: EventMatch,
    filter: &RowFilter,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    window: i64,
) -> EntryNumbers {
    let table = context.table;
    let early = add_days(from, 1 - window);
    let days = context.calendar.buckets(early, to, Interval::Day);
    let offset = (window - 1) as usize;
    let n_days = days.n_slots();
    let n_labels = n_days - offset;
    let n_segments = segmenter.len();
    let (start, end) = days.range();
    struct Acc {
        counts: Vec<u64>,
        totals: Vec<u64>,
        matched: Vec<u64>,
        pairs: Vec<(u32, u32)>,
    }
    let accumulators = over_units(
        table,
        || Acc { counts: vec![0; n_labels * n_segments], totals: vec![0; n_segments], matched: vec![0; n_segments], pairs: Vec::new() },
        |acc, units| {
            if matches!(event, EventMatch::Nothing) {
                return;
            }
            for unit in units {
                let rows = table.rows_of(unit);
                let first = table.first_at_or_after(rows.clone(), start);
                acc.pairs.clear();
                for row in first..rows.end {
                    let time = table.times[row];
                    if time >= end {
                        break;
                    }
                    if !event.matches(table.events[row]) || !filter.test(row, unit) {
                        continue;
                    }
                    let day = days.slot(time) as u32;
                    segmenter.for_each(row, unit, |s| {
                        if day as usize >= offset {
                            acc.matched[s as usize] += 1;
                        }
                        acc.pairs.push((s, day));
                    });
                }
                acc.pairs.sort_unstable();
                acc.pairs.dedup();
                let mut i = 0;
                while i < acc.pairs.len() {
                    let segment = acc.pairs[i].0 as usize;
                    let mut covered_until: i64 = -1;
                    let mut in_range = false;
                    while i < acc.pairs.len() && acc.pairs[i].0 as usize == segment {
                        let day = acc.pairs[i].1 as i64;
                        in_range |= day as usize >= offset;
                        let last = (day + window - 1).min(n_days as i64 - 1);
                        for k in day.max(covered_until + 1)..=last {
                            if k as usize >= offset {
                                acc.counts[(k as usize - offset) * n_segments + segment] += 1;
                            }
                        }
                        covered_until = covered_until.max(last);
                        i += 1;
                    }
                    if in_range {
                        acc.totals[segment] += 1;
                    }
                }
            }
        },
    );
    let mut counts = vec![0u64; n_labels * n_segments];
    let mut totals = vec![0u64; n_segments];
    let mut matched = vec![0u64; n_segments];
    for acc in accumulators {
        counts.iter_mut().zip(&acc.counts).for_each(|(a, b)| *a += b);
        totals.iter_mut().zip(&acc.totals).for_each(|(a, b)| *a += b);
        matched.iter_mut().zip(&acc.matched).for_each(|(a, b)| *a += b);
    }
    let segments = (0..n_segments)
        .map(|s| SegmentNumbers {
            present: matched[s] > 0,
            points: (0..n_labels).map(|l| Some(counts[l * n_segments + s] as f64)).collect(),
            total: Some(totals[s] as f64),
        })
        .collect();
    EntryNumbers { segments }
}
