//! Flows: the path of events after (or before) each counted anchor.

use std::collections::BTreeMap;

use query::QueryError;
use query::result::{FlowNode, FlowPath, FlowStep, FlowsResult};
use query::spec::{Counting, Direction, FlowsSpec};

use super::{Event, World, bad, name_matches, parse_date, parse_window_ms};

pub(super) fn run(world: &World, spec: &FlowsSpec) -> Result<FlowsResult, QueryError> {
    if !(1..=5).contains(&spec.steps) {
        return Err(bad("steps must be 1 to 5"));
    }
    let from = parse_date(&spec.from)?;
    let to = parse_date(&spec.to)?;
    if from > to {
        return Err(bad("from is after to"));
    }
    let window_ms = parse_window_ms(spec.window.as_deref(), "30d")?;
    let (range_start_ms, range_end_ms) = world.calendar.range_ms(from, to);
    let mut paths: Vec<Vec<String>> = Vec::new();
    for timeline in world.timelines(&spec.unit, &spec.filters)?.values() {
        for (index, anchor) in timeline.iter().enumerate() {
            let in_range = range_start_ms <= anchor.time_ms && anchor.time_ms < range_end_ms;
            if !in_range || !name_matches(&spec.anchor.event, anchor) || !world.passes(anchor, &spec.anchor.filters)? {
                continue;
            }
            paths.push(path_from(spec, timeline, index, window_ms));
            if spec.counting == Counting::Uniques {
                break;
            }
        }
    }
    Ok(FlowsResult { paths: counted_paths(spec, &paths), steps: steps_of(spec, &paths) })
}

/// The anchor's name, then up to `steps` events in walking order (interpretations 25, 26).
fn path_from(spec: &FlowsSpec, timeline: &[&Event], anchor_index: usize, window_ms: i64) -> Vec<String> {
    let anchor = timeline[anchor_index];
    let candidates: Vec<&Event> = match spec.direction {
        Direction::After => timeline[anchor_index + 1..]
            .iter()
            .copied()
            .filter(|event| event.time_ms > anchor.time_ms && event.time_ms <= anchor.time_ms + window_ms)
            .collect(),
        Direction::Before => timeline[..anchor_index]
            .iter()
            .rev()
            .copied()
            .filter(|event| event.time_ms < anchor.time_ms && event.time_ms >= anchor.time_ms - window_ms)
            .collect(),
    };
    let mut path = vec![anchor.name.clone()];
    path.extend(candidates.iter().take(spec.steps).map(|event| event.name.clone()));
    path
}

fn counted_paths(spec: &FlowsSpec, paths: &[Vec<String>]) -> Vec<FlowPath> {
    let mut counts: BTreeMap<&Vec<String>, u64> = BTreeMap::new();
    for path in paths {
        *counts.entry(path).or_default() += 1;
    }
    let mut result: Vec<FlowPath> = counts.into_iter().map(|(events, count)| FlowPath { events: events.clone(), count }).collect();
    result.sort_by(|a, b| b.count.cmp(&a.count).then(a.events.cmp(&b.events)));
    result.truncate(spec.limit.unwrap_or(50));
    result
}

fn steps_of(spec: &FlowsSpec, paths: &[Vec<String>]) -> Vec<FlowStep> {
    let mut steps = Vec::new();
    for step in 1..=spec.steps {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut dropoff = 0;
        for path in paths {
            match path.get(step) {
                Some(name) => *counts.entry(name).or_default() += 1,
                None if path.len() == step => dropoff += 1,
                None => {}
            }
        }
        let mut nodes: Vec<FlowNode> = counts.into_iter().map(|(event, count)| FlowNode { event: event.to_owned(), count }).collect();
        nodes.sort_by(|a, b| b.count.cmp(&a.count).then(a.event.cmp(&b.event)));
        steps.push(FlowStep { step, nodes, dropoff });
    }
    steps
}
