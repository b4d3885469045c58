//! Prints the shape of a data set (counts by event, shares, weekly retention
//! of the cohorts with nine weeks of data) and how fast it is generated.
//! Use it when tuning the model:
//!
//! ```text
//! cargo run -p datagen --example summary -- 20000
//! ```

use datagen::{GenConfig, Generator};
use events::{Event, MS_PER_DAY};
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::time::Instant;

fn main() -> io::Result<()> {
    let users: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| io::Error::other("the argument is a number of users"))?,
        None => 20_000,
    };
    let mut config = GenConfig::for_events(users * datagen::EVENTS_PER_USER_90_DAYS);
    config.users = users;
    let generator = Generator::new(config);
    let mut out = io::stdout().lock();
    print_shape(&generator, &mut out)?;
    print_speed(&generator, &mut out)
}

fn print_shape(generator: &Generator, out: &mut impl Write) -> io::Result<()> {
    let users = generator.config().users;
    let start_ms = generator.time_range_ms().start;
    let mut count_by_name: BTreeMap<String, u64> = BTreeMap::new();
    let mut n_events = 0u64;
    let mut n_duplicates = 0u64;
    let mut previous: Option<Event> = None;
    let mut signup_day = vec![0u64; users as usize];
    // Bit w: active in week w after sign-up.
    let mut active_weeks = vec![0u64; users as usize];
    generator.for_each_event_ref(|event| {
        n_events += 1;
        if previous
            .as_ref()
            .is_some_and(|previous| previous.same_dedup_key(event))
        {
            n_duplicates += 1;
        }
        *count_by_name.entry(event.name.clone()).or_default() += 1;
        if let Some(user_idx) = event.distinct_id.strip_prefix('u') {
            let user_idx: usize = user_idx.parse().expect("user ids are u<n>");
            let day = ((event.time_ms - start_ms) / MS_PER_DAY) as u64;
            if event.name == datagen::SIGN_UP {
                signup_day[user_idx] = day;
            }
            active_weeks[user_idx] |= 1 << ((day - signup_day[user_idx]) / 7);
        }
        previous = Some(event.clone());
    });
    writeln!(
        out,
        "users {users}, events {n_events}, {:.2} per user",
        n_events as f64 / users as f64
    )?;
    writeln!(
        out,
        "duplicates {n_duplicates} ({:.3}%)",
        100.0 * n_duplicates as f64 / n_events as f64
    )?;
    for (name, count) in &count_by_name {
        let share_of_events = 100.0 * *count as f64 / n_events as f64;
        let per_100_users = 100.0 * *count as f64 / users as f64;
        writeln!(
            out,
            "  {name:16} {count:10} {share_of_events:6.2}% of events {per_100_users:8.2} per 100 users"
        )?;
    }
    let days = u64::from(generator.config().days);
    let cohort: Vec<usize> = (0..users as usize)
        .filter(|&idx| signup_day[idx] + 63 <= days)
        .collect();
    let retention: Vec<String> = (0..9)
        .map(|week| {
            let active = cohort
                .iter()
                .filter(|&&idx| active_weeks[idx] & (1 << week) != 0)
                .count();
            format!("{:.0}%", 100.0 * active as f64 / cohort.len() as f64)
        })
        .collect();
    writeln!(
        out,
        "weekly retention of {} users: {}",
        cohort.len(),
        retention.join(" ")
    )
}

fn print_speed(generator: &Generator, out: &mut impl Write) -> io::Result<()> {
    let started = Instant::now();
    let mut n_events = 0u64;
    generator.for_each_event(|_| n_events += 1);
    let owned_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    generator.for_each_event_ref(|_| {});
    let borrowed_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut sink = BufWriter::new(io::sink());
    generator.for_each_event_ref(|event| {
        datagen::write_jsonl(event, &mut sink).expect("the sink accepts all")
    });
    let jsonl_s = started.elapsed().as_secs_f64();
    let per_second = |seconds: f64| n_events as f64 / seconds;
    writeln!(
        out,
        "events/s: for_each_event {:.0}, for_each_event_ref {:.0}, ref + write_jsonl {:.0}",
        per_second(owned_s),
        per_second(borrowed_s),
        per_second(jsonl_s)
    )
}
