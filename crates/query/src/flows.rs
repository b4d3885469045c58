//! Flows: the paths people take after (or before) an anchor event.

use crate::calendar::parse_date;
use crate::context::Context;
use crate::error::QueryError;
use crate::filter::compile_all;
use crate::funnel::parse_window;
use crate::parallel::over_units;
use crate::result::{FlowNode, FlowPath, FlowStep, FlowsResult};
use crate::spec::{Counting, Direction, FlowsSpec};
use std::collections::HashMap;

const MAX_STEPS: usize = 5;

pub(crate) fn run(context: &Context<'_>, spec: &FlowsSpec) -> Result<FlowsResult, QueryError> {
    let table = context.table;
    if !(1..=MAX_STEPS).contains(&spec.steps) {
        return Err(QueryError::bad(format!("steps must be 1 to {MAX_STEPS}")));
    }
    let window = parse_window(spec.window.as_deref(), 30 * crate::calendar::MS_PER_DAY)?;
    let (start, end) = context.calendar.range(parse_date(&spec.from, "from")?, parse_date(&spec.to, "to")?)?;
    let path_filter = compile_all(context, &spec.filters)?;
    let mut anchor_filters = spec.filters.clone();
    anchor_filters.extend(spec.anchor.filters.iter().cloned());
    let anchor_filter = compile_all(context, &anchor_filters)?;
    let anchor_code = match spec.anchor.event.as_str() {
        "$any" => None,
        name => match table.event_code(name) {
            Some(code) => Some(code),
            None => return Ok(FlowsResult { paths: Vec::new(), steps: (1..=spec.steps).map(|step| FlowStep { step, nodes: Vec::new(), dropoff: 0 }).collect() }),
        },
    };
    let n_steps = spec.steps;
    let accumulators = over_units(
        table,
        HashMap::<Vec<u32>, u64>::new,
        |paths, units| {
            let mut path: Vec<u32> = Vec::with_capacity(n_steps + 1);
            for unit in units {
                let rows = table.rows_of(unit);
                let first = table.first_at_or_after(rows.clone(), start);
                for row in first..rows.end {
                    let time = table.times[row];
                    if time >= end {
                        break;
                    }
                    if anchor_code.is_some_and(|c| c != table.events[row]) || !anchor_filter.test(row, unit) {
                        continue;
                    }
                    path.clear();
                    path.push(table.events[row]);
                    match spec.direction {
                        Direction::After => {
                            for next in row + 1..rows.end {
                                if path.len() > n_steps || table.times[next] - time > window {
                                    break;
                                }
                                // Strictly after: events at the anchor's own time have no order.
                                if table.times[next] > time && path_filter.test(next, unit) {
                                    path.push(table.events[next]);
                                }
                            }
                        }
                        Direction::Before => {
                            for previous in (rows.start..row).rev() {
                                if path.len() > n_steps || time - table.times[previous] > window {
                                    break;
                                }
                                if table.times[previous] < time && path_filter.test(previous, unit) {
                                    path.push(table.events[previous]);
                                }
                            }
                        }
                    }
                    *paths.entry(path.clone()).or_default() += 1;
                    if spec.counting == Counting::Uniques {
                        break;
                    }
                }
            }
        },
    );
    let mut paths: HashMap<Vec<u32>, u64> = HashMap::new();
    for acc in accumulators {
        for (path, count) in acc {
            *paths.entry(path).or_default() += count;
        }
    }
    let name = |code: &u32| table.event_names[*code as usize].to_string();
    let mut steps: Vec<FlowStep> = (1..=n_steps).map(|step| FlowStep { step, nodes: Vec::new(), dropoff: 0 }).collect();
    let mut nodes: Vec<HashMap<u32, u64>> = vec![HashMap::new(); n_steps];
    for (path, count) in &paths {
        for (k, code) in path.iter().enumerate().skip(1) {
            *nodes[k - 1].entry(*code).or_default() += count;
        }
        if path.len() <= n_steps {
            steps[path.len() - 1].dropoff += count;
        }
    }
    for (step, counts) in steps.iter_mut().zip(nodes) {
        let mut list: Vec<FlowNode> = counts.into_iter().map(|(code, count)| FlowNode { event: name(&code), count }).collect();
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.event.cmp(&b.event)));
        step.nodes = list;
    }
    let mut paths: Vec<FlowPath> = paths.into_iter().map(|(path, count)| FlowPath { events: path.iter().map(name).collect(), count }).collect();
    paths.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.events.cmp(&b.events)));
    paths.truncate(spec.limit.unwrap_or(50));
    Ok(FlowsResult { paths, steps })
}
