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
use super::backend;
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
    let (mut scope, cohorts) = super::prepare(client, meta, project, &spec.unit, (start, end.saturating_add(window)), &filters, spec.breakdown.as_ref(), &calendar, to)?;
    // A cohort breakdown segments the person instead: every entry of a
    // person counts in each cohort they are in (membership is a column of
    // the scope's events, as in insights).
    if let Some(Breakdown::Cohorts { cohort }) = &spec.breakdown {
        scope.add_columns(cohort.iter().map(|id| (format!("in_cohort_{id}"), format!("unit IN ({})", cohorts.get(id).map_or("SELECT ''", String::as_str)))).collect());
    }
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
        None | Some(Breakdown::Cohorts { .. }) => "''".to_owned(),
        Some(Breakdown::Name(key)) => sql::segment(key),
        Some(Breakdown::Property { property, source, buckets: None }) => sql::segment_of(*source, property),
        Some(Breakdown::Property { property, source, buckets: Some(edges) }) => sql::bucketed_segment(*source, property, edges)?,
    };
    let (person_segments, entry_in_segment) = match &spec.breakdown {
        Some(Breakdown::Cohorts { cohort }) => {
            let tests: Vec<String> = cohort.iter().map(|id| format!("if(max(in_cohort_{id}) = 1, '{id}', '')")).collect();
            (format!("arrayFilter(c -> c != '', [{}])", tests.join(", ")), "1")
        }
        _ => ("arrayReduce('groupUniqArray', arrayMap(x -> tupleElement(x, 2), entries))".to_owned(), "tupleElement(x, 2) = segment"),
    };
    // Per person: the Step 1 events (time, segment, held values), each later
    // step's (time, held values), each exclusion's times; then per person
    // and segment, that segment's entries.
    let mut per_person: Vec<String> = vec![
        format!("groupArrayIf(tuple(time_ms, {segment_sql}, {held}), {} AND time_ms < {end}) AS entries", step_tests[0]),
        format!("{person_segments} AS segments"),
    ];
    for (k, test) in step_tests.iter().enumerate().skip(1) {
        per_person.push(format!("arraySort(groupArrayIf(tuple(time_ms, {held}), {test})) AS t{k}"));
    }
    for (e, test) in exclusion_tests.iter().enumerate() {
        per_person.push(format!("arraySort(groupArrayIf(time_ms, {test})) AS x{e}"));
    }
    let carried: Vec<String> = (1..n).map(|k| format!("t{k}")).chain((0..exclusion_tests.len()).map(|e| format!("x{e}"))).collect();
    let per_segment = format!(
        "SELECT segment, arraySort(arrayMap(x -> tuple(tupleElement(x, 1), tupleElement(x, 3)), arrayFilter(x -> {entry_in_segment}, entries))) AS t0{carried} \
         FROM (SELECT {per_person} FROM ({events}) GROUP BY unit) \
         ARRAY JOIN segments AS segment",
        carried = carried.iter().map(|c| format!(", {c}")).collect::<String>(),
        per_person = per_person.join(", "),
    );
    // Counting totals, every entry starts an attempt; which of them count
    // is decided after (`chained_attempts`).
    let first_entries = match (spec.counting, spec.entry) {
        (Counting::Uniques, Entry::First) => "arraySlice(t0, 1, 1)",
        _ => "t0",
    };
    // Counting totals, the chain of attempts is walked by binary lifting in
    // `lifting_rounds` rounds, enough for 2^rounds entries per person; a
    // person with more (`longest`) asks for a second statement with more.
    let statement_with = |lifting_rounds: u32| -> String {
        // Each attempt's entry time and held values; `a{k}` its step k time
        // (0: not reached). Columns a lambda reads are also named outside it,
        // in `if(length(...) >= 0, ...)`: ClickHouse 18.16 drops a subquery
        // column that only a nested lambda reads.
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
        let person_sql = match spec.counting {
            // One row per person and segment: the earliest attempt of those that
            // went furthest.
            Counting::Uniques => {
                let depth: Vec<String> = (1..n).map(|k| format!("({}[i] > 0)", reached_name(k))).collect();
                let chosen: Vec<String> = (0..n).map(|k| format!("{}[best] AS s{k}", reached_name(k))).collect();
                format!(
                    "SELECT segment, {attempts}, arrayMap(i -> 1 + {depth}, arrayEnumerate(a0)) AS depths, indexOf(depths, arrayReduce('max', depths)) AS best, {chosen}, length(a0) AS longest \
                     FROM ({per_segment}) WHERE length(t0) > 0",
                    attempts = attempts.join(", "),
                    depth = depth.join(" + "),
                    chosen = chosen.join(", "),
                )
            }
            // One row per attempt that counts.
            Counting::Totals => {
                let last = n - 1;
                let ends = if spec.exclusions.is_empty() {
                    format!("arrayMap((entry, last) -> if(last > 0, last, entry + {window}), a0, a{last})")
                } else {
                    format!("arrayMap((entry, last, c) -> least(if(last > 0, last, entry + {window}), c), a0, a{last}, cut)")
                };
                let attempts = format!(
                    "SELECT segment, {attempts}, {ends} AS ends, length(a0) AS longest FROM ({per_segment}) WHERE length(t0) > 0",
                    attempts = attempts.join(", ")
                );
                let reached: Vec<String> = (0..n).map(reached_name).collect();
                chained_attempts(&attempts, &reached, lifting_rounds)
            }
        };
        let mut measures: Vec<String> = vec!["segment".to_owned(), "max(longest) AS longest".to_owned()];
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
        format!("SELECT {} FROM (SELECT {} FROM ({person_sql}) GROUP BY segment)", medians.join(", "), measures.join(", "))
    };
    let mut lifting_rounds = 6;
    let rows: Vec<Map<String, Value>> = loop {
        let rows: Vec<Map<String, Value>> = client.query(&statement_with(lifting_rounds)).map_err(backend)?;
        let longest = rows.iter().filter_map(|row| row.get("longest").and_then(Value::as_u64)).max().unwrap_or(0);
        if spec.counting == Counting::Uniques || longest <= 1 << lifting_rounds {
            break rows;
        }
        lifting_rounds = 64 - (longest - 1).leading_zeros();
    };
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

/// Counting totals: one row (segment, `s0`.., `longest`) per attempt that
/// counts, of the rows of `attempts` (a person's attempts from every entry:
/// `a0`, the step times `reached`, each attempt's end `ends`).
///
/// The engine's rule is a fold: the first entry starts an attempt, and the
/// next attempt starts at the first entry strictly after the previous one's
/// end. ClickHouse 18.16 has no `arrayFold`, so the fold is a walk along
/// `next` (each entry's successor): `next[i]` counts the entries at or
/// before `ends[i]` by sorting the ends in among the entry times (a
/// cumulative sum, no quadratic search), `j{r}` is `next` applied 2^r times
/// (a sentinel `m + 1` past the end), and each entry finds the last attempt
/// at or before it by binary lifting from the first; it counts when that is
/// itself. ClickHouse expands aliases in place, so each `j{r}` is a level of
/// its own: as aliases of one another they would double at every round.
fn chained_attempts(attempts: &str, reached: &[String], rounds: u32) -> String {
    let mut levels = format!(
        "SELECT *, arraySort(arrayConcat(arrayMap(t -> tuple(t, toUInt8(0), toUInt32(0)), a0), \
         arrayMap((e, i) -> tuple(e, toUInt8(1), toUInt32(i)), ends, arrayEnumerate(ends)))) AS merged, \
         arrayCumSum(arrayMap(x -> toUInt32(1 - tupleElement(x, 2)), merged)) AS at_or_before, \
         arrayMap(p -> toUInt32(tupleElement(p, 2) + 1), arraySort(arrayMap((x, c) -> tuple(tupleElement(x, 3), c), \
         arrayFilter(x -> tupleElement(x, 2) = 1, merged), arrayFilter((c, x) -> tupleElement(x, 2) = 1, at_or_before, merged)))) AS next, \
         arrayPushBack(next, toUInt32(length(a0) + 1)) AS j0 FROM ({attempts})"
    );
    for r in 1..rounds {
        levels = format!("SELECT *, arrayMap(x -> j{p}[x], j{p}) AS j{r} FROM ({levels})", p = r - 1);
    }
    let mut walk = vec!["arrayMap(i -> toUInt32(1), a0) AS w0".to_owned()];
    for (step, r) in (0..rounds).rev().enumerate() {
        walk.push(format!(
            "if(length(j{r}) >= 0, arrayMap((i, c) -> if(j{r}[c] <= i, j{r}[c], c), arrayEnumerate(a0), w{step}), emptyArrayUInt32()) AS w{}",
            step + 1
        ));
    }
    walk.push(format!("arrayMap((i, c) -> c = i, arrayEnumerate(a0), w{rounds}) AS kept"));
    let kept: Vec<String> = reached.iter().enumerate().map(|(k, times)| format!("arrayFilter((t, keep) -> keep, {times}, kept) AS kept{k}")).collect();
    let joined: Vec<String> = (0..reached.len()).map(|k| format!("kept{k} AS s{k}")).collect();
    let steps: Vec<String> = (0..reached.len()).map(|k| format!("s{k}")).collect();
    format!(
        "SELECT segment, {steps}, longest FROM (SELECT segment, {walk}, {kept}, longest FROM ({levels})) ARRAY JOIN {joined}",
        steps = steps.join(", "),
        walk = walk.join(", "),
        kept = kept.join(", "),
        joined = joined.join(", "),
    )
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


