//! A deterministic, dependency-free fuzz pass: thousands of random and
//! mutated requests through `decode_request`, and random JSON records
//! through every validator. The assertion is that nothing panics and that
//! every error maps to 400 or 413. A real fuzzer (`fuzz/`) goes further;
//! this one runs with every `cargo test`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mixpanel::{
    Limits, Mode, RawRequest, RecordOutcome, decode_request, validate_event, validate_group_update,
    validate_profile_update,
};
use serde_json::{Map, Value};
use std::io::Write;

const N_RANDOM_REQUESTS: usize = 3000;
const N_MUTATED_REQUESTS: usize = 2000;
const N_RANDOM_RECORDS: usize = 3000;
const NOW_MS: i64 = 1_795_317_800_000;

/// xorshift64*: small, deterministic, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that steer the decoder into its interesting branches.
const STRUCTURAL: &[u8] =
    b"{}[]\":,=&%+ -_/\n\r\tdatipvrbosecklmn0123456789abcdefABCDEF\x1f\x8b\xff\xc3";
const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain;charset=UTF-8"),
    Some("application/x-ndjson"),
];
const CONTENT_ENCODINGS: [Option<&str>; 3] = [None, Some("gzip"), Some("identity")];

fn random_bytes(rng: &mut Rng, len_max: usize) -> Vec<u8> {
    let len = rng.below(len_max);
    let structural = rng.below(4) != 0;
    (0..len)
        .map(|_| {
            if structural {
                *rng.pick(STRUCTURAL)
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

/// Returns how many records were accepted by some validator.
fn assert_decodes_or_fails_cleanly(
    rng: &mut Rng,
    query: Option<&str>,
    body: &[u8],
    limits: &Limits,
) -> usize {
    let request = RawRequest {
        query,
        content_type: *rng.pick(&CONTENT_TYPES),
        content_encoding: *rng.pick(&CONTENT_ENCODINGS),
        body,
    };
    match decode_request(&request, limits) {
        Ok(decoded) => {
            assert!(decoded.records.len() <= limits.records_max);
            let records = decoded.records.into_iter().enumerate();
            records
                .map(|(index, record)| validate_everywhere(index, record, limits))
                .sum()
        }
        Err(error) => {
            assert!(matches!(error.http_status(), 400 | 413));
            assert!(!error.to_string().is_empty());
            0
        }
    }
}

/// Runs every validator; returns how many accepted the record.
fn validate_everywhere(index: usize, record: Value, limits: &Limits) -> usize {
    let mut n_accepted = 0;
    let mut new_insert_id = || "generated".to_owned();
    for mode in [Mode::Track, Mode::Import] {
        match validate_event(
            index,
            record.clone(),
            mode,
            NOW_MS,
            limits,
            &mut new_insert_id,
        ) {
            RecordOutcome::Accepted(input) => {
                assert!(input.event.distinct_id.chars().count() <= 255);
                assert!(!input.event.properties.contains_key("token"));
                assert!(!input.event.properties.contains_key("ip"));
                assert!(input.event.properties.len() <= limits.properties_max + 1);
                n_accepted += 1;
            }
            RecordOutcome::Rejected(error) => assert_eq!(error.index, index),
            RecordOutcome::Ignored => {}
        }
    }
    if let Ok(input) = validate_profile_update(index, record.clone(), NOW_MS, limits) {
        assert!(!input.updates.is_empty());
        n_accepted += 1;
    }
    if let Ok(input) = validate_group_update(index, record, NOW_MS, limits) {
        assert!(!input.updates.is_empty());
        n_accepted += 1;
    }
    n_accepted
}

#[test]
fn random_requests_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let limits = Limits {
        body_bytes_max: 4096,
        records_max: 20,
        ..Limits::default()
    };
    let mut n_accepted = 0;
    for _ in 0..N_RANDOM_REQUESTS {
        let body = random_bytes(&mut rng, 600);
        let query_bytes = random_bytes(&mut rng, 80);
        let query = String::from_utf8_lossy(&query_bytes).into_owned();
        let query = if rng.below(3) == 0 {
            None
        } else {
            Some(query.as_str())
        };
        n_accepted += assert_decodes_or_fails_cleanly(&mut rng, query, &body, &limits);
    }
    // Random bytes are almost never a valid record; this only shows the
    // count is computed (the mutated test below reaches validation).
    assert!(n_accepted < N_RANDOM_REQUESTS);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("in-memory write");
    encoder.finish().expect("in-memory write")
}

/// Valid payloads of every shape, to be damaged.
fn seeds() -> Vec<Vec<u8>> {
    let events = r#"[{"event":"a","properties":{"time":1700000000,"distinct_id":"u","$insert_id":"abc","$user_id":"u","nested":{"x":[1,{"y":"z"}]}}},{"$distinct_id":"u","$set":{"a":1},"$add":{"n":2},"$unset":["b"]},{"$group_key":"k","$group_id":7,"$union":{"l":[1]}}]"#;
    let base64 = STANDARD.encode(events);
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("data", &base64)
        .append_pair("verbose", "1")
        .finish();
    vec![
        events.as_bytes().to_vec(),
        form.clone().into_bytes(),
        format!("data={events}&ip=0").into_bytes(),
        gzip(events.as_bytes()),
        gzip(form.as_bytes()),
        format!("data={}", STANDARD.encode(gzip(events.as_bytes()))).into_bytes(),
    ]
}

#[test]
fn mutated_sdk_payloads_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let limits = Limits {
        records_max: 50,
        ..Limits::default()
    };
    let seeds = seeds();
    let mut n_accepted = 0;
    for _ in 0..N_MUTATED_REQUESTS {
        let mut body = rng.pick(&seeds).clone();
        for _ in 0..=rng.below(4) {
            match rng.below(3) {
                0 if !body.is_empty() => {
                    let idx = rng.below(body.len());
                    body[idx] = if rng.below(2) == 0 {
                        *rng.pick(STRUCTURAL)
                    } else {
                        rng.next() as u8
                    };
                }
                1 => body.truncate(rng.below(body.len() + 1)),
                _ => {
                    let idx = rng.below(body.len() + 1);
                    body.insert(idx, *rng.pick(STRUCTURAL));
                }
            }
        }
        n_accepted += assert_decodes_or_fails_cleanly(&mut rng, Some("verbose=1"), &body, &limits);
    }
    // Some mutations leave a payload valid: the validators were reached.
    assert!(n_accepted > N_MUTATED_REQUESTS / 100, "{n_accepted}");
}

/// Keys validators care about, so random records reach their branches.
const KEYS: [&str; 24] = [
    "event",
    "properties",
    "time",
    "distinct_id",
    "$insert_id",
    "$user_id",
    "$device_id",
    "token",
    "ip",
    "$ignore",
    "bucket",
    "$set",
    "$set_once",
    "$add",
    "$append",
    "$union",
    "$remove",
    "$unset",
    "$delete",
    "$distinct_id",
    "$group_key",
    "$group_id",
    "$time",
    "x",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kind = if depth > 5 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match kind {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => Value::from(rng.next() as i64 >> rng.below(64)),
        3 => Value::from(f64::from(rng.next() as u32) / 7.0),
        4 => {
            let strings = [
                "",
                "0",
                "null",
                "false",
                "1700000000",
                "u",
                "$device:x",
                "é✓",
                "a-b-c",
            ];
            Value::from(if rng.below(10) == 0 {
                "s".repeat(rng.below(400))
            } else {
                (*rng.pick(&strings)).to_owned()
            })
        }
        5 => Value::Array(
            (0..rng.below(6))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let map: Map<String, Value> = (0..rng.below(8))
                .map(|_| ((*rng.pick(&KEYS)).to_owned(), random_value(rng, depth + 1)))
                .collect();
            Value::Object(map)
        }
    }
}

/// `{"event": ..., "properties": {...}}` with random contents, so event
/// validation gets past its first checks.
fn random_event_shape(rng: &mut Rng) -> Value {
    let properties: Map<String, Value> = (0..rng.below(10))
        .map(|_| ((*rng.pick(&KEYS)).to_owned(), random_value(rng, 1)))
        .collect();
    let mut record = Map::new();
    record.insert("event".to_owned(), Value::from("e"));
    record.insert("properties".to_owned(), Value::Object(properties));
    Value::Object(record)
}

#[test]
fn random_records_never_panic_any_validator() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let limits = Limits {
        properties_max: 4,
        collection_len_max: 4,
        nesting_depth_max: 2,
        string_chars_max: 8,
        ..Limits::default()
    };
    let mut n_accepted = 0;
    for index in 0..N_RANDOM_RECORDS {
        n_accepted += validate_everywhere(index, random_value(&mut rng, 0), &limits);
        n_accepted += validate_everywhere(index, random_event_shape(&mut rng), &limits);
        n_accepted += validate_everywhere(index, random_event_shape(&mut rng), &Limits::default());
    }
    assert!(n_accepted > N_RANDOM_RECORDS / 10, "{n_accepted}");
}
