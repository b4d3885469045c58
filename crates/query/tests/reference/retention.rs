//! Retention: births, then brackets of returns, actor by actor.

use std::collections::BTreeMap;

use query::QueryError;
use query::result::{RetentionCohort, RetentionResult};
use query::spec::{Interval, RetentionKind, RetentionMode, RetentionSpec, RetentionUnit};

use super::{Event, World, bad, name_matches, parse_date};

pub(super) fn run(world: &World, spec: &RetentionSpec) -> Result<RetentionResult, QueryError> {
    let from = parse_date(&spec.from)?;
    let to = parse_date(&spec.to)?;
    if from > to {
        return Err(bad("from is after to"));
    }
    let (range_start_ms, range_end_ms) = world.calendar.range_ms(from, to);
    let (interval, unit_ms) = match spec.unit {
        RetentionUnit::Day => (Interval::Day, 86_400_000),
        RetentionUnit::Week => (Interval::Week, 7 * 86_400_000),
        RetentionUnit::Month => (Interval::Month, 30 * 86_400_000),
    };
    // Cohort key -> (size, counts).
    let mut cohorts: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for timeline in world.timelines(&spec.counted, &spec.filters)?.values() {
        let mut born = Vec::new();
        for event in timeline {
            if name_matches(&spec.born.event, event) && world.passes(event, &spec.born.filters)? {
                born.push(*event);
            }
        }
        let in_range = |event: &&Event| range_start_ms <= event.time_ms && event.time_ms < range_end_ms;
        // (cohort key, birth event): the first of each bucket.
        let mut births: Vec<(String, &Event)> = Vec::new();
        let candidates: Vec<&Event> = match spec.retention {
            RetentionKind::FirstTime => born.first().copied().filter(in_range).into_iter().collect(),
            RetentionKind::Recurring => born.iter().copied().filter(in_range).collect(),
        };
        for birth in candidates {
            let key = world.calendar.bucket_key(birth.time_ms, interval);
            if !births.iter().any(|(known, _)| *known == key) {
                births.push((key, birth));
            }
        }
        for (key, birth) in births {
            let brackets = returned_brackets(world, spec, timeline, birth, unit_ms)?;
            let (size, counts) = cohorts.entry(key).or_insert_with(|| (0, vec![0; spec.periods]));
            *size += 1;
            for (bracket, returned) in brackets.iter().enumerate() {
                counts[bracket] += u64::from(*returned);
            }
        }
    }
    let cohorts = cohorts.into_iter().map(|(start, (size, counts))| RetentionCohort { start, size, counts }).collect();
    Ok(RetentionResult { cohorts })
}

/// For each bracket `< periods`: whether the actor counts in it.
fn returned_brackets(world: &World, spec: &RetentionSpec, timeline: &[&Event], birth: &Event, unit_ms: i64) -> Result<Vec<bool>, QueryError> {
    let mut returned = vec![false; spec.periods];
    for event in timeline {
        let is_birth = std::ptr::eq(*event, birth);
        if is_birth || event.time_ms < birth.time_ms || !name_matches(&spec.returning.event, event) {
            continue;
        }
        if !world.passes(event, &spec.returning.filters)? {
            continue;
        }
        let bracket = ((event.time_ms - birth.time_ms) / unit_ms) as usize;
        if bracket < spec.periods {
            returned[bracket] = true;
        }
    }
    if spec.mode == RetentionMode::OnOrAfter
        && let Some(last) = returned.iter().rposition(|&value| value)
    {
        returned[..=last].iter_mut().for_each(|value| *value = true);
    }
    Ok(returned)
}
