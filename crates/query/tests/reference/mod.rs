//! A plain reference implementation of the reports of docs/reports.md, used to
//! check the engine (`agreement.rs`) and checked itself by hand-computed cases
//! (`reference_cases.rs`). It works person by person, straight from the rules,
//! with no index, no columnar trick and no code shared with the engine: only
//! the spec and result types and jiff for the calendar. Slow on purpose.
//!
//! Interpretations: where docs/reports.md leaves a detail open, this is what
//! the reference does (and what the engine must do to agree). Items marked
//! (engine) were first chosen by the engine and adopted here.
//!
//! Data
//! 1. Identity: a link `(from, to)` maps `from` to `to`; the first link of a
//!    `from` wins ("a device keeps its first user"); chains are followed (a
//!    cycle stops at the first repeat). The person is the end of the chain.
//!    A person's profile is the one under the canonical id, else (engine) the
//!    one under the smallest of the person's other ids.
//! 2. Deduplication keeps the last copy of each (distinct_id, time, event,
//!    insert_id). An actor's timeline is ordered by (time, event name,
//!    insert_id, distinct_id): that order decides every tie (the "first"
//!    Step 1, the first anchor, the first born event), never arrival order.
//! 3. With `unit: {"group": K}` the actor is the value of property K (numbers
//!    normalised as in 6); events without K (or with null) are left out of
//!    every count. (engine) Profile filters and profile breakdowns then read
//!    group profiles (a Dataset has none: always missing), and any cohort
//!    filter or cohort breakdown in the spec is a bad spec.
//!
//! Values and filters
//! 4. A property whose value is JSON null is treated as missing everywhere.
//! 5. `neq`, `not_in`, `not_contains` are the exact negations of `eq`, `in`,
//!    `contains`, so they hold when the property is missing (and
//!    `not_contains` holds for non-string values). `contains` and the numeric
//!    ops hold only for string / numeric values; strings are never parsed as
//!    numbers.
//! 6. Segments: numbers are one type, so `3` and `3.0` are one segment, shown
//!    as the integer `3` (integral values below 2^53 in magnitude are shown as
//!    integers). Segment order (ties of `limit`, funnel segments): booleans
//!    (false, true), then numbers ascending, then strings (byte order), then
//!    lists/objects (by compact JSON text), then null last.
//! 7. Numeric `buckets` label numbers: bounds print like JSON numbers (`10`,
//!    `2.5`); ranges are half-open: "< 10", "10 - 100" is [10, 100), ">= 1000".
//!    (engine) A present non-numeric value keeps its own value as segment;
//!    missing is null.
//! 8. A cohort breakdown puts a person in one segment per listed cohort they
//!    belong to (segment = the id as a JSON number); people in none of them are
//!    not counted at all (no null segment).
//! 9. Cohorts (engine, and docs: "before the query's to"): periods end on the
//!    report's `to` day. `within_days: K` covers [start(to - K + 1),
//!    start(to + 1)); a rule's own `from` / `to` dates replace either end; no
//!    period means every event up to the end of `to`; K = 0 is a bad spec.
//!    (`now_ms` only matters to `cohort_members`, not covered here.) Cohort
//!    rules see all the person's events (the report's `where` does not
//!    apply). A property filter inside a cohort always tests the profile. An
//!    unknown cohort id is `QueryError::UnknownCohort`.
//!
//! Insights
//! 10. Buckets are keyed by local wall-clock time: in the autumn DST change the
//!     repeated hour is one bucket `..T01:00` holding both hours; the hour
//!     skipped in spring has no key. A week bucket is keyed by its Monday even
//!     when that Monday is before `from` (only in-range events count).
//! 11. A breakdown series exists for every segment that at least one in-range
//!     event of the entry (after filters) falls in, even if the measure reads
//!     nothing there (property aggregates of events without a numeric value
//!     give null points). Without a breakdown there is exactly one series per
//!     entry, even when empty.
//! 12. (engine, the literal reading of "every series then carries total")
//!     `total` is present only with a breakdown and a `limit`. It is the
//!     measure computed with the whole range as one bucket; for
//!     `dau`/`wau`/`mau` that is the distinct people in the range (no
//!     look-back). It is null (absent) when a property aggregate has no value.
//! 13. Series are listed entry by entry; within an entry, segments by that
//!     whole-range measure descending (nulls after all numbers), ties by
//!     segment order (6); `limit` keeps the first N of each entry.
//! 14. `frequency` of an empty bucket is 0 ("zero if empty"; only property
//!     aggregates give null); `series.measure` is the measure's name
//!     (`"frequency"`, not the aggregate).
//! 15. Formulas: letters A..Z, numbers, + - * / (unary minus too),
//!     parentheses. With a breakdown, a formula has one series per segment of
//!     the listed series (after `limit`), in order of first appearance among
//!     them (engine); a letter's value at (segment, bucket) is that entry's
//!     measure there, even if that entry's series for the segment was cut by
//!     `limit` (0, or null for property aggregates, when it has no events
//!     there). A null operand makes the result null; so does a division by
//!     zero. A letter past the last entry is a bad spec.
//! 16. `previous` is the whole report (series, formulas, its own segments and
//!     limit) over [from - n days, from - 1 day], n = the range's day count.
//!
//! Funnels
//! 17. A step's "own time" is the time of the event that matched it. Strict
//!     order: step k is the first match with time > step k-1's time and
//!     <= entry + window. Order any: each step k >= 2 independently takes its
//!     first match with time in (entry, entry + window]; one event may satisfy
//!     several steps; the attempt reaches step k when steps 2..k all matched.
//!     The completion time of step k is the max own time of steps 1..k;
//!     "time from previous" = completion(k) - completion(k-1) and "from start"
//!     = completion(k) - entry time (for strict order these are just the own
//!     times).
//! 18. `hold_constant`: a step event must have the same value (per 4 and the
//!     equality of filters) as the Step 1 event; missing matches missing only.
//!     Exclusion events are not subject to it.
//! 19. Exclusion (a, b), judged on the steps matched without exclusions:
//!     applies when step a was reached; take the first event E (with the
//!     exclusion's `where`) with time > completion(a) and <= entry + window;
//!     it cuts the attempt if step b was not reached or E's time <
//!     completion(b). The attempt then keeps the leading steps whose
//!     completion is < the cut (the earliest cut of all exclusions). For
//!     strict order completion = own time; for order any (engine) it is when
//!     the funnel reached the step. An event may be both a step's event (e.g.
//!     `$any`) and the exclusion event.
//! 20. The end of an attempt: the cut time if excluded, else completion(n) if
//!     converted, else entry + window. With `counting: "totals"` the attempts
//!     are sequential (each starts at the first in-range Step 1 strictly after
//!     the previous attempt's end) and `entry` is ignored.
//! 21. Breakdown (docs/reports.md): a person enters once per segment. The
//!     rules run separately for each segment, with only the Step 1 events of
//!     that segment as entries (Mixpanel's "once per breakdown segment"); for
//!     totals, each segment has its own sequence of attempts.
//! 22. Step 1: conversions are 1.0 (0.0 when nobody entered), times null.
//!     Step k: count_k / count_(k-1) and count_k / count_1 (0.0 over 0);
//!     times are averages / medians (interpolated) over the counted units.
//! 23. With a breakdown: `steps` is empty and `segments` lists the segments by
//!     Step 1 count descending, ties by segment order (6); `limit` keeps the
//!     first N. Without a breakdown `segments` is absent and `steps` has all n
//!     steps even when nobody entered.
//!
//! Retention
//! 24. Only returns in brackets < `periods` count; `on_or_after` fills the
//!     brackets 0..=the last such bracket. A return at the birth's time that is
//!     another event counts in bracket 0. `recurring` uses born events in range.
//!
//! Flows
//! 25. Path events are any events (not only the anchor's kind) passing the
//!     report's `where`, with time strictly after the anchor (strictly before
//!     it for `before`) and within the window (inclusive); events at the
//!     anchor's exact time are in neither direction (as funnel steps need a
//!     strictly greater time). Only the anchor must be in range. `after` walks
//!     the timeline (2) forwards, `before` backwards, nearest first.
//! 26. A path's `events` starts with the anchor's own name, then the path
//!     events in walking order (so for `before`, nearest first).
//! 27. `steps` always has entries 1..=steps, even with no paths. Step k has the
//!     names at position k of all paths (not only the listed ones), by count
//!     descending, ties by name ascending; (engine) its `dropoff` counts the
//!     paths that end right before step k (exactly k - 1 events after the
//!     anchor), so nodes(k) + dropoff(k) = the paths reaching step k - 1.

#![allow(dead_code)] // each test binary uses part of the reference

mod flows;
mod funnel;
mod insights;
mod retention;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use events::Properties;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use query::QueryError;
use query::result::ReportResult;
use query::spec::{Breakdown, CohortPeriod, CohortRule, Filter, Interval, Op, Source, Spec, Unit};
use serde_json::Value;

/// The reference's input: the same shape as the engine's `query::Dataset`.
#[derive(Debug, Clone)]
pub(crate) struct Dataset {
    pub(crate) timezone: String,
    pub(crate) events: Vec<events::Event>,
    pub(crate) links: Vec<(String, String)>,
    pub(crate) profiles: Vec<(String, Properties)>,
    pub(crate) cohorts: Vec<(i64, CohortRule)>,
    pub(crate) now_ms: i64,
}

/// Runs one insights, funnel, retention or flows report.
pub(crate) fn run(dataset: &Dataset, spec: &Spec) -> Result<ReportResult, QueryError> {
    let world = World::build(dataset, spec)?;
    match spec {
        Spec::Insights(spec) => insights::run(&world, spec).map(ReportResult::Insights),
        Spec::Funnel(spec) => funnel::run(&world, spec).map(ReportResult::Funnel),
        Spec::Retention(spec) => retention::run(&world, spec).map(ReportResult::Retention),
        Spec::Flows(spec) => flows::run(&world, spec).map(ReportResult::Flows),
        other => panic!("the reference does not cover {other:?}"),
    }
}

pub(crate) fn bad(message: impl Into<String>) -> QueryError {
    QueryError::BadSpec(message.into())
}

/// One deduplicated event with its person resolved.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) distinct_id: String,
    pub(crate) person: String,
    pub(crate) time_ms: i64,
    pub(crate) insert_id: String,
    pub(crate) properties: Properties,
}

/// The data set, deduplicated, resolved and sorted in timeline order.
pub(crate) struct World {
    pub(crate) calendar: Calendar,
    pub(crate) events: Vec<Event>,
    /// Person (canonical id) to profile; empty when the report counts groups.
    profiles: BTreeMap<String, Properties>,
    cohorts: BTreeMap<i64, CohortRule>,
    /// The day cohorts' periods end on: the report's `to` (interpretation 9).
    cohort_day: Date,
}

impl World {
    fn build(dataset: &Dataset, spec: &Spec) -> Result<World, QueryError> {
        let calendar = Calendar::new(&dataset.timezone)?;
        let (to, unit) = match spec {
            Spec::Insights(spec) => (&spec.to, &spec.unit),
            Spec::Funnel(spec) => (&spec.to, &spec.unit),
            Spec::Retention(spec) => (&spec.to, &spec.counted),
            Spec::Flows(spec) => (&spec.to, &spec.unit),
            other => panic!("the reference does not cover {other:?}"),
        };
        if matches!(unit, Unit::Group { .. }) && uses_cohorts(spec) {
            return Err(bad("cohorts are sets of people; they cannot be used in a report counted by group"));
        }
        let mut first_link: BTreeMap<&str, &str> = BTreeMap::new();
        for (from, to) in &dataset.links {
            first_link.entry(from.as_str()).or_insert(to.as_str());
        }
        let mut last_copy: BTreeMap<(&str, i64, &str, &str), &events::Event> = BTreeMap::new();
        for event in &dataset.events {
            let key = (event.distinct_id.as_str(), event.time_ms, event.name.as_str(), event.insert_id.as_str());
            last_copy.insert(key, event);
        }
        let mut events: Vec<Event> = last_copy
            .values()
            .map(|event| Event {
                name: event.name.clone(),
                distinct_id: event.distinct_id.clone(),
                person: resolve_person(&first_link, &event.distinct_id),
                time_ms: event.time_ms,
                insert_id: event.insert_id.clone(),
                properties: event.properties.clone(),
            })
            .collect();
        events.sort_by(|a, b| timeline_key(a).cmp(&timeline_key(b)));
        let profiles = match unit {
            Unit::Users => person_profiles(&first_link, &dataset.profiles),
            Unit::Group { .. } => BTreeMap::new(),
        };
        let cohorts = dataset.cohorts.iter().cloned().collect();
        Ok(World { calendar, events, profiles, cohorts, cohort_day: parse_date(to)? })
    }

    /// Who an event counts for: its person, or its group value.
    pub(crate) fn actor_of(&self, event: &Event, unit: &Unit) -> Option<String> {
        match unit {
            Unit::Users => Some(event.person.clone()),
            Unit::Group { group } => present(event.properties.get(group)).map(|value| segment_value(Some(value)).to_string()),
        }
    }

    /// The events passing `filters`, by actor, each list in timeline order.
    pub(crate) fn timelines(&self, unit: &Unit, filters: &[Filter]) -> Result<BTreeMap<String, Vec<&Event>>, QueryError> {
        let mut timelines: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
        for event in &self.events {
            let Some(actor) = self.actor_of(event, unit) else { continue };
            if self.passes(event, filters)? {
                timelines.entry(actor).or_default().push(event);
            }
        }
        Ok(timelines)
    }

    pub(crate) fn profile_of(&self, person: &str) -> Option<&Properties> {
        self.profiles.get(person)
    }

    /// True when the event passes every filter of the list.
    pub(crate) fn passes(&self, event: &Event, filters: &[Filter]) -> Result<bool, QueryError> {
        for filter in filters {
            if !self.filter_holds(event, filter)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn filter_holds(&self, event: &Event, filter: &Filter) -> Result<bool, QueryError> {
        match filter {
            Filter::Property { property, op, value, source } => {
                let actual = match source {
                    Source::Event => event.properties.get(property),
                    Source::Profile => self.profile_of(&event.person).and_then(|profile| profile.get(property)),
                };
                Ok(op_holds(*op, actual, value))
            }
            Filter::Cohort { cohort } => self.in_cohort(*cohort, &event.person),
            Filter::NotCohort { not_cohort } => Ok(!self.in_cohort(*not_cohort, &event.person)?),
            Filter::Any { any } => {
                for inner in any {
                    if self.filter_holds(event, inner)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::All { all } => self.passes(event, all),
        }
    }

    /// True when the person belongs to saved cohort `id`.
    pub(crate) fn in_cohort(&self, id: i64, person: &str) -> Result<bool, QueryError> {
        let rule = self.cohorts.get(&id).ok_or(QueryError::UnknownCohort(id))?;
        self.rule_holds(rule, person)
    }

    fn rule_holds(&self, rule: &CohortRule, person: &str) -> Result<bool, QueryError> {
        match rule {
            CohortRule::Did { did, at_least, period, filters } => Ok(self.count_done(person, did, period, filters)? >= *at_least),
            CohortRule::DidNot { did_not, period, filters } => Ok(self.count_done(person, did_not, period, filters)? == 0),
            CohortRule::Any { any } => {
                for inner in any {
                    if self.rule_holds(inner, person)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            CohortRule::All { all } => {
                for inner in all {
                    if !self.rule_holds(inner, person)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            CohortRule::Profile(filter) => self.profile_filter_holds(filter, person),
        }
    }

    fn count_done(&self, person: &str, event_name: &str, period: &CohortPeriod, filters: &[Filter]) -> Result<u64, QueryError> {
        let (start_ms, end_ms) = self.period_bounds(period)?;
        let mut n_events = 0;
        for event in &self.events {
            let in_period = start_ms <= event.time_ms && event.time_ms < end_ms;
            if event.person == person && name_matches(event_name, event) && in_period && self.passes(event, filters)? {
                n_events += 1;
            }
        }
        Ok(n_events)
    }

    fn period_bounds(&self, period: &CohortPeriod) -> Result<(i64, i64), QueryError> {
        let first_day = match (&period.from, period.within_days) {
            (Some(from), _) => Some(parse_date(from)?),
            (None, Some(0)) => return Err(bad("within_days must be at least 1")),
            (None, Some(n_days)) => Some(add_days(self.cohort_day, 1 - i64::from(n_days))),
            (None, None) => None,
        };
        let last_day = match &period.to {
            Some(to) => parse_date(to)?,
            None => self.cohort_day,
        };
        if first_day.is_some_and(|first_day| last_day < first_day) {
            return Err(bad("a cohort period ends before it starts"));
        }
        let start = first_day.map_or(i64::MIN, |first_day| self.calendar.start_of_day_ms(first_day));
        Ok((start, self.calendar.start_of_day_ms(add_days(last_day, 1))))
    }

    fn profile_filter_holds(&self, filter: &Filter, person: &str) -> Result<bool, QueryError> {
        match filter {
            Filter::Property { property, op, value, .. } => {
                Ok(op_holds(*op, self.profile_of(person).and_then(|profile| profile.get(property)), value))
            }
            Filter::Cohort { cohort } => self.in_cohort(*cohort, person),
            Filter::NotCohort { not_cohort } => Ok(!self.in_cohort(*not_cohort, person)?),
            Filter::Any { any } => {
                for inner in any {
                    if self.profile_filter_holds(inner, person)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::All { all } => {
                for inner in all {
                    if !self.profile_filter_holds(inner, person)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// The segments an event falls in: `[None]` without a breakdown.
    pub(crate) fn segments_of(&self, breakdown: Option<&Breakdown>, event: &Event) -> Result<Vec<Option<Value>>, QueryError> {
        let (property, source, buckets) = match breakdown {
            None => return Ok(vec![None]),
            Some(Breakdown::Name(property)) => (property, Source::Event, None),
            Some(Breakdown::Property { property, source, buckets }) => (property, *source, buckets.as_deref()),
            Some(Breakdown::Cohorts { cohort }) => {
                let mut segments = Vec::new();
                for id in cohort {
                    let segment = Some(Value::from(*id));
                    if self.in_cohort(*id, &event.person)? && !segments.contains(&segment) {
                        segments.push(segment);
                    }
                }
                return Ok(segments);
            }
        };
        let raw = match source {
            Source::Event => event.properties.get(property),
            Source::Profile => self.profile_of(&event.person).and_then(|profile| profile.get(property)),
        };
        let segment = match (buckets, present(raw).and_then(Value::as_f64)) {
            (Some(bounds), Some(number)) => Value::String(bucket_label(number, bounds)),
            _ => segment_value(raw),
        };
        Ok(vec![Some(segment)])
    }
}

/// Each person's profile: the one under their canonical id, else the one
/// under the smallest of their other ids (interpretation 1).
fn person_profiles(first_link: &BTreeMap<&str, &str>, profiles: &[(String, Properties)]) -> BTreeMap<String, Properties> {
    let mut by_id: BTreeMap<&str, &Properties> = BTreeMap::new();
    for (id, properties) in profiles {
        by_id.entry(id.as_str()).or_insert(properties);
    }
    let mut result: BTreeMap<String, Properties> = BTreeMap::new();
    for (id, properties) in &by_id {
        let person = resolve_person(first_link, id);
        if person == *id {
            result.insert(person, (*properties).clone());
        }
    }
    // `by_id` is in id order, so the first alias seen is the smallest.
    for (id, properties) in &by_id {
        result.entry(resolve_person(first_link, id)).or_insert_with(|| (*properties).clone());
    }
    result
}

/// True when any filter of the spec, or its breakdown, names a cohort.
fn uses_cohorts(spec: &Spec) -> bool {
    fn in_filters(filters: &[Filter]) -> bool {
        filters.iter().any(|filter| match filter {
            Filter::Cohort { .. } | Filter::NotCohort { .. } => true,
            Filter::Any { any } => in_filters(any),
            Filter::All { all } => in_filters(all),
            Filter::Property { .. } => false,
        })
    }
    let cohort_breakdown = |breakdown: &Option<Breakdown>| matches!(breakdown, Some(Breakdown::Cohorts { .. }));
    match spec {
        Spec::Insights(spec) => {
            cohort_breakdown(&spec.breakdown) || in_filters(&spec.filters) || spec.events.iter().any(|entry| in_filters(&entry.filters))
        }
        Spec::Funnel(spec) => {
            cohort_breakdown(&spec.breakdown)
                || in_filters(&spec.filters)
                || spec.steps.iter().any(|step| in_filters(&step.filters))
                || spec.exclusions.iter().any(|exclusion| in_filters(&exclusion.filters))
        }
        Spec::Retention(spec) => in_filters(&spec.filters) || in_filters(&spec.born.filters) || in_filters(&spec.returning.filters),
        Spec::Flows(spec) => in_filters(&spec.filters) || in_filters(&spec.anchor.filters),
        _ => false,
    }
}

fn resolve_person(first_link: &BTreeMap<&str, &str>, distinct_id: &str) -> String {
    let mut seen = vec![distinct_id];
    let mut current = distinct_id;
    while let Some(next) = first_link.get(current) {
        if seen.contains(next) {
            break;
        }
        seen.push(next);
        current = next;
    }
    current.to_owned()
}

/// The order of an actor's timeline (interpretation 2).
pub(crate) fn timeline_key(event: &Event) -> (i64, &str, &str, &str) {
    (event.time_ms, &event.name, &event.insert_id, &event.distinct_id)
}

/// True when the selector's event name (or `$any`) matches.
pub(crate) fn name_matches(selector: &str, event: &Event) -> bool {
    selector == "$any" || selector == event.name
}

// ---- values ----

/// The value, unless missing or JSON null (interpretation 4).
pub(crate) fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|value| !value.is_null())
}

/// Equality of property values: numbers as one type, lists and objects by text.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Array(_) | Value::Object(_), Value::String(text)) | (Value::String(text), Value::Array(_) | Value::Object(_)) => {
            let structured = if a.is_string() { b } else { a };
            serde_json::to_string(structured).is_ok_and(|json| json == *text)
        }
        (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => *a == *b,
        _ => false,
    }
}

/// True when two optional values are "the same" for hold_constant (interpretation 18).
pub(crate) fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (present(a), present(b)) {
        (None, None) => true,
        (Some(a), Some(b)) => values_equal(a, b),
        _ => false,
    }
}

pub(crate) fn op_holds(op: Op, actual: Option<&Value>, expected: &Value) -> bool {
    let actual = present(actual);
    let number = actual.and_then(Value::as_f64);
    let expected_number = expected.as_f64();
    let compare = |holds: fn(f64, f64) -> bool| match (number, expected_number) {
        (Some(x), Some(v)) => holds(x, v),
        _ => false,
    };
    match op {
        Op::Eq => actual.is_some_and(|value| values_equal(value, expected)),
        Op::Neq => !op_holds(Op::Eq, actual, expected),
        Op::In => actual.is_some_and(|value| list_of(expected).iter().any(|item| values_equal(value, item))),
        Op::NotIn => !op_holds(Op::In, actual, expected),
        Op::Contains => match (actual, expected) {
            (Some(Value::String(text)), Value::String(needle)) => text.contains(needle.as_str()),
            _ => false,
        },
        Op::NotContains => !op_holds(Op::Contains, actual, expected),
        Op::Gt => compare(|x, v| x > v),
        Op::Gte => compare(|x, v| x >= v),
        Op::Lt => compare(|x, v| x < v),
        Op::Lte => compare(|x, v| x <= v),
        Op::Between => {
            let bounds = list_of(expected);
            match (number, bounds.first().and_then(Value::as_f64), bounds.get(1).and_then(Value::as_f64)) {
                (Some(x), Some(low), Some(high)) => low <= x && x <= high,
                _ => false,
            }
        }
        Op::Set => actual.is_some(),
        Op::NotSet => actual.is_none(),
    }
}

fn list_of(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// A property value as a breakdown segment: null when missing, numbers
/// normalised (interpretation 6).
pub(crate) fn segment_value(value: Option<&Value>) -> Value {
    match present(value) {
        None => Value::Null,
        Some(Value::Number(number)) => {
            let x = number.as_f64().expect("serde_json numbers are finite");
            if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 { Value::from(x as i64) } else { Value::from(x) }
        }
        Some(other) => other.clone(),
    }
}

/// The order of segments (interpretation 6).
pub(crate) fn segment_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(value: &Value) -> u8 {
        match value {
            Value::Bool(_) => 0,
            Value::Number(_) => 1,
            Value::String(_) => 2,
            Value::Array(_) | Value::Object(_) => 3,
            Value::Null => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).expect("finite numbers"),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ if rank(a) == 3 && rank(b) == 3 => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Order of optional segments: `None` only occurs without a breakdown.
pub(crate) fn optional_segment_cmp(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => segment_cmp(a, b),
        _ => Ordering::Equal,
    }
}

/// The label of the bucket `number` falls in (interpretation 7).
pub(crate) fn bucket_label(number: f64, bounds: &[f64]) -> String {
    let Some(first) = bounds.first() else { return format!("{number}") };
    if number < *first {
        return format!("< {first}");
    }
    for pair in bounds.windows(2) {
        if pair[0] <= number && number < pair[1] {
            return format!("{} - {}", pair[0], pair[1]);
        }
    }
    format!(">= {}", bounds[bounds.len() - 1])
}

/// Linear interpolation between the two nearest ranks (DuckDB's `quantile_cont`).
pub(crate) fn quantile_cont(values: &[f64], fraction: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let position = fraction * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64))
}

pub(crate) fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() { None } else { Some(values.iter().sum::<f64>() / values.len() as f64) }
}

/// `Nd`, `Nh` or `Nm` in milliseconds.
pub(crate) fn parse_window_ms(window: Option<&str>, default: &str) -> Result<i64, QueryError> {
    let text = window.unwrap_or(default);
    let (digits, unit_ms) = match text.split_at(text.len().saturating_sub(1)) {
        (digits, "d") => (digits, 86_400_000),
        (digits, "h") => (digits, 3_600_000),
        (digits, "m") => (digits, 60_000),
        _ => return Err(bad(format!("window must be Nd, Nh or Nm, got {text:?}"))),
    };
    let n: i64 = digits.parse().map_err(|_| bad(format!("window must be Nd, Nh or Nm, got {text:?}")))?;
    if n <= 0 {
        return Err(bad(format!("window must be positive, got {text:?}")));
    }
    Ok(n * unit_ms)
}

// ---- calendar ----

pub(crate) fn parse_date(text: &str) -> Result<Date, QueryError> {
    text.parse::<Date>().map_err(|error| bad(format!("bad date {text:?}: {error}")))
}

pub(crate) fn add_days(date: Date, n_days: i64) -> Date {
    date.checked_add(Span::new().days(n_days)).expect("dates stay in range")
}

/// The days of `from..=to`, in order.
pub(crate) fn days_of(from: Date, to: Date) -> Vec<Date> {
    let mut days = Vec::new();
    let mut day = from;
    while day <= to {
        days.push(day);
        day = add_days(day, 1);
    }
    days
}

pub(crate) fn monday_of(date: Date) -> Date {
    add_days(date, -i64::from(date.weekday().to_monday_zero_offset()))
}

/// Local days and buckets of the project's time zone.
pub(crate) struct Calendar {
    tz: TimeZone,
}

impl Calendar {
    fn new(name: &str) -> Result<Calendar, QueryError> {
        let tz = TimeZone::get(name).map_err(|error| bad(format!("unknown time zone {name:?}: {error}")))?;
        Ok(Calendar { tz })
    }

    /// Local midnight of `date` (the first instant of the day when midnight is skipped).
    pub(crate) fn start_of_day_ms(&self, date: Date) -> i64 {
        date.to_zoned(self.tz.clone()).expect("dates stay in range").timestamp().as_millisecond()
    }

    /// `[start(from), start(to + 1))`.
    pub(crate) fn range_ms(&self, from: Date, to: Date) -> (i64, i64) {
        (self.start_of_day_ms(from), self.start_of_day_ms(add_days(to, 1)))
    }

    pub(crate) fn local(&self, time_ms: i64) -> DateTime {
        Timestamp::from_millisecond(time_ms).expect("times stay in range").to_zoned(self.tz.clone()).datetime()
    }

    pub(crate) fn local_date(&self, time_ms: i64) -> Date {
        self.local(time_ms).date()
    }

    pub(crate) fn bucket_key(&self, time_ms: i64, interval: Interval) -> String {
        let local = self.local(time_ms);
        match interval {
            Interval::Hour => format!("{}T{:02}:00", local.date(), local.hour()),
            Interval::Day => local.date().to_string(),
            Interval::Week => monday_of(local.date()).to_string(),
            Interval::Month => local.date().first_of_month().to_string(),
        }
    }

    /// Every bucket key of the range: the keys of all its instants, found by
    /// walking the range in 15-minute steps (every local hour is hit).
    pub(crate) fn bucket_keys(&self, from: Date, to: Date, interval: Interval) -> Vec<String> {
        let (start_ms, end_ms) = self.range_ms(from, to);
        let mut keys = std::collections::BTreeSet::new();
        let mut time_ms = start_ms;
        while time_ms < end_ms {
            keys.insert(self.bucket_key(time_ms, interval));
            time_ms += 15 * 60_000;
        }
        keys.into_iter().collect()
    }
}
