//! Properties of the generated data set that later report tests rely on,
//! checked through the public API only.

use datagen::{GenConfig, Generator};
use events::{Event, MS_PER_DAY, ProfileOp};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

fn generator(users: u64) -> Generator {
    let mut config = GenConfig::for_events(users * datagen::EVENTS_PER_USER_90_DAYS);
    config.users = users;
    Generator::new(config)
}

fn collect_events(generator: &Generator) -> Vec<Event> {
    let mut res = Vec::new();
    generator.for_each_event(|event| res.push(event));
    res
}

fn jsonl(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        datagen::write_jsonl(event, &mut out).unwrap();
    }
    out
}

/// FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn user_idx(distinct_id: &str) -> Option<usize> {
    distinct_id
        .strip_prefix('u')
        .map(|idx| idx.parse().unwrap())
}

/// Drops the injected copies (each directly precedes its original).
fn originals(events: &[Event]) -> Vec<&Event> {
    let mut res: Vec<&Event> = Vec::with_capacity(events.len());
    for event in events {
        if res
            .last()
            .is_some_and(|previous| previous.same_dedup_key(event))
        {
            continue;
        }
        res.push(event);
    }
    res
}

#[test]
fn output_is_deterministic_and_matches_the_snapshot() {
    let first = jsonl(&collect_events(&generator(300)));
    let second = jsonl(&collect_events(&generator(300)));
    assert!(first == second, "two runs differ");
    let first_1000_lines: Vec<&[u8]> = first
        .split_inclusive(|byte| *byte == b'\n')
        .take(1000)
        .collect();
    assert_eq!(first_1000_lines.len(), 1000);
    // Changes whenever the model or a table changes: update it deliberately,
    // and say so, since tests of other crates may pin numbers from the data set.
    assert_eq!(fnv1a(&first_1000_lines.concat()), 6_843_611_748_008_502_940);
}

#[test]
fn users_regenerate_independently() {
    let generator = generator(200);
    let all = collect_events(&generator);
    let mut some = Vec::new();
    generator.for_each_event_ref_in(50..60, |event| some.push(event.clone()));
    let expected: Vec<&Event> = all
        .iter()
        .filter(|event| {
            let owner = some
                .iter()
                .any(|mine| mine.distinct_id == event.distinct_id);
            owner || user_idx(&event.distinct_id).is_some_and(|idx| (50..60).contains(&idx))
        })
        .collect();
    assert!(!some.is_empty());
    assert_eq!(some.iter().collect::<Vec<_>>(), expected);
}

#[test]
fn times_ids_and_names_are_well_formed() {
    let generator = generator(2_000);
    let range = generator.time_range_ms();
    let mut last_time_by_id: BTreeMap<String, i64> = BTreeMap::new();
    generator.for_each_event(|event| {
        assert!(range.contains(&event.time_ms), "{event:?}");
        assert_eq!(event.insert_id.len(), 32);
        assert!(
            event
                .insert_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(datagen::EVENT_NAMES.contains(&event.name.as_str()));
        for key in ["mp_country_code", "$browser", "$os", "mp_lib"] {
            assert!(
                event.properties.contains_key(key),
                "{key} missing: {event:?}"
            );
        }
        let last_time = last_time_by_id
            .entry(event.distinct_id.clone())
            .or_insert(i64::MIN);
        assert!(event.time_ms >= *last_time, "out of order: {event:?}");
        *last_time = event.time_ms;
        let mp_lib = event.properties["mp_lib"].as_str().unwrap();
        assert_eq!(
            mp_lib,
            if event.name == datagen::API_REQUEST {
                "python"
            } else {
                "web"
            }
        );
        if let Some(device_id) = event.distinct_id.strip_prefix("$device:") {
            assert_eq!(event.name, datagen::PAGE_VIEW);
            assert_eq!(event.properties["$device_id"], device_id);
            assert!(
                !event.properties.contains_key("plan")
                    && !event.properties.contains_key("company_id")
            );
        } else {
            assert_eq!(event.properties["$user_id"], event.distinct_id.as_str());
            assert!(
                event.properties["plan"].is_string() && event.properties["company_id"].is_string()
            );
        }
    });
}

#[test]
fn funnel_steps_follow_each_other() {
    let events = collect_events(&generator(2_000));
    let mut signup_ms: BTreeMap<usize, i64> = BTreeMap::new();
    let mut key_ms: BTreeMap<usize, i64> = BTreeMap::new();
    let mut first_request_ms: BTreeMap<usize, i64> = BTreeMap::new();
    let mut device_of_user: BTreeMap<usize, String> = BTreeMap::new();
    let mut anonymous_devices: BTreeSet<String> = BTreeSet::new();
    for event in originals(&events) {
        let Some(idx) = user_idx(&event.distinct_id) else {
            anonymous_devices.insert(event.properties["$device_id"].as_str().unwrap().to_owned());
            continue;
        };
        let name = event.name.as_str();
        if name == datagen::SIGN_UP {
            assert!(
                signup_ms.insert(idx, event.time_ms).is_none(),
                "two sign-ups for u{idx}"
            );
            device_of_user.insert(
                idx,
                event.properties["$device_id"].as_str().unwrap().to_owned(),
            );
            continue;
        }
        let signed_up_ms = *signup_ms
            .get(&idx)
            .expect("Sign Up is a user's first identified event");
        assert!(event.time_ms >= signed_up_ms);
        match name {
            datagen::CREATE_API_KEY => {
                assert!(event.time_ms > signed_up_ms);
                assert!(
                    key_ms.insert(idx, event.time_ms).is_none(),
                    "two keys for u{idx}"
                );
            }
            datagen::API_REQUEST => {
                assert!(
                    key_ms
                        .get(&idx)
                        .is_some_and(|key_ms| *key_ms < event.time_ms)
                );
                first_request_ms.entry(idx).or_insert(event.time_ms);
            }
            datagen::UPGRADE_PLAN => {
                assert!(
                    first_request_ms
                        .get(&idx)
                        .is_some_and(|request_ms| *request_ms < event.time_ms)
                );
                assert_eq!(event.properties["plan"], event.properties["from_plan"]);
                assert_ne!(event.properties["to_plan"], event.properties["from_plan"]);
                assert!(event.properties["amount"].is_number());
            }
            _ => {}
        }
    }
    assert_eq!(signup_ms.len(), 2_000);
    // Every anonymous device belongs to a user who signed up from it.
    let devices: BTreeSet<String> = device_of_user.into_values().collect();
    assert!(!anonymous_devices.is_empty() && anonymous_devices.is_subset(&devices));
}

#[test]
fn shares_are_realistic() {
    let users = 20_000;
    let generator = generator(users);
    let events = collect_events(&generator);
    let originals = originals(&events);
    let mut count_by_name: BTreeMap<&str, u64> = BTreeMap::new();
    let mut signups_by_country: BTreeMap<String, u64> = BTreeMap::new();
    for event in &originals {
        *count_by_name.entry(event.name.as_str()).or_default() += 1;
        if event.name == datagen::SIGN_UP {
            *signups_by_country
                .entry(
                    event.properties["mp_country_code"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
                .or_default() += 1;
        }
    }
    let share_of_users = |name: &str| count_by_name[name] as f64 / users as f64;
    assert_eq!(count_by_name[datagen::SIGN_UP], users);
    assert!((0.5..0.7).contains(&share_of_users(datagen::CREATE_API_KEY)));
    assert!((0.06..0.10).contains(&share_of_users(datagen::UPGRADE_PLAN)));
    let largest = count_by_name
        .iter()
        .max_by_key(|(_, count)| **count)
        .unwrap();
    assert_eq!(*largest.0, datagen::API_REQUEST);
    assert!(*largest.1 as f64 > 0.5 * originals.len() as f64);
    let us_share = signups_by_country["US"] as f64 / users as f64;
    assert!((0.33..0.37).contains(&us_share), "{us_share}");
    let events_per_user = events.len() as f64 / users as f64;
    let expected = datagen::EVENTS_PER_USER_90_DAYS as f64;
    assert!(
        (0.9 * expected..1.1 * expected).contains(&events_per_user),
        "{events_per_user}"
    );
}

#[test]
fn cohorts_retain_and_days_cycle() {
    let generator = generator(20_000);
    let start_ms = generator.time_range_ms().start;
    let day_of = |time_ms: i64| ((time_ms - start_ms) / MS_PER_DAY) as u32;
    let mut signup_day: BTreeMap<usize, u32> = BTreeMap::new();
    let mut active_weeks: BTreeMap<usize, u64> = BTreeMap::new();
    let mut signups_by_weekday = [0u64; 7];
    let mut events_by_hour = [0u64; 24];
    generator.for_each_event(|event| {
        events_by_hour[((event.time_ms % MS_PER_DAY) / 3_600_000) as usize] += 1;
        let Some(idx) = user_idx(&event.distinct_id) else {
            return;
        };
        let day = day_of(event.time_ms);
        if event.name == datagen::SIGN_UP {
            signup_day.insert(idx, day);
            // Day 0 is a Monday.
            signups_by_weekday[(day % 7) as usize] += 1;
        }
        *active_weeks.entry(idx).or_default() |= 1 << ((day - signup_day[&idx]) / 7);
    });
    let cohort: Vec<usize> = signup_day
        .iter()
        .filter(|(_, day)| **day < 90 - 63)
        .map(|(idx, _)| *idx)
        .collect();
    let retained = |week: u32| {
        let active = cohort
            .iter()
            .filter(|idx| active_weeks[idx] & (1 << week) != 0)
            .count();
        active as f64 / cohort.len() as f64
    };
    assert_eq!(retained(0), 1.0);
    assert!((0.3..0.6).contains(&retained(1)), "week 1: {}", retained(1));
    assert!(
        (0.15..0.25).contains(&retained(8)),
        "week 8: {}",
        retained(8)
    );
    assert!(retained(1) > retained(4) && retained(4) > retained(8));
    let weekday_mean = signups_by_weekday[..5].iter().sum::<u64>() as f64 / 5.0;
    let weekend_mean = signups_by_weekday[5..].iter().sum::<u64>() as f64 / 2.0;
    assert!(weekend_mean < 0.75 * weekday_mean);
    // A global audience flattens the local cycle, but the busiest UTC hour,
    // when the US and Europe both work, still sees twice the quietest.
    let busiest_hour = (0..24).max_by_key(|hour| events_by_hour[*hour]).unwrap();
    let quietest = *events_by_hour.iter().min().unwrap();
    assert!((13..=18).contains(&busiest_hour), "{events_by_hour:?}");
    assert!(
        events_by_hour[busiest_hour] > 2 * quietest,
        "{events_by_hour:?}"
    );
}

#[test]
fn about_half_a_percent_of_events_are_duplicated() {
    let events = collect_events(&generator(5_000));
    let n_duplicates = events.len() - originals(&events).len();
    let fraction = n_duplicates as f64 / events.len() as f64;
    assert!((0.004..0.006).contains(&fraction), "{fraction}");
    for pair in events.windows(2) {
        if pair[0].same_dedup_key(&pair[1]) {
            assert_eq!(pair[0], pair[1]);
        }
    }
    // Insert ids are unique apart from the injected copies.
    let insert_ids: BTreeSet<&str> = events
        .iter()
        .map(|event| event.insert_id.as_str())
        .collect();
    assert_eq!(insert_ids.len(), events.len() - n_duplicates);
}

#[test]
fn jsonl_round_trips_through_serde_json() {
    let events = collect_events(&generator(200));
    let out = jsonl(&events);
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert_eq!(lines.len(), events.len());
    for (line, event) in lines.iter().zip(&events) {
        let Value::Object(mut object) = serde_json::from_str::<Value>(line).unwrap() else {
            panic!("{line}")
        };
        assert_eq!(object.len(), 2);
        let Some(Value::Object(mut properties)) = object.remove("properties") else {
            panic!("{line}")
        };
        let time = properties.remove("time").unwrap();
        assert!(time.is_i64(), "time is an integer of milliseconds");
        let parsed = Event {
            name: object["event"].as_str().unwrap().to_owned(),
            distinct_id: properties
                .remove("distinct_id")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned(),
            time_ms: time.as_i64().unwrap(),
            insert_id: properties
                .remove("$insert_id")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned(),
            properties,
        };
        assert_eq!(&parsed, event);
    }
}

#[test]
fn profiles_and_groups_agree_with_events() {
    let users = 2_000;
    let generator = generator(users);
    let mut last_plan: BTreeMap<String, Value> = BTreeMap::new();
    let mut company_of: BTreeMap<String, Value> = BTreeMap::new();
    generator.for_each_event(|event| {
        if let Some(plan) = event.properties.get("plan") {
            let plan = if event.name == datagen::UPGRADE_PLAN {
                &event.properties["to_plan"]
            } else {
                plan
            };
            last_plan.insert(event.distinct_id.clone(), plan.clone());
            company_of.insert(
                event.distinct_id.clone(),
                event.properties["company_id"].clone(),
            );
        }
    });
    let mut n_profiles = 0;
    generator.for_each_profile(|update| {
        n_profiles += 1;
        match update.op {
            ProfileOp::Set(properties) => {
                let idx = user_idx(&update.distinct_id).unwrap();
                assert_eq!(properties["$email"], format!("user{idx}@example.com"));
                assert_eq!(properties["plan"], last_plan[&update.distinct_id]);
                assert_eq!(properties["company_id"], company_of[&update.distinct_id]);
                for key in ["$name", "$created", "$country_code"] {
                    assert!(properties[key].is_string());
                }
            }
            ProfileOp::SetOnce(properties) => {
                assert!(properties["$initial_referring_domain"].is_string())
            }
            op => panic!("unexpected {op:?}"),
        }
    });
    assert_eq!(n_profiles, 2 * users);
    let mut group_ids = BTreeSet::new();
    generator.for_each_group(|update| {
        assert_eq!(update.group_key, datagen::GROUP_KEY);
        let ProfileOp::Set(properties) = update.op else {
            panic!("groups get one $set")
        };
        assert!(properties["seats"].as_u64().unwrap() >= 1);
        for key in ["name", "plan", "industry"] {
            assert!(properties[key].is_string());
        }
        group_ids.insert(update.group_id);
    });
    assert_eq!(group_ids.len() as u64, generator.n_orgs());
    assert_eq!(generator.n_orgs(), 400);
    assert!(
        company_of
            .values()
            .all(|company_id| group_ids.contains(company_id.as_str().unwrap()))
    );
}

/// Prints the generation speed; timing is not asserted, since debug builds
/// and shared machines vary. An optimised build is several times faster.
#[test]
fn generation_speed_is_reported() {
    let generator = generator(5_000);
    let started = Instant::now();
    let mut n_events = 0u64;
    generator.for_each_event(|_| n_events += 1);
    let owned_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    generator.for_each_event_ref(|_| {});
    let borrowed_s = started.elapsed().as_secs_f64();
    println!(
        "{n_events} events: for_each_event {:.0}/s, for_each_event_ref {:.0}/s",
        n_events as f64 / owned_s,
        n_events as f64 / borrowed_s
    );
    assert!(n_events > 0);
}
