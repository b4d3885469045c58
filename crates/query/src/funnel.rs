//! Funnels: for each person (or group), attempts that start at a Step 1 in
//! range and match later steps greedily within the conversion window.
//!
//! Per unit, the rows from the range start on are reduced to (time, step
//! mask, exclusion mask, row); every rule in docs/reports.md then works on
//! that short list. Greedy earliest matching is optimal for a fixed entry,
//! which is why "first" and "totals" need one pass and "any" tries entries
//! in order until one converts fully.

use crate::calendar::parse_date;
use crate::context::Context;
use crate::error::QueryError;
use crate::filter::{compile_all, RowFilter};
use crate::parallel::{over_units, quantile};
use crate::result::{FunnelResult, FunnelSegment, FunnelStep};
use crate::segments::Segmenter;
use crate::spec::{Counting, Entry, FunnelSpec, StepOrder};
use crate::value::{compare_segments, Column};
use std::sync::Arc;

const MAX_STEPS: usize = 20;

pub fn parse_window(text: Option<&str>, default_ms: i64) -> Result<i64, QueryError> {
    let Some(text) = text else { return Ok(default_ms) };
    let bad = || QueryError::bad(format!("window must look like 14d, 12h or 30m, got {text:?}"));
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "d" => crate::calendar::MS_PER_DAY,
        "h" => crate::calendar::MS_PER_HOUR,
        "m" => 60_000,
        _ => return Err(bad()),
    };
    if number <= 0 || number > 366 * 24 * 60 {
        return Err(bad());
    }
    Ok(number * unit_ms)
}

struct Step {
    code: Option<u32>,
    filter: RowFilter,
    trivial: bool,
}

struct Exclusion {
    code: Option<u32>,
    filter: RowFilter,
    after: usize,
    before: usize,
}

/// One attempt's outcome: steps reached and the time each was reached.
#[derive(Debug, Clone)]
struct Attempt {
    times: [i64; MAX_STEPS],
    len: usize,
    ends_at: i64,
}

impl Attempt {
    fn start(t1: i64) -> Attempt {
        let mut times = [0; MAX_STEPS];
        times[0] = t1;
        Attempt { times, len: 1, ends_at: t1 }
    }

    fn reached(&self) -> &[i64] {
        &self.times[..self.len]
    }

    fn push(&mut self, time: i64) {
        self.times[self.len] = time;
        self.len += 1;
    }
}

/// Per-segment tallies.
#[derive(Clone, Default)]
struct Tally {
    counts: Vec<u64>,
    from_previous: Vec<Vec<f64>>,
    from_start: Vec<Vec<f64>>,
}

impl Tally {
    fn new(n: usize) -> Tally {
        Tally { counts: vec![0; n], from_previous: vec![Vec::new(); n], from_start: vec![Vec::new(); n] }
    }

    fn add(&mut self, attempt: &Attempt) {
        let reached = attempt.reached();
        for (k, time) in reached.iter().enumerate() {
            self.counts[k] += 1;
            if k > 0 {
                self.from_previous[k].push((time - reached[k - 1]) as f64);
                self.from_start[k].push((time - reached[0]) as f64);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        for k in 0..self.counts.len() {
            self.counts[k] += other.counts[k];
            self.from_previous[k].extend(&other.from_previous[k]);
            self.from_start[k].extend(&other.from_start[k]);
        }
    }
}

/// A unit's relevant rows, reused across units.
#[derive(Default)]
struct Lane {
    times: Vec<i64>,
    masks: Vec<u32>,
    exclusions: Vec<u32>,
    rows: Vec<usize>,
}

pub(crate) fn run(context: &Context<'_>, spec: &FunnelSpec) -> Result<FunnelResult, QueryError> {
    let table = context.table;
    let n = spec.steps.len();
    if !(2..=MAX_STEPS).contains(&n) {
        return Err(QueryError::bad(format!("a funnel has 2 to {MAX_STEPS} steps, got {n}")));
    }
    let window = parse_window(spec.window.as_deref(), 7 * crate::calendar::MS_PER_DAY)?;
    let (start, end) = context.calendar.range(parse_date(&spec.from, "from")?, parse_date(&spec.to, "to")?)?;
    let code_of = |name: &str| -> Option<Option<u32>> {
        if name == "$any" { Some(None) } else { table.event_code(name).map(Some) }
    };
    let mut steps = Vec::with_capacity(n);
    for step in &spec.steps {
        let mut filters = spec.filters.clone();
        filters.extend(step.filters.iter().cloned());
        // Compiled even for an unknown event, so a bad filter is refused whatever the data.
        let filter = compile_all(context, &filters)?;
        match code_of(&step.event) {
            Some(code) => steps.push(Step { code, trivial: filter.is_trivial(), filter }),
            None => steps.push(Step { code: Some(u32::MAX), filter: RowFilter::always(), trivial: true }),
        }
    }
    let mut exclusions = Vec::new();
    for exclusion in &spec.exclusions {
        if exclusion.after_step < 1 || exclusion.before_step > n || exclusion.after_step >= exclusion.before_step {
            return Err(QueryError::bad("an exclusion needs 1 <= after_step < before_step <= number of steps"));
        }
        let mut filters = spec.filters.clone();
        filters.extend(exclusion.filters.iter().cloned());
        let filter = compile_all(context, &filters)?;
        if let Some(code) = code_of(&exclusion.event) {
            exclusions.push(Exclusion { code, filter, after: exclusion.after_step, before: exclusion.before_step });
        }
    }
    if exclusions.len() > 32 {
        return Err(QueryError::bad("at most 32 exclusions"));
    }
    // Steps without filters are decided by the event code alone.
    let mut mask_of_code = vec![0u32; table.event_names.len()];
    let mut filtered_steps: Vec<usize> = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        if !step.trivial {
            filtered_steps.push(k);
            continue;
        }
        for (code, mask) in mask_of_code.iter_mut().enumerate() {
            if step.code.is_none_or(|c| c == code as u32) {
                *mask |= 1 << k;
            }
        }
    }
    let held: Vec<Arc<Column>> = spec.hold_constant.iter().map(|key| table.column(key)).collect::<Result<_, _>>()?;
    let segmenter = Segmenter::new(context, spec.breakdown.as_ref())?;
    let n_segments = segmenter.len();
    let has_exclusions = !exclusions.is_empty();

    let simple = steps.iter().all(|step| step.trivial && step.code.is_some())
        && exclusions.is_empty()
        && held.is_empty()
        && spec.order == StepOrder::Strict
        && segmenter.is_none();
    if simple {
        let codes: Vec<u32> = steps.iter().map(|step| step.code.unwrap_or(u32::MAX)).collect();
        let tallies = over_units(
            table,
            || Tally::new(n),
            |tally, units| {
                for unit in units {
                    let rows = table.rows_of(unit);
                    let first = table.first_at_or_after(rows.clone(), start);
                    let mut entries = (first..rows.end).take_while(|i| table.times[*i] < end).filter(|i| table.events[*i] == codes[0]);
                    match (spec.counting, spec.entry) {
                        (Counting::Totals, _) => {
                            let mut after = i64::MIN;
                            for i in entries {
                                if table.times[i] > after {
                                    let outcome = simple_attempt(table, i, rows.end, &codes, window);
                                    tally.add(&outcome);
                                    after = outcome.ends_at;
                                }
                            }
                        }
                        (Counting::Uniques, Entry::First) => {
                            if let Some(i) = entries.next() {
                                tally.add(&simple_attempt(table, i, rows.end, &codes, window));
                            }
                        }
                        (Counting::Uniques, Entry::Any) => {
                            if let Some(best) = furthest(n, entries.map(|i| simple_attempt(table, i, rows.end, &codes, window))) {
                                tally.add(&best);
                            }
                        }
                    }
                }
            },
        );
        let mut merged = Tally::new(n);
        for tally in tallies {
            merged.merge(tally);
        }
        return Ok(FunnelResult { steps: report_steps(spec, n, &mut merged), segments: None });
    }
    let tallies = over_units(
        table,
        || (vec![Tally::new(n); n_segments], Lane::default(), Vec::<u32>::new()),
        |(tallies, lane, segments_seen), units| {
            for unit in units {
                let rows = table.rows_of(unit);
                let first = table.first_at_or_after(rows.clone(), start);
                lane.times.clear();
                lane.masks.clear();
                lane.exclusions.clear();
                lane.rows.clear();
                let mut has_entry = false;
                for row in first..rows.end {
                    let time = table.times[row];
                    if time >= end.saturating_add(window) {
                        break;
                    }
                    let code = table.events[row];
                    let mut mask = mask_of_code[code as usize];
                    for &k in &filtered_steps {
                        let step = &steps[k];
                        if step.code.is_none_or(|c| c == code) && step.filter.test(row, unit) {
                            mask |= 1 << k;
                        }
                    }
                    if time >= end {
                        // Only Step 1 must be in range.
                        mask &= !1;
                    }
                    let mut excluded = 0u32;
                    for (e, exclusion) in exclusions.iter().enumerate().filter(|_| has_exclusions) {
                        if exclusion.code.is_none_or(|c| c == code) && exclusion.filter.test(row, unit) {
                            excluded |= 1 << e;
                        }
                    }
                    if mask != 0 || excluded != 0 {
                        has_entry |= mask & 1 != 0;
                        lane.times.push(time);
                        lane.masks.push(mask);
                        lane.exclusions.push(excluded);
                        lane.rows.push(row);
                    }
                }
                if !has_entry {
                    continue;
                }
                // The segments of this unit's entries, each run on its own.
                segments_seen.clear();
                for (i, mask) in lane.masks.iter().enumerate() {
                    if mask & 1 != 0 {
                        segmenter.for_each(lane.rows[i], unit, |s| segments_seen.push(s));
                    }
                }
                segments_seen.sort_unstable();
                segments_seen.dedup();
                for &segment in segments_seen.iter() {
                    let is_entry = |i: usize| -> bool {
                        if lane.masks[i] & 1 == 0 {
                            return false;
                        }
                        let mut hit = false;
                        segmenter.for_each(lane.rows[i], unit, |s| hit |= s == segment);
                        hit
                    };
                    let tally = &mut tallies[segment as usize];
                    let attempt_at = |i: usize| attempt(lane, i, n, window, spec.order, &exclusions, &held, unit);
                    match (spec.counting, spec.entry) {
                        (Counting::Totals, _) => {
                            let mut after = i64::MIN;
                            for i in 0..lane.times.len() {
                                if lane.times[i] > after && is_entry(i) {
                                    let outcome = attempt_at(i);
                                    tally.add(&outcome);
                                    after = outcome.ends_at;
                                }
                            }
                        }
                        (Counting::Uniques, Entry::First) => {
                            if let Some(i) = (0..lane.times.len()).find(|i| is_entry(*i)) {
                                tally.add(&attempt_at(i));
                            }
                        }
                        (Counting::Uniques, Entry::Any) => {
                            let attempts = (0..lane.times.len()).filter(|i| is_entry(*i)).map(attempt_at);
                            if let Some(best) = furthest(n, attempts) {
                                tally.add(&best);
                            }
                        }
                    }
                }
            }
        },
    );
    let mut merged = vec![Tally::new(n); n_segments];
    for (per_segment, _, _) in tallies {
        for (m, t) in merged.iter_mut().zip(per_segment) {
            m.merge(t);
        }
    }
    if segmenter.is_none() {
        return Ok(FunnelResult { steps: report_steps(spec, n, &mut merged[0]), segments: None });
    }
    let mut segments: Vec<FunnelSegment> = merged
        .iter_mut()
        .enumerate()
        .filter(|(_, tally)| tally.counts[0] > 0)
        .map(|(s, tally)| FunnelSegment { segment: segmenter.labels[s].clone(), steps: report_steps(spec, n, tally) })
        .collect();
    segments.sort_by(|a, b| b.steps[0].count.cmp(&a.steps[0].count).then_with(|| compare_segments(&a.segment, &b.segment)));
    if let Some(limit) = spec.limit {
        segments.truncate(limit);
    }
    Ok(FunnelResult { steps: Vec::new(), segments: Some(segments) })
}

fn report_steps(spec: &FunnelSpec, n: usize, tally: &mut Tally) -> Vec<FunnelStep> {
    (0..n)
        .map(|k| {
            let count = tally.counts[k];
            let previous = if k == 0 { count } else { tally.counts[k - 1] };
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            let avg = |v: &Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            FunnelStep {
                event: spec.steps[k].event.clone(),
                count,
                conversion_from_previous: ratio(count, previous),
                conversion_from_start: ratio(count, tally.counts[0]),
                avg_time_from_previous_ms: if k == 0 { None } else { avg(&tally.from_previous[k]) },
                median_time_from_previous_ms: if k == 0 { None } else { quantile(&mut tally.from_previous[k], 0.5) },
                avg_time_from_start_ms: if k == 0 { None } else { avg(&tally.from_start[k]) },
                median_time_from_start_ms: if k == 0 { None } else { quantile(&mut tally.from_start[k], 0.5) },
            }
        })
        .collect()
}

/// The earliest attempt that reaches the furthest step (stops trying once one converts fully).
fn furthest(n: usize, attempts: impl Iterator<Item = Attempt>) -> Option<Attempt> {
    let mut best: Option<Attempt> = None;
    for outcome in attempts {
        if best.as_ref().is_none_or(|b| outcome.len > b.len) {
            let done = outcome.len == n;
            best = Some(outcome);
            if done {
                break;
            }
        }
    }
    best
}

/// Runs one attempt from entry `i` of the lane.
#[allow(clippy::too_many_arguments)]
fn attempt(lane: &Lane, i: usize, n: usize, window: i64, order: StepOrder, exclusions: &[Exclusion], held: &[Arc<Column>], _unit: usize) -> Attempt {
    let t1 = lane.times[i];
    let deadline = t1.saturating_add(window);
    let entry_row = lane.rows[i];
    let holds = |j: usize| held.iter().all(|column| column.codes.get(lane.rows[j]) == column.codes.get(entry_row));
    let mut attempt = Attempt::start(t1);
    match order {
        StepOrder::Strict => {
            for j in i + 1..lane.times.len() {
                let time = lane.times[j];
                if time > deadline || attempt.len == n {
                    break;
                }
                let k = attempt.len;
                if lane.masks[j] & (1 << k) != 0 && time > attempt.times[k - 1] && holds(j) {
                    attempt.push(time);
                }
            }
        }
        StepOrder::Any => {
            let mut first_at: [Option<i64>; MAX_STEPS] = [None; MAX_STEPS];
            for j in i + 1..lane.times.len() {
                let time = lane.times[j];
                if time > deadline {
                    break;
                }
                if time <= t1 || !holds(j) {
                    continue;
                }
                for (k, slot) in first_at.iter_mut().enumerate().take(n).skip(1) {
                    if slot.is_none() && lane.masks[j] & (1 << k) != 0 {
                        *slot = Some(time);
                    }
                }
            }
            let mut latest = t1;
            for slot in first_at.iter().take(n).skip(1) {
                match slot {
                    Some(time) => {
                        latest = latest.max(*time);
                        attempt.push(latest);
                    }
                    None => break,
                }
            }
        }
    }
    attempt.ends_at = if attempt.len == n { attempt.times[n - 1] } else { deadline };
    // Every exclusion is judged on the steps matched without exclusions; the
    // earliest hit decides.
    let mut first_hit: Option<i64> = None;
    for (e, exclusion) in exclusions.iter().enumerate() {
        if exclusion.after > attempt.len {
            continue;
        }
        let after_time = attempt.times[exclusion.after - 1];
        let limit = (exclusion.before <= attempt.len).then(|| attempt.times[exclusion.before - 1]);
        let hit = (i..lane.times.len()).map(|j| lane.times[j]).zip(&lane.exclusions[i..]).find(|(time, mask)| {
            *mask & (1 << e) != 0 && *time > after_time && limit.map_or(*time <= deadline, |l| *time < l)
        });
        if let Some((x, _)) = hit {
            first_hit = Some(first_hit.map_or(x, |h: i64| h.min(x)));
        }
    }
    if let Some(x) = first_hit {
        attempt.len = attempt.reached().iter().filter(|t| **t < x).count();
        attempt.ends_at = attempt.ends_at.min(x);
    }
    attempt
}

/// The common funnel (steps without filters, strict order, no exclusions,
/// hold or breakdown) straight over the table's rows: no per-unit lane.
fn simple_attempt(table: &crate::table::Table, i: usize, rows_end: usize, codes: &[u32], window: i64) -> Attempt {
    let t1 = table.times[i];
    let deadline = t1.saturating_add(window);
    let mut attempt = Attempt::start(t1);
    let mut j = i + 1;
    'steps: for &code in &codes[1..] {
        let previous = attempt.times[attempt.len - 1];
        loop {
            if j >= rows_end || table.times[j] > deadline {
                break 'steps;
            }
            if table.events[j] == code && table.times[j] > previous {
                attempt.push(table.times[j]);
                j += 1;
                break;
            }
            j += 1;
        }
    }
    attempt.ends_at = if attempt.len == codes.len() { attempt.times[attempt.len - 1] } else { deadline };
    attempt
}
