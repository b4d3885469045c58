//! Flows in ClickHouse SQL: per person, the events as sorted tuples (time,
//! event, passes the filters, is an anchor in range); from the first anchor
//! (or, counting totals, each one, after an `ARRAY JOIN`) the next `steps`
//! events strictly after it (or before it, nearest first) within the window
//! that pass the filters, by `arrayFilter` and `arraySlice`. ClickHouse
//! counts each distinct path; the steps, drop-offs, order and limit are
//! shaped here exactly as the engine shapes them.

use super::sql;
use super::backend;
use crate::client::Client;
use query::result::{FlowNode, FlowPath, FlowStep, FlowsResult};
use query::spec::{Counting, Direction, FlowsSpec};
use query::{parse_date, Calendar, QueryError};
use std::collections::HashMap;

const MAX_STEPS: usize = 5;
const MS_PER_DAY: i64 = 86_400_000;

#[derive(serde::Deserialize)]
struct Counted {
    path: Vec<String>,
    n: u64,
}

pub(crate) fn run(client: &Client, meta: &meta::Meta, project: &meta::Project, spec: &FlowsSpec) -> Result<FlowsResult, QueryError> {
    if !(1..=MAX_STEPS).contains(&spec.steps) {
        return Err(QueryError::BadSpec(format!("steps must be 1 to {MAX_STEPS}")));
    }
    let window = query::parse_window(spec.window.as_deref(), 30 * MS_PER_DAY)?;
    let calendar = Calendar::new(&project.timezone)?;
    let to = parse_date(&spec.to, "to")?;
    let (start, end) = calendar.range(parse_date(&spec.from, "from")?, to)?;
    let filters: Vec<&query::spec::Filter> = spec.filters.iter().chain(spec.anchor.filters.iter()).collect();
    let range = (start.saturating_sub(window), end.saturating_add(window).saturating_add(1));
    let (scope, cohorts) = super::prepare(client, meta, project, &spec.unit, range, &filters, None, &calendar, to)?;
    let passes = sql::filters_with(&spec.filters, &cohorts)?;
    let anchor = format!("{} AND time_ms >= {start} AND time_ms < {end} AND {passes}", sql::selector(&spec.anchor.event, &spec.anchor.filters, &cohorts)?);
    let events = scope.events_of(&spec.unit, "1");
    let anchors = match spec.counting {
        Counting::Uniques => "[arrayFirst(x -> tupleElement(x, 4) = 1, evs)]",
        Counting::Totals => "arrayFilter(x -> tupleElement(x, 4) = 1, evs)",
    };
    let n = spec.steps;
    let following = match spec.direction {
        Direction::After => format!(
            "arraySlice(arrayFilter(x -> tupleElement(x, 1) > at AND tupleElement(x, 1) - at <= {window} AND tupleElement(x, 3) = 1, evs), 1, {n})"
        ),
        Direction::Before => format!(
            "arraySlice(arrayReverse(arrayFilter(x -> tupleElement(x, 1) < at AND at - tupleElement(x, 1) <= {window} AND tupleElement(x, 3) = 1, evs)), 1, {n})"
        ),
    };
    let statement = format!(
        "SELECT path, count() AS n FROM ( \
           SELECT tupleElement(a, 1) AS at, arrayConcat([tupleElement(a, 2)], arrayMap(x -> tupleElement(x, 2), {following})) AS path \
           FROM (SELECT arraySort(groupArray(tuple(time_ms, event, toUInt8({passes}), toUInt8({anchor})))) AS evs FROM ({events}) GROUP BY unit) \
           ARRAY JOIN {anchors} AS a WHERE tupleElement(a, 4) = 1) \
         GROUP BY path"
    );
    let counted: Vec<Counted> = client.query(&statement).map_err(backend)?;
    Ok(shape(spec, counted))
}

/// Steps, drop-offs and the listed paths, as the engine builds them.
fn shape(spec: &FlowsSpec, counted: Vec<Counted>) -> FlowsResult {
    let n_steps = spec.steps;
    let mut steps: Vec<FlowStep> = (1..=n_steps).map(|step| FlowStep { step, nodes: Vec::new(), dropoff: 0 }).collect();
    let mut nodes: Vec<HashMap<&str, u64>> = vec![HashMap::new(); n_steps];
    for path in &counted {
        for (k, event) in path.path.iter().enumerate().skip(1) {
            *nodes[k - 1].entry(event.as_str()).or_default() += path.n;
        }
        if path.path.len() <= n_steps {
            steps[path.path.len() - 1].dropoff += path.n;
        }
    }
    for (step, counts) in steps.iter_mut().zip(nodes) {
        let mut list: Vec<FlowNode> = counts.into_iter().map(|(event, count)| FlowNode { event: event.to_owned(), count }).collect();
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.event.cmp(&b.event)));
        step.nodes = list;
    }
    let mut paths: Vec<FlowPath> = counted.into_iter().map(|c| FlowPath { events: c.path, count: c.n }).collect();
    paths.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.events.cmp(&b.events)));
    paths.truncate(spec.limit.unwrap_or(50));
    FlowsResult { paths, steps }
}
