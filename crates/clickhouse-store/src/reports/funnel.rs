//! Funnels in ClickHouse SQL, counting people, entry `first` or `any`, in
//! strict or any order, with exclusions, held properties and breakdowns,
//! without ClickHouse's `windowFunnel` (18.16's takes whole seconds, and the
//! rule here is "strictly later", to the millisecond).
//!
//! Per person, one sorted array of (time, held values) per step and of
//! times per exclusion. The attempts start at the entries (the first Step 1
//! in range, or every one); step `k` of each attempt is the first Step k
//! time strictly after step `k-1`'s (any order: after the entry, then the
//! running latest) within the entry's window with the entry's held values
//! (`arrayFirst`), 0 when the attempt stopped earlier. Each step is one
//! `arrayMap` over the previous step's array, so the statement grows
//! linearly with the steps. Exclusions are judged on those times and cut the
//! attempt at the earliest hit. The person's attempt is the earliest of
//! those that went furthest. With a breakdown, a person's Step 1 events are
//! split by segment (`ARRAY JOIN`). The outer query counts people per step
//! and the times between steps: sums for the averages, sorted arrays for the
//! medians (interpolated as the engine does).

use super::sql;
use super::{backend, unsupported};
use crate::client::Client;
use query::result::{FunnelResult, FunnelSegment, FunnelStep};
use query::spec::{Breakdown, Counting, Entry, FunnelSpec, StepOrder};
use query::{parse_date, Calendar, QueryError};
use serde_json::{Map, Value};

const MAX_STEPS: usize = 20;
const MS_PER_DAY: i64 = 86_400_000;

pub(crate) fn run(client: &Client, meta: &meta::Meta, project: &meta::Project, spec: &FunnelSpec) -> Result<FunnelResult, QueryError> {
    let n = spec.steps.len();
    if !(2..=MAX_STEPS).contains(&n) {
        return Err(QueryError::BadSpec(format!("a funnel has 2 to {MAX_STEPS} steps, got {n}")));
    }
    let window = query::parse_window(spec.window.as_deref(), 7 * MS_PER_DAY)?;
    if spec.counting != Counting::Uniques {
        return Err(unsupported("a funnel counting totals"));
    }
    for exclusion in &spec.exclusions {
        if exclusion.after_step < 1 || exclusion.before_step > n || exclusion.after_step >= exclusion.before_step {
            return Err(QueryError::BadSpec("an exclusion needs 1 <= after_step < before_step <= number of steps".into()));
        }
    }
    if spec.exclusions.len() > 32 {
        return Err(QueryError::BadSpec("at most 32 exclusions".into()));
    }
    let calendar = Calendar::new(&project.timezone)?;
    let to = parse_date(&spec.to, "to")?;
    let (start, end) = calendar.range(parse_date(&spec.from, "from")?, to)?;
    // Later steps may fall up to a window after the range.
    let filters: Vec<&query::spec::Filter> = spec
        .filters
        .iter()
        .chain(spec.steps.iter().flat_map(|step| step.filters.iter()))
        .chain(spec.exclusions.iter().flat_map(|exclusion| exclusion.filters.iter()))
        .collect();
    let (scope, cohorts) = super::prepare(client, meta, project, &spec.unit, (start, end.saturating_add(window)), &filters, spec.breakdown.as_ref(), &calendar, to)?;
    let shared = sql::filters_with(&spec.filters, &cohorts)?;
    let step_tests: Vec<String> = spec
        .steps
        .iter()
        .map(|step| sql::selector(&step.event, &step.filters, &cohorts))
        .collect::<Result<_, QueryError>>()?;
    let exclusion_tests: Vec<String> = spec
        .exclusions
        .iter()
        .map(|exclusion| sql::selector(&exclusion.event, &exclusion.filters, &cohorts))
        .collect::<Result<_, QueryError>>()?;
    let any_test: Vec<&String> = step_tests.iter().chain(&exclusion_tests).collect();
    let events = scope.events_of(&spec.unit, &format!("{shared} AND ({})", any_test.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" OR ")));
    // Held properties: a step counts only with the entry's values of them.
    let held = if spec.hold_constant.is_empty() {
        "''".to_owned()
    } else {
        // Each value's text, then a separator no JSON text contains raw.
        let parts: Vec<String> = spec.hold_constant.iter().map(|key| format!("{}, '\\x1f'", sql::segment_of(query::spec::Source::Event, key))).collect();
        format!("concat({})", parts.join(", "))
    };

    // A breakdown segments the entries: a person enters once per segment of
    // their Step 1 events (the value's JSON text, '' when not set).
    let segment_sql = match &spec.breakdown {
        None => "''".to_owned(),
        Some(Breakdown::Name(key)) => sql::segment(key),
        Some(Breakdown::Property { property, source, buckets: None }) => sql::segment_of(*source, property),
        Some(Breakdown::Property { property, source, buckets: Some(edges) }) => sql::bucketed_segment(*source, property, edges)?,
        Some(Breakdown::Cohorts { .. }) => return Err(unsupported("a cohort breakdown")),
    };
    // Per person: the Step 1 events (time, segment, held values), each later
    // step's (time, held values), each exclusion's times; then per person
    // and segment, that segment's entries.
    let mut per_person: Vec<String> = vec![format!("groupArrayIf(tuple(time_ms, {segment_sql}, {held}), {} AND time_ms < {end}) AS entries", step_tests[0])];
    for (k, test) in step_tests.iter().enumerate().skip(1) {
        per_person.push(format!("arraySort(groupArrayIf(tuple(time_ms, {held}), {test})) AS t{k}"));
    }
    for (e, test) in exclusion_tests.iter().enumerate() {
        per_person.push(format!("arraySort(groupArrayIf(time_ms, {test})) AS x{e}"));
    }
    let carried: Vec<String> = (1..n).map(|k| format!("t{k}")).chain((0..exclusion_tests.len()).map(|e| format!("x{e}"))).collect();
    let per_segment = format!(
        "SELECT segment, arraySort(arrayMap(x -> tuple(tupleElement(x, 1), tupleElement(x, 3)), arrayFilter(x -> tupleElement(x, 2) = segment, entries))) AS t0{carried} \
         FROM (SELECT {per_person} FROM ({events}) GROUP BY unit) \
         ARRAY JOIN arrayReduce('groupUniqArray', arrayMap(x -> tupleElement(x, 2), entries)) AS segment",
        carried = carried.iter().map(|c| format!(", {c}")).collect::<String>(),
        per_person = per_person.join(", "),
    );
    // Each attempt's entry time and held values; `a{k}` its step k time (0:
    // not reached). Columns a lambda reads are also named outside it, in
    // `if(length(...) >= 0, ...)`: ClickHouse 18.16 drops a subquery column
    // that only a nested lambda reads.
    let first_entries = match spec.entry {
        Entry::First => "arraySlice(t0, 1, 1)",
        Entry::Any => "t0",
    };
    let mut attempts: Vec<String> = vec![
        format!("arrayMap(x -> tupleElement(x, 1), {first_entries}) AS a0"),
        format!("arrayMap(x -> tupleElement(x, 2), {first_entries}) AS holds"),
    ];
    let first_after = |k: usize, after: &str| {
        format!("tupleElement(arrayFirst(t -> tupleElement(t, 1) > {after} AND tupleElement(t, 1) <= entry + {window} AND tupleElement(t, 2) = hold, t{k}), 1)")
    };
    match spec.order {
        StepOrder::Strict => {
            for k in 1..n {
                attempts.push(format!(
                    "if(length(t{k}) >= 0, arrayMap((entry, hold, previous) -> if(previous = 0, 0, {}), a0, holds, a{}), emptyArrayInt64()) AS a{k}",
                    first_after(k, "previous"),
                    k - 1
                ));
            }
        }
        // Steps 2..n in any order: step k is reached at the latest of the
        // first times of steps 2..k.
        StepOrder::Any => {
            for k in 1..n {
                attempts.push(format!("if(length(t{k}) >= 0, arrayMap((entry, hold) -> {}, a0, holds), emptyArrayInt64()) AS f{k}", first_after(k, "entry")));
                let previous = if k == 1 { "a0".to_owned() } else { format!("a{}", k - 1) };
                attempts.push(format!("arrayMap((p, f) -> if(p = 0 OR f = 0, 0, greatest(p, f)), {previous}, f{k}) AS a{k}"));
            }
        }
    }
    // Exclusions, judged on the steps matched without them: the earliest
    // hit cuts the attempt to the steps before it.
    let reached_name = |k: usize| if spec.exclusions.is_empty() { format!("a{k}") } else { format!("b{k}") };
    if !spec.exclusions.is_empty() {
        let mut hits: Vec<String> = Vec::new();
        for (e, exclusion) in spec.exclusions.iter().enumerate() {
            let (after, before) = (exclusion.after_step - 1, exclusion.before_step - 1);
            attempts.push(format!(
                "if(length(x{e}) >= 0, arrayMap((entry, after, before) -> if(after = 0, 0, arrayFirst(x -> x > after AND if(before > 0, x < before, x <= entry + {window}), x{e})), a0, a{after}, a{before}), emptyArrayInt64()) AS h{e}"
            ));
            hits.push(format!("if(hit{e} = 0, toInt64(9223372036854775807), hit{e})"));
        }
        // The hit arrays are the lambda's arguments: a column read only
        // inside a lambda would be dropped (see above).
        let least = hits.iter().skip(1).fold(hits[0].clone(), |acc, hit| format!("least({acc}, {hit})"));
        let parameters: Vec<String> = (0..spec.exclusions.len()).map(|e| format!("hit{e}")).collect();
        let arguments: Vec<String> = (0..spec.exclusions.len()).map(|e| format!("h{e}")).collect();
        attempts.push(format!("arrayMap(({}) -> {least}, {}) AS cut", parameters.join(", "), arguments.join(", ")));
        for k in 0..n {
            attempts.push(format!("arrayMap((t, c) -> if(t >= c, 0, t), a{k}, cut) AS b{k}"));
        }
    }
    let depth: Vec<String> = (1..n).map(|k| format!("({}[i] > 0)", reached_name(k))).collect();
    let chosen: Vec<String> = (0..n).map(|k| format!("{}[best] AS s{k}", reached_name(k))).collect();
    let person_sql = format!(
        "SELECT segment, {attempts}, arrayMap(i -> 1 + {depth}, arrayEnumerate(a0)) AS depths, indexOf(depths, arrayReduce('max', depths)) AS best, {chosen} \
         FROM ({per_segment}) WHERE length(t0) > 0",
        attempts = attempts.join(", "),
        depth = depth.join(" + "),
        chosen = chosen.join(", "),
    );
    let mut measures: Vec<String> = vec!["segment".to_owned()];
    for k in 0..n {
        measures.push(format!("countIf(s{k} > 0) AS count{k}"));
        if k > 0 {
            let previous = k - 1;
            measures.push(format!("sumIf(s{k} - s{previous}, s{k} > 0) AS sum_previous{k}"));
            measures.push(format!("sumIf(s{k} - s0, s{k} > 0) AS sum_start{k}"));
            measures.push(format!("arraySort(groupArrayIf(s{k} - s{previous}, s{k} > 0)) AS sorted_previous{k}"));
            measures.push(format!("arraySort(groupArrayIf(s{k} - s0, s{k} > 0)) AS sorted_start{k}"));
        }
    }
    let mut medians: Vec<String> = vec!["*".to_owned()];
    for k in 1..n {
        medians.push(format!("{} AS median_previous{k}", sql::quantile(&format!("sorted_previous{k}"), 1, 2)));
        medians.push(format!("{} AS median_start{k}", sql::quantile(&format!("sorted_start{k}"), 1, 2)));
    }
    let statement = format!("SELECT {} FROM (SELECT {} FROM ({person_sql}) GROUP BY segment)", medians.join(", "), measures.join(", "));
    let rows: Vec<Map<String, Value>> = client.query(&statement).map_err(backend)?;
    let mut segments: Vec<FunnelSegment> = rows
        .iter()
        .map(|row| FunnelSegment {
            segment: sql::segment_value(row.get("segment").and_then(Value::as_str).unwrap_or_default()),
            steps: steps_of(spec, row),
        })
        .filter(|segment| segment.steps[0].count > 0)
        .collect();
    if spec.breakdown.is_none() {
        let steps = match segments.pop() {
            Some(only) => only.steps,
            None => steps_of(spec, &Map::new()),
        };
        return Ok(FunnelResult { steps, segments: None });
    }
    segments.sort_by(|a, b| b.steps[0].count.cmp(&a.steps[0].count).then_with(|| query::compare_segments(&a.segment, &b.segment)));
    if let Some(limit) = spec.limit {
        segments.truncate(limit);
    }
    Ok(FunnelResult { steps: Vec::new(), segments: Some(segments) })
}

/// The steps of one row of counts, sums and medians (all zero when empty).
fn steps_of(spec: &FunnelSpec, row: &Map<String, Value>) -> Vec<FunnelStep> {
    let n = spec.steps.len();
    let number = |name: String| row.get(&name).and_then(Value::as_f64);
    let counts: Vec<u64> = (0..n).map(|k| row.get(&format!("count{k}")).and_then(Value::as_u64).unwrap_or(0)).collect();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    (0..n)
        .map(|k| {
            let count = counts[k];
            let previous = if k == 0 { count } else { counts[k - 1] };
            let average = |sum: Option<f64>| sum.filter(|_| count > 0).map(|s| s / count as f64);
            FunnelStep {
                event: spec.steps[k].event.clone(),
                count,
                conversion_from_previous: ratio(count, previous),
                conversion_from_start: ratio(count, counts[0]),
                avg_time_from_previous_ms: if k == 0 { None } else { average(number(format!("sum_previous{k}"))) },
                median_time_from_previous_ms: if k == 0 { None } else { number(format!("median_previous{k}")) },
                avg_time_from_start_ms: if k == 0 { None } else { average(number(format!("sum_start{k}"))) },
                median_time_from_start_ms: if k == 0 { None } else { number(format!("median_start{k}")) },
            }
        })
        .collect()
}


