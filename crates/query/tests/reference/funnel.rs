//! Funnels, one actor's timeline at a time, one attempt at a time.

use query::QueryError;
use query::result::{FunnelResult, FunnelSegment, FunnelStep};
use query::spec::{Counting, Entry, FunnelSpec, StepOrder};
use serde_json::Value;

use super::{Event, World, bad, mean, name_matches, optional_segment_cmp, parse_date, parse_window_ms, quantile_cont, same_value};

pub(super) fn run(world: &World, spec: &FunnelSpec) -> Result<FunnelResult, QueryError> {
    validate(spec)?;
    let from = parse_date(&spec.from)?;
    let to = parse_date(&spec.to)?;
    if from > to {
        return Err(bad("from is after to"));
    }
    let funnel = Funnel { world, spec, window_ms: parse_window_ms(spec.window.as_deref(), "7d")?, range_ms: world.calendar.range_ms(from, to) };
    let mut conversions = Vec::new();
    for timeline in world.timelines(&spec.unit, &spec.filters)?.values() {
        conversions.extend(funnel.conversions_of(timeline)?);
    }
    if spec.breakdown.is_none() {
        let all: Vec<&Conversion> = conversions.iter().collect();
        return Ok(FunnelResult { steps: steps_of(spec, &all), segments: None });
    }
    let mut segments: Vec<Option<Value>> = Vec::new();
    for conversion in &conversions {
        for segment in &conversion.segments {
            if !segments.contains(segment) {
                segments.push(segment.clone());
            }
        }
    }
    let mut result: Vec<FunnelSegment> = segments
        .into_iter()
        .map(|segment| {
            let members: Vec<&Conversion> = conversions.iter().filter(|conversion| conversion.segments.contains(&segment)).collect();
            FunnelSegment { segment: segment.expect("a breakdown segment"), steps: steps_of(spec, &members) }
        })
        .collect();
    result.sort_by(|a, b| b.steps[0].count.cmp(&a.steps[0].count).then(optional_segment_cmp(&Some(a.segment.clone()), &Some(b.segment.clone()))));
    if let Some(limit) = spec.limit {
        result.truncate(limit);
    }
    Ok(FunnelResult { steps: Vec::new(), segments: Some(result) })
}

fn validate(spec: &FunnelSpec) -> Result<(), QueryError> {
    let n_steps = spec.steps.len();
    if !(2..=20).contains(&n_steps) {
        return Err(bad("a funnel has 2 to 20 steps"));
    }
    for exclusion in &spec.exclusions {
        if exclusion.after_step < 1 || exclusion.after_step >= exclusion.before_step || exclusion.before_step > n_steps {
            return Err(bad("exclusion steps must satisfy 1 <= after_step < before_step <= steps"));
        }
    }
    Ok(())
}

/// One counted unit: a person (uniques) or an attempt (totals).
struct Conversion {
    segments: Vec<Option<Value>>,
    /// Steps reached, 1..=n.
    n_reached: usize,
    /// For steps 2..=n_reached: (time from previous, time from start) in ms.
    durations_ms: Vec<(i64, i64)>,
}

/// One attempt started by a Step 1 event.
struct Attempt {
    entry_index: usize,
    n_reached: usize,
    /// Completion time of steps 1..=n_reached (interpretation 17).
    completion_ms: Vec<i64>,
    end_ms: i64,
}

impl Attempt {
    fn durations_ms(&self) -> Vec<(i64, i64)> {
        (1..self.n_reached).map(|k| (self.completion_ms[k] - self.completion_ms[k - 1], self.completion_ms[k] - self.completion_ms[0])).collect()
    }
}

struct Funnel<'a> {
    world: &'a World,
    spec: &'a FunnelSpec,
    window_ms: i64,
    range_ms: (i64, i64),
}

impl Funnel<'_> {
    fn conversions_of(&self, timeline: &[&Event]) -> Result<Vec<Conversion>, QueryError> {
        let mut entries = Vec::new();
        for (index, event) in timeline.iter().enumerate() {
            let in_range = self.range_ms.0 <= event.time_ms && event.time_ms < self.range_ms.1;
            if in_range && self.step_matches(0, event, event)? {
                entries.push(index);
            }
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let Some(breakdown) = self.spec.breakdown.as_ref() else {
            return self.conversions_from(timeline, &entries, None);
        };
        // A person enters once per breakdown segment: the rules run for each
        // segment with only that segment's Step 1 events as entries.
        let mut by_segment: Vec<(Option<Value>, Vec<usize>)> = Vec::new();
        for &index in &entries {
            for segment in self.world.segments_of(Some(breakdown), timeline[index])? {
                match by_segment.iter_mut().find(|(s, _)| *s == segment) {
                    Some((_, list)) => list.push(index),
                    None => by_segment.push((segment, vec![index])),
                }
            }
        }
        let mut conversions = Vec::new();
        for (segment, list) in by_segment {
            conversions.extend(self.conversions_from(timeline, &list, Some(segment))?);
        }
        Ok(conversions)
    }

    fn conversions_from(&self, timeline: &[&Event], entries: &[usize], segment: Option<Option<Value>>) -> Result<Vec<Conversion>, QueryError> {
        let segments = match segment {
            Some(segment) => vec![segment],
            None => vec![None],
        };
        let conversion = |attempt: &Attempt| Conversion { segments: segments.clone(), n_reached: attempt.n_reached, durations_ms: attempt.durations_ms() };
        if self.spec.counting == Counting::Totals {
            return Ok(self.sequential_attempts(timeline, entries)?.iter().map(conversion).collect());
        }
        match self.spec.entry {
            Entry::First => Ok(vec![conversion(&self.attempt(timeline, entries[0])?)]),
            Entry::Any => {
                let attempts: Vec<Attempt> = entries.iter().map(|&index| self.attempt(timeline, index)).collect::<Result<_, _>>()?;
                let furthest = attempts.iter().map(|attempt| attempt.n_reached).max().expect("one attempt at least");
                // The earliest attempt reaching the furthest step gives the times.
                let counted = attempts.iter().find(|attempt| attempt.n_reached == furthest).expect("the furthest attempt");
                Ok(vec![conversion(counted)])
            }
        }
    }

    /// Totals: each attempt starts at the first Step 1 after the previous one's end.
    fn sequential_attempts(&self, timeline: &[&Event], entries: &[usize]) -> Result<Vec<Attempt>, QueryError> {
        let mut attempts = Vec::new();
        let mut previous_end_ms = i64::MIN;
        for &index in entries {
            if timeline[index].time_ms > previous_end_ms {
                let attempt = self.attempt(timeline, index)?;
                previous_end_ms = attempt.end_ms;
                attempts.push(attempt);
            }
        }
        Ok(attempts)
    }

    /// True when `event` matches step `step` (0-based) of an attempt entered at `entry`.
    fn step_matches(&self, step: usize, event: &Event, entry: &Event) -> Result<bool, QueryError> {
        let selector = &self.spec.steps[step];
        let held = self.spec.hold_constant.iter().all(|property| same_value(event.properties.get(property), entry.properties.get(property)));
        Ok(name_matches(&selector.event, event) && held && self.world.passes(event, &selector.filters)?)
    }

    fn attempt(&self, timeline: &[&Event], entry_index: usize) -> Result<Attempt, QueryError> {
        let entry = timeline[entry_index];
        let deadline_ms = entry.time_ms + self.window_ms;
        let n_steps = self.spec.steps.len();
        let mut own_times_ms = vec![entry.time_ms];
        for step in 1..n_steps {
            let after_ms = match self.spec.order {
                StepOrder::Strict => own_times_ms[step - 1],
                StepOrder::Any => entry.time_ms,
            };
            let mut found = None;
            for event in timeline {
                if event.time_ms > after_ms && event.time_ms <= deadline_ms && self.step_matches(step, event, entry)? {
                    found = Some(event.time_ms);
                    break;
                }
            }
            match found {
                Some(time_ms) => own_times_ms.push(time_ms),
                None => break,
            }
        }
        let mut completion_ms: Vec<i64> = (0..own_times_ms.len()).map(|k| *own_times_ms[..=k].iter().max().expect("step 1")).collect();
        let cut_ms = self.exclusion_cut(timeline, &completion_ms, deadline_ms)?;
        if let Some(cut_ms) = cut_ms {
            completion_ms.retain(|&time_ms| time_ms < cut_ms);
        }
        let n_reached = completion_ms.len();
        let end_ms = match cut_ms {
            Some(cut_ms) => cut_ms,
            None if n_reached == n_steps => completion_ms[n_steps - 1],
            None => deadline_ms,
        };
        Ok(Attempt { entry_index, n_reached, completion_ms, end_ms })
    }

    /// The earliest exclusion event cutting the attempt (interpretation 19).
    /// `completion_ms` holds the completion times of the reached steps.
    fn exclusion_cut(&self, timeline: &[&Event], completion_ms: &[i64], deadline_ms: i64) -> Result<Option<i64>, QueryError> {
        let mut cut_ms: Option<i64> = None;
        for exclusion in &self.spec.exclusions {
            let Some(&after_ms) = completion_ms.get(exclusion.after_step - 1) else { continue };
            let mut first_ms = None;
            for event in timeline {
                let between = event.time_ms > after_ms && event.time_ms <= deadline_ms;
                if between && name_matches(&exclusion.event, event) && self.world.passes(event, &exclusion.filters)? {
                    first_ms = Some(event.time_ms);
                    break;
                }
            }
            let Some(time_ms) = first_ms else { continue };
            let applies = match completion_ms.get(exclusion.before_step - 1) {
                Some(&before_ms) => time_ms < before_ms,
                None => true,
            };
            if applies {
                cut_ms = Some(cut_ms.map_or(time_ms, |cut| cut.min(time_ms)));
            }
        }
        Ok(cut_ms)
    }
}

/// The step rows over some counted units.
fn steps_of(spec: &FunnelSpec, conversions: &[&Conversion]) -> Vec<FunnelStep> {
    let counts: Vec<u64> =
        (1..=spec.steps.len()).map(|step| conversions.iter().filter(|conversion| conversion.n_reached >= step).count() as u64).collect();
    let fraction = |numerator: u64, denominator: u64| if denominator == 0 { 0.0 } else { numerator as f64 / denominator as f64 };
    let mut steps = Vec::new();
    for (index, selector) in spec.steps.iter().enumerate() {
        let durations: Vec<(f64, f64)> = conversions
            .iter()
            .filter(|conversion| index > 0 && conversion.n_reached > index)
            .map(|conversion| {
                let (from_previous, from_start) = conversion.durations_ms[index - 1];
                (from_previous as f64, from_start as f64)
            })
            .collect();
        let from_previous: Vec<f64> = durations.iter().map(|pair| pair.0).collect();
        let from_start: Vec<f64> = durations.iter().map(|pair| pair.1).collect();
        steps.push(FunnelStep {
            event: selector.event.clone(),
            count: counts[index],
            conversion_from_previous: fraction(counts[index], counts[index.saturating_sub(1)]),
            conversion_from_start: fraction(counts[index], counts[0]),
            avg_time_from_previous_ms: mean(&from_previous),
            median_time_from_previous_ms: quantile_cont(&from_previous, 0.5),
            avg_time_from_start_ms: mean(&from_start),
            median_time_from_start_ms: quantile_cont(&from_start, 0.5),
        });
    }
    steps
}
