//! Hand-computed answers for the reference implementation (tests/reference):
//! each case is small enough to work out on paper, and the comments show the
//! working. The reference is then trusted to judge the engine (agreement.rs).

mod reference;

use events::Event;
use query::spec::Spec;
use reference::Dataset;
use serde_json::{Value, json};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// An RFC 3339 instant in ms.
fn at(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().expect("an RFC 3339 instant").as_millisecond()
}

fn event(name: &str, distinct_id: &str, time_ms: i64, insert_id: &str, properties: Value) -> Event {
    let Value::Object(properties) = properties else { panic!("properties must be an object") };
    Event { name: name.to_owned(), distinct_id: distinct_id.to_owned(), time_ms, insert_id: insert_id.to_owned(), properties }
}

/// Events with unique insert ids and no properties: (name, distinct id, time).
fn plain(events: &[(&str, &str, i64)]) -> Vec<Event> {
    events.iter().enumerate().map(|(index, (name, id, time_ms))| event(name, id, *time_ms, &format!("i{index}"), json!({}))).collect()
}

fn dataset(timezone: &str, events: Vec<Event>) -> Dataset {
    Dataset { timezone: timezone.to_owned(), events, links: Vec::new(), profiles: Vec::new(), cohorts: Vec::new(), now_ms: 0 }
}

/// Runs `spec` (JSON as a client sends it) and returns the result as JSON.
fn check(dataset: &Dataset, spec: Value) -> Value {
    let spec: Spec = serde_json::from_value(spec).expect("a valid spec");
    let result = reference::run(dataset, &spec).expect("the report runs");
    serde_json::to_value(result).expect("results serialise")
}

fn points(result: &Value, series: usize) -> &Value {
    &result["series"][series]["points"]
}

// ---- insights ----

#[test]
fn insights_days_follow_the_zone_dedup_and_identity() {
    // New York; DST starts 2026-03-08 02:00 local. Range 03-07..03-09.
    let mut events = vec![
        event("A", "u1", at("2026-03-07T23:30:00-05:00"), "i1", json!({"plan": "free"})),
        // Same dedup key: replaces the copy above, so u1's event has plan "pro".
        event("A", "u1", at("2026-03-07T23:30:00-05:00"), "i1", json!({"plan": "pro"})),
        // d1 is u1 (link): one person, two days.
        event("A", "d1", at("2026-03-08T03:30:00-04:00"), "i2", json!({})),
        // Exactly local midnight: day 03-09.
        event("A", "u2", at("2026-03-09T00:00:00-04:00"), "i3", json!({"plan": "free"})),
        // 1 ms before start(from) and exactly start(to + 1): out of range.
        event("A", "u2", at("2026-03-06T23:59:59.999-05:00"), "i4", json!({})),
        event("A", "u2", at("2026-03-10T00:00:00-04:00"), "i5", json!({})),
    ];
    events.push(event("B", "u2", at("2026-03-08T12:00:00-04:00"), "i6", json!({})));
    let mut data = dataset("America/New_York", events);
    data.links.push(("d1".to_owned(), "u1".to_owned()));
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-03-07", "to": "2026-03-09", "interval": "day",
               "events": [{"event": "A", "measure": "total"}, {"event": "A", "measure": "uniques"}]}),
    );
    // No `total` without a breakdown and a limit.
    let one_a_day = json!({"2026-03-07": 1.0, "2026-03-08": 1.0, "2026-03-09": 1.0});
    assert_eq!(
        result,
        json!({"series": [
            {"event": "A", "measure": "total", "points": one_a_day},
            {"event": "A", "measure": "uniques", "points": one_a_day},
        ]})
    );
    // One month bucket holds the whole range: u1 (two days, one person) and u2.
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-03-07", "to": "2026-03-09", "interval": "month",
               "events": [{"event": "A", "measure": "uniques"}]}),
    );
    assert_eq!(points(&result, 0), &json!({"2026-03-01": 2.0}));
    // By plan: "pro" (u1's surviving copy), null (d1's event), "free" (u2).
    // All totals are 1: segment order, strings before null.
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-03-07", "to": "2026-03-09",
               "events": [{"event": "A"}], "breakdown": "plan"}),
    );
    let segments: Vec<&Value> = result["series"].as_array().unwrap().iter().map(|series| &series["segment"]).collect();
    assert_eq!(segments, [&json!("free"), &json!("pro"), &Value::Null]);
    assert_eq!(points(&result, 1), &json!({"2026-03-07": 1.0, "2026-03-08": 0.0, "2026-03-09": 0.0}));
    assert_eq!(points(&result, 2), &json!({"2026-03-07": 0.0, "2026-03-08": 1.0, "2026-03-09": 0.0}));
}

#[test]
fn insights_hours_across_dst_changes() {
    // Autumn: 01:00-01:59 happens twice on 2026-11-01 in New York; both hours
    // land in the one key T01:00; the day has 24 keys.
    let data = dataset(
        "America/New_York",
        plain(&[
            ("A", "u1", at("2026-11-01T01:30:00-04:00")),
            ("A", "u1", at("2026-11-01T01:30:00-05:00")),
            ("A", "u1", at("2026-11-01T02:00:00-05:00")),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-11-01", "to": "2026-11-01", "interval": "hour", "events": [{"event": "A"}]}),
    );
    let hours = points(&result, 0).as_object().unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(hours["2026-11-01T01:00"], json!(2.0));
    assert_eq!(hours["2026-11-01T02:00"], json!(1.0));
    assert_eq!(hours["2026-11-01T00:00"], json!(0.0));
    // Spring: 02:00-02:59 is skipped on 2026-03-08: 23 keys, no T02:00.
    let data = dataset(
        "America/New_York",
        plain(&[("A", "u1", at("2026-03-08T01:59:59.999-05:00")), ("A", "u1", at("2026-03-08T03:00:00-04:00"))]),
    );
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-03-08", "to": "2026-03-08", "interval": "hour", "events": [{"event": "A"}]}),
    );
    let hours = points(&result, 0).as_object().unwrap();
    assert_eq!(hours.len(), 23);
    assert!(!hours.contains_key("2026-03-08T02:00"));
    assert_eq!(hours["2026-03-08T01:00"], json!(1.0));
    assert_eq!(hours["2026-03-08T03:00"], json!(1.0));
}

#[test]
fn insights_weeks_and_months_in_berlin() {
    // Berlin is at +01:00 after 2026-10-25. Range Wed 10-28 .. Tue 11-03.
    // a: Sat 10-31 23:59 (week of Mon 10-26, October), b: Sun 11-01 00:00
    // (week 10-26, November), c: Sun 11-01 23:30 (same), d: Mon 11-02 00:00
    // (week 11-02, November).
    let data = dataset(
        "Europe/Berlin",
        plain(&[
            ("A", "u1", at("2026-10-31T23:59:00+01:00")),
            ("A", "u1", at("2026-11-01T00:00:00+01:00")),
            ("A", "u1", at("2026-11-01T23:30:00+01:00")),
            ("A", "u1", at("2026-11-02T00:00:00+01:00")),
        ]),
    );
    let week = check(
        &data,
        json!({"report": "insights", "from": "2026-10-28", "to": "2026-11-03", "interval": "week", "events": [{"event": "A"}]}),
    );
    // The first week is keyed by its Monday, before `from`.
    assert_eq!(points(&week, 0), &json!({"2026-10-26": 3.0, "2026-11-02": 1.0}));
    let month = check(
        &data,
        json!({"report": "insights", "from": "2026-10-28", "to": "2026-11-03", "interval": "month", "events": [{"event": "A"}]}),
    );
    assert_eq!(points(&month, 0), &json!({"2026-10-01": 1.0, "2026-11-01": 3.0}));
}

#[test]
fn insights_frequency_and_property_aggregates() {
    // 06-01: Buy by u1 (amount 1, 2), u2 (3.0), u3 (4, "7", none). 06-02: nothing.
    // Events per person: 2, 1, 3: avg 2, median 2, min 1, max 3,
    // p90 at rank 0.9 * 2 = 1.8 of [1, 2, 3]: 2 + 0.8 = 2.8.
    // Numeric amounts [1, 2, 3, 4] ("7" is a string, skipped): sum 10, avg 2.5,
    // min 1, max 4, median at rank 1.5: 2.5, p90 at rank 2.7: 3 + 0.7 = 3.7.
    let t = at("2026-06-01T10:00:00Z");
    let data = dataset(
        "UTC",
        vec![
            event("Buy", "u1", t, "1", json!({"amount": 1})),
            event("Buy", "u1", t + 1, "2", json!({"amount": 2})),
            event("Buy", "u2", t, "3", json!({"amount": 3.0})),
            event("Buy", "u3", t, "4", json!({"amount": 4})),
            event("Buy", "u3", t, "5", json!({"amount": "7"})),
            event("Buy", "u3", t, "6", json!({})),
        ],
    );
    let measures = [
        ("frequency", None, 2.0),
        ("frequency", Some("median"), 2.0),
        ("frequency", Some("min"), 1.0),
        ("frequency", Some("max"), 3.0),
        ("frequency", Some("p90"), 2.8),
        ("sum", None, 10.0),
        ("avg", None, 2.5),
        ("min", None, 1.0),
        ("max", None, 4.0),
        ("median", None, 2.5),
        ("p90", None, 3.7),
    ];
    for (measure, aggregate, expected) in measures {
        let mut entry = json!({"event": "Buy", "measure": measure, "property": "amount"});
        if let Some(aggregate) = aggregate {
            entry["aggregate"] = json!(aggregate);
        }
        let result = check(&data, json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-02", "events": [entry.clone()]}));
        let first_day = points(&result, 0)["2026-06-01"].as_f64().unwrap();
        assert!((first_day - expected).abs() < 1e-9, "{measure} {aggregate:?}: {first_day} != {expected}");
        // An empty bucket: frequency 0, property aggregates null.
        let empty_day = if measure == "frequency" { json!(0.0) } else { Value::Null };
        assert_eq!(points(&result, 0)["2026-06-02"], empty_day, "{measure}");
        // The whole range (one month bucket, or the total of a limited breakdown) is the same.
        let result = check(
            &data,
            json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-02", "interval": "month",
                   "events": [entry], "breakdown": "country", "limit": 5}),
        );
        let month = points(&result, 0)["2026-06-01"].as_f64().unwrap();
        assert!((month - expected).abs() < 1e-9, "{measure} {aggregate:?} month: {month} != {expected}");
        assert_eq!(result["series"][0]["total"].as_f64(), Some(month), "{measure} total");
    }
}

#[test]
fn insights_formulas_and_previous_period() {
    // Range 06-03..06-04, previous 06-01..06-02.
    // A = Buy: 06-03: 1, 06-04: 1. B = Visit: 06-01: 1, 06-03: 2.
    // A / B: 06-03: 0.5, 06-04: 1/0 = null; previous: 06-01: 0/1 = 0, 06-02: null.
    // (A + B) * 2: 06-03: 6, 06-04: 2; previous: 06-01: 2, 06-02: 0.
    let data = dataset(
        "UTC",
        plain(&[
            ("Visit", "u1", at("2026-06-01T10:00:00Z")),
            ("Visit", "u1", at("2026-06-03T10:00:00Z")),
            ("Visit", "u2", at("2026-06-03T10:00:00Z")),
            ("Buy", "u1", at("2026-06-03T11:00:00Z")),
            ("Buy", "u1", at("2026-06-04T11:00:00Z")),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-06-03", "to": "2026-06-04",
               "events": [{"event": "Buy"}, {"event": "Visit"}],
               "formulas": [{"name": "ratio", "expression": "A / B"}, {"name": "double", "expression": "(A + B) * 2"}],
               "compare": "previous_period"}),
    );
    assert_eq!(
        result["formulas"],
        json!([
            {"name": "ratio", "expression": "A / B", "points": {"2026-06-03": 0.5, "2026-06-04": null}},
            {"name": "double", "expression": "(A + B) * 2", "points": {"2026-06-03": 6.0, "2026-06-04": 2.0}},
        ])
    );
    assert_eq!(
        result["previous"]["formulas"],
        json!([
            {"name": "ratio", "expression": "A / B", "points": {"2026-06-01": 0.0, "2026-06-02": null}},
            {"name": "double", "expression": "(A + B) * 2", "points": {"2026-06-01": 2.0, "2026-06-02": 0.0}},
        ])
    );
    assert_eq!(result["previous"]["series"][1]["points"], json!({"2026-06-01": 1.0, "2026-06-02": 0.0}));
}

#[test]
fn insights_breakdown_limit_numbers_and_buckets() {
    let t = at("2026-06-01T10:00:00Z");
    let data = dataset(
        "UTC",
        vec![
            event("A", "u1", t, "1", json!({"country": "US", "n": 3, "amount": 5})),
            event("A", "u1", t, "2", json!({"country": "US", "n": 3.0, "amount": 10})),
            event("A", "u1", t, "3", json!({"country": "DE", "n": 2.5, "amount": 150})),
            event("A", "u1", t, "4", json!({"country": "FR", "amount": "x"})),
            event("A", "u1", t, "5", json!({})),
        ],
    );
    // Totals: US 2, then DE, FR, null with 1 each (segment order): limit 2
    // keeps US and DE.
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-01", "events": [{"event": "A"}],
               "breakdown": "country", "limit": 2}),
    );
    assert_eq!(
        result["series"],
        json!([
            {"event": "A", "measure": "total", "segment": "US", "points": {"2026-06-01": 2.0}, "total": 2.0},
            {"event": "A", "measure": "total", "segment": "DE", "points": {"2026-06-01": 1.0}, "total": 1.0},
        ])
    );
    // 3 and 3.0 are one segment, shown as 3 (total 2); null (two events)
    // comes before 2.5 by total, after 3 by segment order.
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-01", "events": [{"event": "A"}],
               "breakdown": "n", "limit": 10}),
    );
    let segments: Vec<(&Value, &Value)> =
        result["series"].as_array().unwrap().iter().map(|series| (&series["segment"], &series["total"])).collect();
    assert_eq!(segments, [(&json!(3), &json!(2.0)), (&Value::Null, &json!(2.0)), (&json!(2.5), &json!(1.0))]);
    // Buckets [10, 100]: 5 -> "< 10", 10 -> "10 - 100", 150 -> ">= 100",
    // the string "x" keeps its own segment, missing -> null. All have one
    // event: segment order, numbers' labels are strings like "x".
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-01", "events": [{"event": "A"}],
               "breakdown": {"property": "amount", "buckets": [10, 100]}}),
    );
    let segments: Vec<&Value> = result["series"].as_array().unwrap().iter().map(|series| &series["segment"]).collect();
    assert_eq!(segments, [&json!("10 - 100"), &json!("< 10"), &json!(">= 100"), &json!("x"), &Value::Null]);
}

#[test]
fn insights_active_users_look_back_before_from() {
    // Range 06-08..06-09. u1 on 06-02 (inside 06-08's 7-day window
    // 06-02..06-08, not 06-09's), u2 on 06-09, u3 on 06-01 (in neither).
    // wau: 06-08: 1, 06-09: 1; dau: 06-08: 0, 06-09: 1. Totals (with a
    // breakdown and a limit; everyone is in the null segment) count the range
    // only: 1 (u2).
    let data = dataset(
        "UTC",
        plain(&[
            ("A", "u1", at("2026-06-02T00:00:00Z")),
            ("A", "u2", at("2026-06-09T23:59:59.999Z")),
            ("A", "u3", at("2026-06-01T23:59:59.999Z")),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-06-08", "to": "2026-06-09",
               "events": [{"event": "A", "measure": "wau"}, {"event": "A", "measure": "dau"}],
               "breakdown": "plan", "limit": 5}),
    );
    assert_eq!(points(&result, 0), &json!({"2026-06-08": 1.0, "2026-06-09": 1.0}));
    assert_eq!(points(&result, 1), &json!({"2026-06-08": 0.0, "2026-06-09": 1.0}));
    assert_eq!(result["series"][0]["total"], json!(1.0));
}

#[test]
fn insights_filters_profiles_and_cohorts() {
    // u1 plan pro (profile tier gold), u2 plan free (tier silver), u3 no plan.
    let t = at("2026-06-01T10:00:00Z");
    let mut data = dataset(
        "UTC",
        vec![
            event("A", "u1", t, "1", json!({"plan": "pro"})),
            event("A", "u2", t, "2", json!({"plan": "free"})),
            event("A", "u3", t, "3", json!({})),
        ],
    );
    data.profiles.push(("u1".to_owned(), json!({"tier": "gold"}).as_object().unwrap().clone()));
    data.profiles.push(("u2".to_owned(), json!({"tier": "silver"}).as_object().unwrap().clone()));
    data.cohorts.push((7, serde_json::from_value(json!({"property": "tier", "op": "eq", "value": "gold"})).unwrap()));
    let entries = json!([
        // pro or profile silver: u1, u2.
        {"event": "A", "where": [{"any": [{"property": "plan", "op": "eq", "value": "pro"},
                                          {"property": "tier", "op": "eq", "value": "silver", "source": "profile"}]}]},
        // neq holds when missing: u2, u3.
        {"event": "A", "where": [{"property": "plan", "op": "neq", "value": "pro"}]},
        // not_set: u3.
        {"event": "A", "where": [{"property": "plan", "op": "not_set"}]},
        // cohort 7 (profile tier gold): u1; not_cohort: u2, u3.
        {"event": "A", "where": [{"cohort": 7}]},
        {"event": "A", "where": [{"not_cohort": 7}]},
        // not_in holds when missing: u3.
        {"event": "A", "where": [{"property": "plan", "op": "not_in", "value": ["pro", "free"]}]},
    ]);
    let result = check(&data, json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-01", "events": entries}));
    let totals: Vec<&Value> = result["series"].as_array().unwrap().iter().map(|series| &series["points"]["2026-06-01"]).collect();
    assert_eq!(totals, [&json!(2.0), &json!(2.0), &json!(1.0), &json!(1.0), &json!(2.0), &json!(1.0)]);
}

// ---- funnels ----

fn steps(result: &Value) -> Vec<(u64, Value, Value)> {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| (step["count"].as_u64().unwrap(), step["avg_time_from_previous_ms"].clone(), step["median_time_from_start_ms"].clone()))
        .collect()
}

#[test]
fn funnel_strict_order_ties_and_window_edge() {
    // Window 1 h, steps A, B, C; t = 10:00 on 06-01.
    // u1: A@0, B@0 (tie: not after A), B@10m, C@70m (past the window) -> 2 steps.
    // u2: A@0, B@30m, C@60m (exactly at the window's end) -> 3 steps.
    // u3: B only -> never enters. u4: A@0, A@5m, B@20m -> 2 steps (from the first A).
    // Counts 3, 3, 1. Step 2 from previous: 10, 30, 20 min: avg 20 min, median
    // from start 20 min. Step 3 (u2): 30 min from B, 60 min from start.
    let t = at("2026-06-01T10:00:00Z");
    let data = dataset(
        "UTC",
        plain(&[
            ("A", "u1", t),
            ("B", "u1", t),
            ("B", "u1", t + 10 * MINUTE_MS),
            ("C", "u1", t + 70 * MINUTE_MS),
            ("A", "u2", t),
            ("B", "u2", t + 30 * MINUTE_MS),
            ("C", "u2", t + 60 * MINUTE_MS),
            ("B", "u3", t),
            ("A", "u4", t),
            ("A", "u4", t + 5 * MINUTE_MS),
            ("B", "u4", t + 20 * MINUTE_MS),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "funnel", "from": "2026-06-01", "to": "2026-06-01", "window": "1h",
               "steps": [{"event": "A"}, {"event": "B"}, {"event": "C"}]}),
    );
    let minutes = |n: i64| json!((n * MINUTE_MS) as f64);
    assert_eq!(
        steps(&result),
        [(3, Value::Null, Value::Null), (3, minutes(20), minutes(20)), (1, minutes(30), minutes(60))]
    );
    assert_eq!(result["steps"][2]["conversion_from_previous"], json!(1.0 / 3.0));
    assert_eq!(result["steps"][0]["conversion_from_start"], json!(1.0));
}

#[test]
fn funnel_entry_any_and_totals() {
    // Window 1 h. u1: A@0, A@2h, B@2h30m.
    // entry first: the attempt from A@0 finds no B within 1 h -> step 1 only.
    // entry any: the attempt from A@2h reaches B after 30 min.
    // totals: attempt 1 (A@0) times out at 1 h; the next A after that (A@2h)
    // starts attempt 2, which converts: counts 2, 1.
    let t = at("2026-06-01T10:00:00Z");
    let data = dataset("UTC", plain(&[("A", "u1", t), ("A", "u1", t + 2 * HOUR_MS), ("B", "u1", t + 150 * MINUTE_MS)]));
    let spec = |entry: &str, counting: &str| {
        json!({"report": "funnel", "from": "2026-06-01", "to": "2026-06-01", "window": "1h",
               "steps": [{"event": "A"}, {"event": "B"}], "entry": entry, "counting": counting})
    };
    let thirty = json!((30 * MINUTE_MS) as f64);
    assert_eq!(steps(&check(&data, spec("first", "uniques"))), [(1, Value::Null, Value::Null), (0, Value::Null, Value::Null)]);
    assert_eq!(steps(&check(&data, spec("any", "uniques"))), [(1, Value::Null, Value::Null), (1, thirty.clone(), thirty.clone())]);
    let totals = check(&data, spec("first", "totals"));
    assert_eq!(steps(&totals), [(2, Value::Null, Value::Null), (1, thirty.clone(), thirty)]);
    assert_eq!(totals["steps"][1]["conversion_from_previous"], json!(0.5));
}

#[test]
fn funnel_exclusions_hold_constant_and_any_order() {
    let t = at("2026-06-01T10:00:00Z");
    let m = MINUTE_MS;
    // Exclusion X between steps 1 and 2 of A, B, C.
    // u1: A@0, X@1m, B@2m, C@3m -> X is between A and B: cut at 1m, step 1 only.
    // u2: A@0, B@1m, X@2m, C@3m -> the first X after A comes after B: 3 steps.
    // u3: A@0, X@1m, no B -> step 1 only. Counts 3, 1, 1.
    let data = dataset(
        "UTC",
        plain(&[
            ("A", "u1", t),
            ("X", "u1", t + m),
            ("B", "u1", t + 2 * m),
            ("C", "u1", t + 3 * m),
            ("A", "u2", t),
            ("B", "u2", t + m),
            ("X", "u2", t + 2 * m),
            ("C", "u2", t + 3 * m),
            ("A", "u3", t),
            ("X", "u3", t + m),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "funnel", "from": "2026-06-01", "to": "2026-06-01",
               "steps": [{"event": "A"}, {"event": "B"}, {"event": "C"}],
               "exclusions": [{"event": "X", "after_step": 1, "before_step": 2}]}),
    );
    let counts: Vec<u64> = steps(&result).iter().map(|step| step.0).collect();
    assert_eq!(counts, [3, 1, 1]);

    // Hold plan constant. u4: A{pro}@0, B{free}@1m, B{pro}@2m, C{}@3m: step 2 is
    // the B@2m; C lacks plan: 2 steps. u5: A{}@0, B{}@1m: missing matches
    // missing: 2 steps. Counts 2, 2, 0.
    let data = dataset(
        "UTC",
        vec![
            event("A", "u4", t, "1", json!({"plan": "pro"})),
            event("B", "u4", t + m, "2", json!({"plan": "free"})),
            event("B", "u4", t + 2 * m, "3", json!({"plan": "pro"})),
            event("C", "u4", t + 3 * m, "4", json!({})),
            event("A", "u5", t, "5", json!({})),
            event("B", "u5", t + m, "6", json!({})),
        ],
    );
    let result = check(
        &data,
        json!({"report": "funnel", "from": "2026-06-01", "to": "2026-06-01",
               "steps": [{"event": "A"}, {"event": "B"}, {"event": "C"}], "hold_constant": ["plan"]}),
    );
    let counts: Vec<u64> = steps(&result).iter().map(|step| step.0).collect();
    assert_eq!(counts, [2, 2, 0]);
    // Median from start of step 2: u4 2 min, u5 1 min: 1.5 min.
    assert_eq!(result["steps"][1]["median_time_from_start_ms"], json!(1.5 * m as f64));

    // u6: A@0, C@1m, B@2m. Strict: B@2m, then no C after it: 2 steps. Any
    // order: B@2m and C@1m: 3 steps; completion of step 3 = max(0, 2m, 1m) =
    // 2m: 0 from previous, 2 min from start.
    let data = dataset("UTC", plain(&[("A", "u6", t), ("C", "u6", t + m), ("B", "u6", t + 2 * m)]));
    let spec = |order: &str| {
        json!({"report": "funnel", "from": "2026-06-01", "to": "2026-06-01",
               "steps": [{"event": "A"}, {"event": "B"}, {"event": "C"}], "order": order})
    };
    let counts: Vec<u64> = steps(&check(&data, spec("strict"))).iter().map(|step| step.0).collect();
    assert_eq!(counts, [1, 1, 0]);
    let any_order = steps(&check(&data, spec("any")));
    assert_eq!(any_order[2], (1, json!(0.0), json!((2 * m) as f64)));
}

#[test]
fn funnel_breakdown_by_step_one_property() {
    // u1 enters with plan pro and converts, u2 with free and does not, u3
    // with pro and does not. Segments by Step 1 count: pro (2), free (1).
    let t = at("2026-06-01T10:00:00Z");
    let data = dataset(
        "UTC",
        vec![
            event("A", "u1", t, "1", json!({"plan": "pro"})),
            event("B", "u1", t + 1, "2", json!({"plan": "free"})),
            event("A", "u2", t, "3", json!({"plan": "free"})),
            event("A", "u3", t, "4", json!({"plan": "pro"})),
        ],
    );
    let result = check(
        &data,
        json!({"report": "funnel", "from": "2026-06-01", "to": "2026-06-01",
               "steps": [{"event": "A"}, {"event": "B"}], "breakdown": "plan"}),
    );
    assert!(result.get("steps").is_none());
    let segments: Vec<(&Value, u64, u64)> = result["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|segment| (&segment["segment"], segment["steps"][0]["count"].as_u64().unwrap(), segment["steps"][1]["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(segments, [(&json!("pro"), 2, 1), (&json!("free"), 1, 0)]);
}

#[test]
fn funnel_entry_any_takes_all_times_from_the_attempt_reaching_furthest() {
    // Steps B, B, A; window 6 h; entry any.
    // Attempt 1 (B 03-01 00:00) reaches step 2 (B at 01:29:59.999), not A.
    // Attempt 3 (B 03-04 00:00) reaches step 3: B at 00:01, A at 00:29:59.999.
    // The earliest attempt reaching the furthest step (3) gives all times:
    // step 2: 1 min; step 3: 28:59.999 from B, 29:59.999 from start.
    let data = dataset(
        "UTC",
        plain(&[
            ("B", "u1", at("2026-03-01T00:00:00Z")),
            ("B", "u1", at("2026-03-01T01:29:59.999Z")),
            ("B", "u1", at("2026-03-04T00:00:00Z")),
            ("B", "u1", at("2026-03-04T00:01:00Z")),
            ("A", "u1", at("2026-03-04T00:29:59.999Z")),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "funnel", "from": "2026-03-01", "to": "2026-03-04", "window": "6h", "entry": "any",
               "steps": [{"event": "B"}, {"event": "B"}, {"event": "A"}]}),
    );
    assert_eq!(
        steps(&result),
        [(1, Value::Null, Value::Null), (1, json!(60_000.0), json!(60_000.0)), (1, json!(1_739_999.0), json!(1_799_999.0))]
    );
}

#[test]
fn funnel_any_order_exclusions_use_completion_times() {
    // Steps C, A, $any in any order; exclusion C between steps 1 and 3.
    // C@00:00:59.999 enters; $any (step 3) first matches C@01:00, A (step 2)
    // is 03-02 01:00, so the funnel reaches step 3 at 03-02 01:00. The
    // exclusion C@01:00 comes after step 1 and before that completion: cut
    // at 01:00, keeping step 1 only (though C@01:00 is step 3's own event).
    let data = dataset(
        "UTC",
        plain(&[
            ("C", "u1", at("2026-03-01T00:00:59.999Z")),
            ("C", "u1", at("2026-03-01T01:00:00Z")),
            ("A", "u1", at("2026-03-02T01:00:00Z")),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "funnel", "from": "2026-03-01", "to": "2026-03-01", "window": "3d", "order": "any",
               "steps": [{"event": "C"}, {"event": "A"}, {"event": "$any"}],
               "exclusions": [{"event": "C", "after_step": 1, "before_step": 3}]}),
    );
    let counts: Vec<u64> = steps(&result).iter().map(|step| step.0).collect();
    assert_eq!(counts, [1, 0, 0]);
}
#[test]
fn cohort_periods_end_on_the_report_to_day() {
    // Cohort 1: did A within 3 days. u1 did A on 06-01, u2 on 06-05.
    // Report to 06-06: window 06-04..06-06 holds u2 only. Report to 06-03:
    // window 06-01..06-03 holds u1 only.
    let mut data = dataset("UTC", plain(&[("A", "u1", at("2026-06-01T10:00:00Z")), ("A", "u2", at("2026-06-05T10:00:00Z"))]));
    data.cohorts.push((1, serde_json::from_value(json!({"did": "A", "within_days": 3})).unwrap()));
    let members = |to: &str| {
        let result = check(
            &data,
            json!({"report": "insights", "from": "2026-06-01", "to": to, "interval": "month",
                   "events": [{"event": "A", "measure": "uniques", "where": [{"cohort": 1}]}],
                   "breakdown": "plan", "limit": 1}),
        );
        result["series"][0]["total"].clone()
    };
    assert_eq!(members("2026-06-06"), json!(1.0));
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-06", "interval": "day",
               "events": [{"event": "A", "where": [{"cohort": 1}]}]}),
    );
    assert_eq!(points(&result, 0)["2026-06-05"], json!(1.0));
    assert_eq!(points(&result, 0)["2026-06-01"], json!(0.0));
    let result = check(
        &data,
        json!({"report": "insights", "from": "2026-06-01", "to": "2026-06-03", "interval": "day",
               "events": [{"event": "A", "where": [{"cohort": 1}]}]}),
    );
    assert_eq!(points(&result, 0)["2026-06-01"], json!(1.0));
}

// ---- retention ----

#[test]
fn retention_first_time_and_recurring() {
    // Unit day, 3 periods, range 06-01..06-02, born Sign Up, return Use.
    // u1: born 06-01 10:00; Use at 10:00 (same time, another event: bracket 0),
    //     06-03 09:59 (47h59m: bracket 1), 06-03 10:00 (48h: bracket 2).
    // u2: Sign Up 06-01 12:00 and 06-02 08:00; Use 06-02 13:00 (25 h after the
    //     first: bracket 1; 5 h after the second).
    // u3: Sign Up 05-31 10:00 (before range) and 06-01 10:00.
    // u4: Sign Up 06-02 00:00, no Use.
    let data = dataset(
        "UTC",
        plain(&[
            ("Sign Up", "u1", at("2026-06-01T10:00:00Z")),
            ("Use", "u1", at("2026-06-01T10:00:00Z")),
            ("Use", "u1", at("2026-06-03T09:59:00Z")),
            ("Use", "u1", at("2026-06-03T10:00:00Z")),
            ("Sign Up", "u2", at("2026-06-01T12:00:00Z")),
            ("Sign Up", "u2", at("2026-06-02T08:00:00Z")),
            ("Use", "u2", at("2026-06-02T13:00:00Z")),
            ("Sign Up", "u3", at("2026-05-31T10:00:00Z")),
            ("Sign Up", "u3", at("2026-06-01T10:00:00Z")),
            ("Sign Up", "u4", at("2026-06-02T00:00:00Z")),
        ]),
    );
    let spec = |mode: &str, retention: &str| {
        json!({"report": "retention", "from": "2026-06-01", "to": "2026-06-02",
               "born": {"event": "Sign Up"}, "return": {"event": "Use"},
               "unit": "day", "periods": 3, "mode": mode, "retention": retention})
    };
    // First time: 06-01 holds u1 {0, 1, 2} and u2 {1} (u3 was born before the
    // range); 06-02 holds u4.
    assert_eq!(
        check(&data, spec("on", "first_time")),
        json!({"cohorts": [{"start": "2026-06-01", "size": 2, "counts": [1, 2, 1]},
                           {"start": "2026-06-02", "size": 1, "counts": [0, 0, 0]}]})
    );
    // On or after: u2 {1} also fills bracket 0.
    assert_eq!(
        check(&data, spec("on_or_after", "first_time"))["cohorts"][0]["counts"],
        json!([2, 2, 1])
    );
    // Recurring: 06-01 holds u1, u2 (born 12:00: bracket 1), u3 (no return);
    // 06-02 holds u2 (born 08:00: Use after 5 h, bracket 0) and u4.
    assert_eq!(
        check(&data, spec("on", "recurring")),
        json!({"cohorts": [{"start": "2026-06-01", "size": 3, "counts": [1, 2, 1]},
                           {"start": "2026-06-02", "size": 2, "counts": [1, 0, 0]}]})
    );
}

#[test]
fn retention_birth_is_not_a_return() {
    // Born and return are both Use: u1's first Use is the birth; the second,
    // 1 ms later, is a return in bracket 0.
    let t = at("2026-06-01T10:00:00Z");
    let data = dataset("UTC", plain(&[("Use", "u1", t), ("Use", "u2", t), ("Use", "u2", t + 1)]));
    let result = check(
        &data,
        json!({"report": "retention", "from": "2026-06-01", "to": "2026-06-01",
               "born": {"event": "Use"}, "return": {"event": "Use"}, "unit": "week", "periods": 1}),
    );
    assert_eq!(result, json!({"cohorts": [{"start": "2026-06-01", "size": 2, "counts": [1]}]}));
}

// ---- flows ----

#[test]
fn flows_paths_steps_and_dropoff() {
    // Anchor A, after, 2 steps, window 1 h.
    // u1: A@0, B@0 (tie: not after), C@10m, D@20m, E@30m -> [A, C, D].
    // u2: A@0, C@5m, A@10m -> [A, C, A] (uniques: first anchor only).
    // u3: A@0, B@2h (past the window) -> [A].
    // u4: A@0, C@1m, D@2m -> [A, C, D].
    // Paths: [A, C, D] 2, then ties by path: [A] before [A, C, A].
    // Step 1: C 3, dropoff 1 (u3 ends right before it). Step 2: D 2, A 1,
    // dropoff 0 (no path ends right after step 1).
    let t = at("2026-06-01T10:00:00Z");
    let m = MINUTE_MS;
    let data = dataset(
        "UTC",
        plain(&[
            ("A", "u1", t),
            ("B", "u1", t),
            ("C", "u1", t + 10 * m),
            ("D", "u1", t + 20 * m),
            ("E", "u1", t + 30 * m),
            ("A", "u2", t),
            ("C", "u2", t + 5 * m),
            ("A", "u2", t + 10 * m),
            ("A", "u3", t),
            ("B", "u3", t + 2 * HOUR_MS),
            ("A", "u4", t),
            ("C", "u4", t + m),
            ("D", "u4", t + 2 * m),
        ]),
    );
    let result = check(
        &data,
        json!({"report": "flows", "from": "2026-06-01", "to": "2026-06-01",
               "anchor": {"event": "A"}, "steps": 2, "window": "1h"}),
    );
    assert_eq!(
        result,
        json!({
            "paths": [{"events": ["A", "C", "D"], "count": 2}, {"events": ["A"], "count": 1}, {"events": ["A", "C", "A"], "count": 1}],
            "steps": [
                {"step": 1, "nodes": [{"event": "C", "count": 3}], "dropoff": 1},
                {"step": 2, "nodes": [{"event": "D", "count": 2}, {"event": "A", "count": 1}], "dropoff": 0},
            ]
        })
    );
    // Before E (u1 only): nearest first: D@20m, C@10m.
    let result = check(
        &data,
        json!({"report": "flows", "from": "2026-06-01", "to": "2026-06-01",
               "anchor": {"event": "E"}, "direction": "before", "steps": 2}),
    );
    assert_eq!(result["paths"], json!([{"events": ["E", "D", "C"], "count": 1}]));
    // Totals: u2's second A also starts a path, [A]: [A] now counts 2 and
    // comes first (tie with [A, C, D], shorter path first).
    let result = check(
        &data,
        json!({"report": "flows", "from": "2026-06-01", "to": "2026-06-01",
               "anchor": {"event": "A"}, "steps": 2, "window": "1h", "counting": "totals"}),
    );
    assert_eq!(result["paths"][0], json!({"events": ["A"], "count": 2}));
}
