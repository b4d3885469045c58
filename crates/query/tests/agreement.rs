//! Property tests: the engine (`query::run_dataset`) and the plain reference
//! implementation (tests/reference) must give the same report for many small
//! random data sets and specs. The data sets are made to hit the hard parts:
//! merged ids (with chains), duplicates whose last copy wins, equal
//! timestamps, local midnights and DST changes in New York and Berlin, month
//! ends, properties that are missing, null, or of mixed types.
//!
//! A failure prints the shrunk case (events with their local times, the spec
//! as JSON) and a path-by-path diff of the two results.

mod reference;

use std::fmt;

use events::{Event, Properties};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use query::spec::{
    Aggregate, Breakdown, CohortPeriod, CohortRule, Compare, Counting, Direction, Entry, EventSelector, Exclusion, Filter,
    FlowsSpec, Formula, FunnelSpec, InsightsEvent, InsightsSpec, Interval, Measure, Op, RetentionKind, RetentionMode,
    RetentionSpec, RetentionUnit, Source, Spec, StepOrder, Unit,
};
use serde_json::{Value, json};

const CASES: u32 = 256;
const ZONES: [&str; 3] = ["UTC", "America/New_York", "Europe/Berlin"];
/// First days of the data: each span of `N_DAYS` days holds a DST change
/// (New York 03-08 and 11-01, Berlin 03-29 and 10-25), three of them a month end.
const EPOCHS: [&str; 4] = ["2026-03-01", "2026-03-20", "2026-10-18", "2026-10-25"];
const NAMES: [&str; 5] = ["A", "B", "C", "D", "E"];
/// Events fall in the first `N_DAYS` days after the epoch.
const N_DAYS: i64 = 14;
const DAY_MS: i64 = 86_400_000;
const HALF_HOUR_MS: i64 = 1_800_000;

proptest! {
    #![proptest_config(Config { cases: CASES, failure_persistence: None, ..Config::default() })]

    #[test]
    fn insights_agree(case in case_strategy(insights_spec())) {
        check_agreement(&case)?;
    }

    #[test]
    fn funnels_agree(case in case_strategy(funnel_spec())) {
        check_agreement(&case)?;
    }

    #[test]
    fn retention_agrees(case in case_strategy(retention_spec())) {
        check_agreement(&case)?;
    }

    #[test]
    fn flows_agree(case in case_strategy(flows_spec())) {
        check_agreement(&case)?;
    }
}

// ---- comparison ----

fn check_agreement(case: &Case) -> Result<(), TestCaseError> {
    let engine = query::run_dataset(&engine_dataset(&case.dataset), &case.spec);
    let reference = reference::run(&case.dataset, &case.spec);
    match (engine, reference) {
        (Ok(engine), Ok(reference)) => {
            let engine = serde_json::to_value(engine).expect("results serialise");
            let reference = serde_json::to_value(reference).expect("results serialise");
            let mut diffs = Vec::new();
            diff_json("$", &engine, &reference, &mut diffs);
            if diffs.is_empty() {
                return Ok(());
            }
            let shown: Vec<&String> = diffs.iter().take(40).collect();
            let shown = shown.iter().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n");
            Err(TestCaseError::fail(format!(
                "engine and reference disagree ({} differences):\n{shown}\nengine:    {engine}\nreference: {reference}",
                diffs.len()
            )))
        }
        (Err(engine), Err(reference)) if engine.is_client_error() == reference.is_client_error() => Ok(()),
        (engine, reference) => Err(TestCaseError::fail(format!("engine: {engine:?}\nreference: {reference:?}"))),
    }
}

fn engine_dataset(dataset: &reference::Dataset) -> query::Dataset {
    query::Dataset {
        timezone: dataset.timezone.clone(),
        events: dataset.events.clone(),
        links: dataset.links.clone(),
        profiles: dataset.profiles.clone(),
        cohorts: dataset.cohorts.clone(),
        now_ms: dataset.now_ms,
    }
}

/// Numbers equal within a tiny relative tolerance.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Collects `path: engine X, reference Y` lines for every difference.
fn diff_json(path: &str, engine: &Value, reference: &Value, diffs: &mut Vec<String>) {
    match (engine, reference) {
        (Value::Number(a), Value::Number(b)) => {
            if !close(a.as_f64().expect("finite"), b.as_f64().expect("finite")) {
                diffs.push(format!("{path}: engine {a}, reference {b}"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let inner = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_json(&inner, x, y, diffs),
                    (Some(x), None) => diffs.push(format!("{inner}: engine {x}, reference has none")),
                    (None, Some(y)) => diffs.push(format!("{inner}: engine has none, reference {y}")),
                    (None, None) => unreachable!("a key of one of them"),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                let labels = |items: &Vec<Value>| items.iter().map(label).collect::<Vec<_>>().join(", ");
                diffs.push(format!("{path}: engine has {} items [{}], reference {} [{}]", a.len(), labels(a), b.len(), labels(b)));
            }
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                diff_json(&format!("{path}[{index}]{}", label(x)), x, y, diffs);
            }
        }
        _ if engine == reference => {}
        _ => diffs.push(format!("{path}: engine {engine}, reference {reference}")),
    }
}

/// A short tag naming a series, segment, cohort, path or node.
fn label(value: &Value) -> String {
    let Value::Object(map) = value else { return String::new() };
    let parts: Vec<String> = ["name", "event", "events", "measure", "segment", "start", "step"]
        .iter()
        .filter_map(|key| map.get(*key).map(|value| format!("{key}={value}")))
        .collect();
    if parts.is_empty() { String::new() } else { format!("({})", parts.join(" ")) }
}

// ---- cases ----

#[derive(Clone)]
struct Case {
    dataset: reference::Dataset,
    spec: Spec,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tz = jiff::tz::TimeZone::get(&self.dataset.timezone).expect("a known zone");
        writeln!(f, "\ntimezone: {}  now: {}", self.dataset.timezone, local_text(self.dataset.now_ms, &tz))?;
        writeln!(f, "links: {:?}", self.dataset.links)?;
        for (id, profile) in &self.dataset.profiles {
            writeln!(f, "profile {id}: {}", Value::Object(profile.clone()))?;
        }
        for (id, rule) in &self.dataset.cohorts {
            writeln!(f, "cohort {id}: {}", serde_json::to_string(rule).expect("rules serialise"))?;
        }
        for event in &self.dataset.events {
            writeln!(
                f,
                "event {:<5} {:<4} {} ({}) {:<3} {}",
                event.distinct_id,
                event.name,
                local_text(event.time_ms, &tz),
                event.time_ms,
                event.insert_id,
                Value::Object(event.properties.clone())
            )?;
        }
        writeln!(f, "spec: {}", serde_json::to_string(&self.spec).expect("specs serialise"))
    }
}

fn local_text(time_ms: i64, tz: &jiff::tz::TimeZone) -> String {
    let zoned = jiff::Timestamp::from_millisecond(time_ms).expect("in range").to_zoned(tz.clone());
    zoned.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// The dataset half of a case, before it is laid out in time.
#[derive(Debug, Clone)]
struct DatasetSeed {
    zone: usize,
    epoch: usize,
    n_people: usize,
    n_names: usize,
    events: Vec<EventSeed>,
    link_styles: Vec<usize>,
    profile_styles: Vec<usize>,
    cohorts: CohortSeed,
    now_day: i64,
}

#[derive(Debug, Clone)]
struct EventSeed {
    person: usize,
    alias: usize,
    name: usize,
    time: TimeSeed,
    insert: usize,
    properties: PropertiesSeed,
    /// Copies the previous event's dedup key (keeping its own properties).
    duplicate: bool,
}

#[derive(Debug, Clone)]
enum TimeSeed {
    /// Days and half hours after the epoch's UTC midnight, plus -1, 0 or 1 ms.
    At { day: i64, half_hour: i64, jitter_ms: i64 },
    /// The previous event's time and person: a tie on one timeline.
    TieWithPrevious,
    /// The previous event's person, some minutes later: a sequence that can
    /// convert within short funnel windows.
    SoonAfterPrevious { minutes: i64 },
}

#[derive(Debug, Clone)]
struct PropertiesSeed {
    plan: usize,
    country: usize,
    amount: (usize, i64),
    company: usize,
    flag: usize,
}

#[derive(Debug, Clone)]
struct CohortSeed {
    did: usize,
    at_least: u64,
    within_days: Option<u32>,
    did_not: usize,
}

fn case_strategy(spec: impl Strategy<Value = Spec>) -> impl Strategy<Value = Case> {
    (dataset_seed(), 0..5i64, 0..10i64, spec).prop_map(|(seed, from_offset, n_days, mut spec)| {
        let epoch = parse_date(EPOCHS[seed.epoch]);
        let from = add_days(epoch, from_offset);
        set_range(&mut spec, from.to_string(), add_days(from, n_days).to_string());
        Case { dataset: build_dataset(&seed), spec }
    })
}

fn dataset_seed() -> impl Strategy<Value = DatasetSeed> {
    (
        0..ZONES.len(),
        0..EPOCHS.len(),
        1..=5usize,
        2..=5usize,
        prop::collection::vec(event_seed(), 0..80),
        prop::collection::vec(0..3usize, 5),
        prop::collection::vec(0..4usize, 5),
        cohort_seed(),
        0..N_DAYS,
    )
        .prop_map(|(zone, epoch, n_people, n_names, events, link_styles, profile_styles, cohorts, now_day)| DatasetSeed {
            zone,
            epoch,
            n_people,
            n_names,
            events,
            link_styles,
            profile_styles,
            cohorts,
            now_day,
        })
}

fn event_seed() -> impl Strategy<Value = EventSeed> {
    (0..5usize, 0..3usize, 0..5usize, time_seed(), 0..3usize, properties_seed(), prop::bool::weighted(0.12)).prop_map(
        |(person, alias, name, time, insert, properties, duplicate)| EventSeed { person, alias, name, time, insert, properties, duplicate },
    )
}

fn time_seed() -> impl Strategy<Value = TimeSeed> {
    let jitter = select(vec![-1i64, 0, 0, 0, 1]);
    // Half hours (UTC) of local midnights in the three zones and of the DST changes.
    let edges = select(vec![0i64, 2, 8, 10, 12, 14, 44, 46]);
    prop_oneof![
        4 => (0..N_DAYS, 0..48i64, jitter.clone()).prop_map(|(day, half_hour, jitter_ms)| TimeSeed::At { day, half_hour, jitter_ms }),
        3 => (0..N_DAYS, edges, jitter).prop_map(|(day, half_hour, jitter_ms)| TimeSeed::At { day, half_hour, jitter_ms }),
        2 => Just(TimeSeed::TieWithPrevious),
        3 => select(vec![1i64, 5, 20, 30, 45, 60, 61, 90, 180, 1440]).prop_map(|minutes| TimeSeed::SoonAfterPrevious { minutes }),
    ]
}

fn properties_seed() -> impl Strategy<Value = PropertiesSeed> {
    (0..6usize, 0..4usize, (0..7usize, 0..20i64), 0..3usize, 0..4usize)
        .prop_map(|(plan, country, amount, company, flag)| PropertiesSeed { plan, country, amount, company, flag })
}

fn cohort_seed() -> impl Strategy<Value = CohortSeed> {
    (0..5usize, 1..3u64, prop::option::of(1..15u32), 0..5usize)
        .prop_map(|(did, at_least, within_days, did_not)| CohortSeed { did, at_least, within_days, did_not })
}

fn build_dataset(seed: &DatasetSeed) -> reference::Dataset {
    let epoch_ms = utc_midnight_ms(EPOCHS[seed.epoch]);
    let mut events: Vec<Event> = Vec::new();
    for (index, event_seed) in seed.events.iter().enumerate() {
        let person = event_seed.person % seed.n_people;
        let mut event = Event {
            name: NAMES[event_seed.name % seed.n_names].to_owned(),
            distinct_id: alias_id(person, event_seed.alias),
            time_ms: 0,
            insert_id: format!("i{}", event_seed.insert),
            properties: build_properties(&event_seed.properties),
        };
        let previous = index.checked_sub(1).map(|previous| events[previous].clone());
        match (&event_seed.time, &previous) {
            (TimeSeed::At { day, half_hour, jitter_ms }, _) => event.time_ms = epoch_ms + day * DAY_MS + half_hour * HALF_HOUR_MS + jitter_ms,
            (TimeSeed::TieWithPrevious, Some(previous)) => {
                event.time_ms = previous.time_ms;
                event.distinct_id = previous.distinct_id.clone();
            }
            (TimeSeed::SoonAfterPrevious { minutes }, Some(previous)) => {
                event.time_ms = previous.time_ms + minutes * 60_000;
                event.distinct_id = previous.distinct_id.clone();
            }
            (TimeSeed::TieWithPrevious | TimeSeed::SoonAfterPrevious { .. }, None) => event.time_ms = epoch_ms + 3 * DAY_MS,
        }
        if let (true, Some(previous)) = (event_seed.duplicate, &previous) {
            event.name = previous.name.clone();
            event.distinct_id = previous.distinct_id.clone();
            event.time_ms = previous.time_ms;
            event.insert_id = previous.insert_id.clone();
        }
        events.push(event);
    }
    separate_same_name_ties(&mut events);
    reference::Dataset {
        timezone: ZONES[seed.zone].to_owned(),
        events,
        links: build_links(seed),
        profiles: build_profiles(seed),
        cohorts: build_cohorts(&seed.cohorts),
        now_ms: epoch_ms + seed.now_day * DAY_MS + 13 * HALF_HOUR_MS,
    }
}

/// docs/reports.md leaves the order of two events of one person with the same
/// name at the same millisecond unspecified; such pairs (other than copies of
/// one event) are moved 1 ms apart. Ties between different names stay.
fn separate_same_name_ties(events: &mut [Event]) {
    let person_of = |id: &str| id.trim_end_matches(|c: char| c.is_ascii_alphabetic()).to_owned();
    let mut taken: std::collections::HashMap<(String, String, i64), (String, String)> = std::collections::HashMap::new();
    for event in events.iter_mut() {
        loop {
            let key = (person_of(&event.distinct_id), event.name.clone(), event.time_ms);
            match taken.get(&key) {
                None => {
                    taken.insert(key, (event.distinct_id.clone(), event.insert_id.clone()));
                    break;
                }
                Some((id, insert)) if *id == event.distinct_id && *insert == event.insert_id => break,
                Some(_) => event.time_ms += 1,
            }
        }
    }
}

/// Person p's ids: `p0` (canonical), `p0a`, `p0b`.
fn alias_id(person: usize, alias: usize) -> String {
    format!("p{person}{}", ["", "a", "b"][alias])
}

/// Per person: no links (aliases are people of their own), both aliases to
/// the canonical id, or a chain b -> a -> canonical.
fn build_links(seed: &DatasetSeed) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for person in 0..seed.n_people {
        let (canonical, a, b) = (alias_id(person, 0), alias_id(person, 1), alias_id(person, 2));
        match seed.link_styles[person] {
            1 => links.extend([(a, canonical.clone()), (b, canonical)]),
            2 => links.extend([(b, a.clone()), (a, canonical)]),
            _ => {}
        }
    }
    links
}

fn build_profiles(seed: &DatasetSeed) -> Vec<(String, Properties)> {
    let mut profiles = Vec::new();
    for person in 0..seed.n_people {
        let (id, properties) = match seed.profile_styles[person] {
            1 => (alias_id(person, 0), json!({"tier": "gold", "plan": "pro"})),
            2 => (alias_id(person, 0), json!({"tier": "silver"})),
            // A profile under an alias: the person's only if the alias is unlinked.
            3 => (alias_id(person, 1), json!({"tier": "gold"})),
            _ => continue,
        };
        profiles.push((id, properties.as_object().expect("an object").clone()));
    }
    profiles
}

fn build_cohorts(seed: &CohortSeed) -> Vec<(i64, CohortRule)> {
    let period = match seed.within_days {
        Some(within_days) => CohortPeriod { within_days: Some(within_days), from: None, to: None },
        None => CohortPeriod::default(),
    };
    let did = CohortRule::Did { did: NAMES[seed.did].to_owned(), at_least: seed.at_least, period: period.clone(), filters: Vec::new() };
    let gold = CohortRule::Profile(property_filter_of("tier", Op::Eq, json!("gold"), Source::Event));
    let did_not_or_pro = CohortRule::Any {
        any: vec![
            CohortRule::DidNot { did_not: NAMES[seed.did_not].to_owned(), period, filters: Vec::new() },
            CohortRule::Profile(property_filter_of("plan", Op::Eq, json!("pro"), Source::Event)),
        ],
    };
    vec![(1, did), (2, gold), (3, did_not_or_pro)]
}

fn build_properties(seed: &PropertiesSeed) -> Properties {
    let mut properties = Properties::new();
    let plan = [None, Some(json!("free")), Some(json!("pro")), Some(json!("team")), Some(Value::Null), None][seed.plan].clone();
    let country = [None, Some(json!("US")), Some(json!("DE")), Some(json!("FR"))][seed.country].clone();
    let (amount_kind, amount) = seed.amount;
    let amount = match amount_kind {
        1 | 2 => Some(json!(amount)),
        3 => Some(json!(amount as f64 + 0.5)),
        // An integral float: one number with the integer of the same value.
        4 => Some(json!(amount as f64)),
        5 => Some(json!("7")),
        _ => None,
    };
    let company = [None, Some(json!("acme")), Some(json!("globex"))][seed.company].clone();
    let flag = [None, Some(json!(true)), Some(json!(false)), None][seed.flag].clone();
    for (key, value) in [("plan", plan), ("country", country), ("amount", amount), ("company", company), ("flag", flag)] {
        if let Some(value) = value {
            properties.insert(key.to_owned(), value);
        }
    }
    properties
}

fn parse_date(text: &str) -> jiff::civil::Date {
    text.parse().expect("a date")
}

fn add_days(date: jiff::civil::Date, n_days: i64) -> jiff::civil::Date {
    date.checked_add(jiff::Span::new().days(n_days)).expect("in range")
}

fn utc_midnight_ms(date: &str) -> i64 {
    parse_date(date).to_zoned(jiff::tz::TimeZone::UTC).expect("in range").timestamp().as_millisecond()
}

fn set_range(spec: &mut Spec, from: String, to: String) {
    let (spec_from, spec_to) = match spec {
        Spec::Insights(spec) => (&mut spec.from, &mut spec.to),
        Spec::Funnel(spec) => (&mut spec.from, &mut spec.to),
        Spec::Retention(spec) => (&mut spec.from, &mut spec.to),
        Spec::Flows(spec) => (&mut spec.from, &mut spec.to),
        other => panic!("no range in {other:?}"),
    };
    *spec_from = from;
    *spec_to = to;
}

// ---- specs ----

fn property_filter_of(property: &str, op: Op, value: Value, source: Source) -> Filter {
    Filter::Property { property: property.to_owned(), op, value, source }
}

/// Values that fit the property (so that filters select some events but not
/// all), with a few of the wrong type now and then.
fn op_and_value(property: &'static str) -> BoxedStrategy<(Op, Value)> {
    let fitting: Vec<Value> = match property {
        "plan" => vec![json!("free"), json!("pro"), json!("team")],
        "country" => vec![json!("US"), json!("DE"), json!("FR")],
        "amount" => vec![json!(3), json!(3.0), json!(7), json!(12.5)],
        "flag" => vec![json!(true), json!(false)],
        "company" => vec![json!("acme"), json!("globex")],
        _ => vec![json!("gold"), json!("silver")],
    };
    let odd = select(vec![json!("7"), json!(3), json!(true), json!("pro")]);
    let scalar = prop_oneof![6 => select(fitting), 1 => odd];
    let set_ops = (select(vec![Op::Set, Op::NotSet]), Just(Value::Null));
    if property == "amount" {
        return prop_oneof![
            2 => (select(vec![Op::Eq, Op::Neq]), scalar.clone()),
            1 => (select(vec![Op::In, Op::NotIn]), prop::collection::vec(scalar, 1..3).prop_map(Value::Array)),
            3 => (select(vec![Op::Gt, Op::Gte, Op::Lt, Op::Lte]), (0..20i64).prop_map(Value::from)),
            2 => (Just(Op::Between), (0..10i64, 0..15i64).prop_map(|(low, width)| json!([low, low + width]))),
            1 => set_ops,
        ]
        .boxed();
    }
    prop_oneof![
        3 => (select(vec![Op::Eq, Op::Neq]), scalar.clone()),
        2 => (select(vec![Op::In, Op::NotIn]), prop::collection::vec(scalar, 1..3).prop_map(Value::Array)),
        1 => (select(vec![Op::Contains, Op::NotContains]), select(vec![json!("r"), json!("e"), json!("U")])),
        1 => (select(vec![Op::Gt, Op::Lt]), (0..20i64).prop_map(Value::from)),
        1 => set_ops,
    ]
    .boxed()
}

fn property_filter() -> impl Strategy<Value = Filter> {
    let target = prop_oneof![
        4 => (select(vec!["plan", "country", "amount", "flag", "company"]), Just(Source::Event)),
        1 => (select(vec!["tier", "plan"]), Just(Source::Profile)),
    ];
    target.prop_flat_map(|(property, source)| {
        op_and_value(property).prop_map(move |(op, value)| property_filter_of(property, op, value, source))
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        8 => property_filter(),
        1 => prop::collection::vec(property_filter(), 2).prop_map(|any| Filter::Any { any }),
        1 => prop::collection::vec(property_filter(), 2).prop_map(|all| Filter::All { all }),
        1 => (1..=3i64, any::<bool>()).prop_map(|(id, member)| if member { Filter::Cohort { cohort: id } } else { Filter::NotCohort { not_cohort: id } }),
    ]
}

/// Mostly no filter, sometimes one or two.
fn filters() -> impl Strategy<Value = Vec<Filter>> {
    prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec(filter(), 1..=2)]
}

/// Mostly names every data set has (at least two names are used).
fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(vec!["A", "B"]).prop_map(str::to_owned),
        2 => select(NAMES[2..].to_vec()).prop_map(str::to_owned),
        1 => Just("$any".to_owned()),
    ]
}

fn selector() -> impl Strategy<Value = EventSelector> {
    (event_name(), filters()).prop_map(|(event, filters)| EventSelector { event, filters })
}

fn unit() -> impl Strategy<Value = Unit> {
    prop_oneof![6 => Just(Unit::Users), 1 => Just(Unit::Group { group: "company".to_owned() })]
}

fn breakdown() -> impl Strategy<Value = Option<Breakdown>> {
    prop_oneof![
        4 => Just(None),
        3 => select(vec!["plan", "country", "amount", "company", "flag"]).prop_map(|property| Some(Breakdown::Name(property.to_owned()))),
        1 => Just(Some(Breakdown::Property { property: "tier".to_owned(), source: Source::Profile, buckets: None })),
        1 => Just(Some(Breakdown::Property { property: "amount".to_owned(), source: Source::Event, buckets: Some(vec![5.0, 10.0]) })),
        1 => Just(Some(Breakdown::Cohorts { cohort: vec![1, 2] })),
    ]
}

fn insights_event() -> impl Strategy<Value = InsightsEvent> {
    let measures = vec![
        Measure::Total,
        Measure::Total,
        Measure::Uniques,
        Measure::Uniques,
        Measure::Dau,
        Measure::Wau,
        Measure::Mau,
        Measure::Frequency,
        Measure::Sum,
        Measure::Avg,
        Measure::Min,
        Measure::Max,
        Measure::Median,
        Measure::P90,
    ];
    let aggregates = vec![Aggregate::Avg, Aggregate::Median, Aggregate::Min, Aggregate::Max, Aggregate::P90];
    (event_name(), select(measures), prop::option::of(select(aggregates)), filters()).prop_map(|(event, measure, aggregate, filters)| {
        let is_property_aggregate = matches!(measure, Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90);
        InsightsEvent {
            event,
            measure,
            property: is_property_aggregate.then(|| "amount".to_owned()),
            aggregate: if measure == Measure::Frequency { aggregate } else { None },
            filters,
        }
    })
}

fn insights_spec() -> impl Strategy<Value = Spec> {
    let interval = prop_oneof![1 => Just(Interval::Hour), 4 => Just(Interval::Day), 1 => Just(Interval::Week), 1 => Just(Interval::Month)];
    let expressions = vec!["A / B", "A + B", "(A - B) * B", "A / (B - A)", "A + B / C", "A * A - A", "A / A"];
    (
        interval,
        prop::collection::vec(insights_event(), 1..=3),
        breakdown(),
        prop::option::of(1..4usize),
        filters(),
        prop::collection::vec(select(expressions), 0..=2),
        prop::bool::weighted(0.2),
        unit(),
    )
        .prop_map(|(interval, mut events, breakdown, limit, filters, expressions, compare, unit)| {
            if interval != Interval::Day {
                // dau, wau and mau need daily buckets.
                for entry in &mut events {
                    if matches!(entry.measure, Measure::Dau | Measure::Wau | Measure::Mau) {
                        entry.measure = Measure::Uniques;
                    }
                }
            }
            let n_letters = events.len();
            let formulas = expressions
                .into_iter()
                .filter(|expression| expression.chars().filter(char::is_ascii_uppercase).all(|letter| ((letter as u8 - b'A') as usize) < n_letters))
                .enumerate()
                .map(|(index, expression)| Formula { name: format!("f{index}"), expression: expression.to_owned() })
                .collect();
            Spec::Insights(InsightsSpec {
                from: String::new(),
                to: String::new(),
                interval,
                events,
                breakdown,
                // "$other" only with a limit; half the cases with one ask for it.
                other: limit.is_some_and(|l| l % 2 == 1),
                limit,
                filters,
                formulas,
                compare: compare.then_some(Compare::PreviousPeriod),
                unit,
            })
        })
}

fn funnel_spec() -> impl Strategy<Value = Spec> {
    let windows = vec![None, Some("30m"), Some("1h"), Some("6h"), Some("1d"), Some("3d")];
    (
        prop::collection::vec(selector(), 2..=4),
        select(windows),
        (select(vec![Entry::First, Entry::Any]), select(vec![Counting::Uniques, Counting::Totals]), select(vec![StepOrder::Strict, StepOrder::Any])),
        prop::option::of((event_name(), 1..4usize, 1..4usize)),
        prop::bool::weighted(0.25),
        breakdown(),
        prop::option::of(1..3usize),
        filters(),
        unit(),
    )
        .prop_map(|(steps, window, (entry, counting, order), exclusion, hold_plan, breakdown, limit, filters, unit)| {
            let n_steps = steps.len();
            let exclusions = exclusion
                .map(|(event, after, gap)| {
                    let after_step = after.min(n_steps - 1);
                    Exclusion { event, after_step, before_step: (after_step + gap).min(n_steps), filters: Vec::new() }
                })
                .into_iter()
                .collect();
            Spec::Funnel(FunnelSpec {
                from: String::new(),
                to: String::new(),
                steps,
                window: window.map(str::to_owned),
                entry,
                counting,
                order,
                exclusions,
                hold_constant: if hold_plan { vec!["plan".to_owned()] } else { Vec::new() },
                breakdown,
                limit,
                filters,
                unit,
            })
        })
}

fn retention_spec() -> impl Strategy<Value = Spec> {
    (
        selector(),
        selector(),
        select(vec![RetentionUnit::Day, RetentionUnit::Week, RetentionUnit::Month]),
        1..6usize,
        select(vec![RetentionMode::On, RetentionMode::OnOrAfter]),
        select(vec![RetentionKind::FirstTime, RetentionKind::Recurring]),
        filters(),
        unit(),
    )
        .prop_map(|(born, returning, unit, periods, mode, retention, filters, counted)| {
            Spec::Retention(RetentionSpec { from: String::new(), to: String::new(), born, returning, unit, periods, mode, retention, filters, counted })
        })
}

fn flows_spec() -> impl Strategy<Value = Spec> {
    (
        selector(),
        select(vec![Direction::After, Direction::Before]),
        1..=5usize,
        select(vec![None, Some("1h"), Some("2d")]),
        select(vec![Counting::Uniques, Counting::Totals]),
        prop::option::of(1..5usize),
        filters(),
        unit(),
    )
        .prop_map(|(anchor, direction, steps, window, counting, limit, filters, unit)| {
            Spec::Flows(FlowsSpec {
                from: String::new(),
                to: String::new(),
                anchor,
                direction,
                steps,
                window: window.map(str::to_owned),
                counting,
                limit,
                filters,
                unit,
            })
        })
}
