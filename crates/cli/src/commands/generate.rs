//! `hearth gen`: the deterministic synthetic data set, as JSONL files or
//! loaded straight into a project.

use crate::args::GenArgs;
use crate::commands::{data_dir, open_project};
use crate::config::Config;
use crate::progress::count_bar;
use anyhow::Context;
use datagen::{GenConfig, Generator};
use std::io::Write;
use std::path::Path;

const BATCH_EVENTS: usize = 2000;

fn gen_config(args: &GenArgs) -> anyhow::Result<GenConfig> {
    let mut config = GenConfig::for_events(args.events.unwrap_or(1_000_000));
    if let Some(users) = args.users {
        config.users = users;
    }
    if let Some(days) = args.days {
        config.days = days;
    }
    if let Some(start) = &args.start {
        config.start_day = chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d").with_context(|| format!("--start must be YYYY-MM-DD, got {start:?}"))?;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    Ok(config)
}

fn create_output(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock())));
    }
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast())))
    } else {
        Ok(Box::new(std::io::BufWriter::with_capacity(1 << 20, file)))
    }
}

pub(crate) fn run(config: &Config, args: GenArgs) -> anyhow::Result<()> {
    let gen_config = gen_config(&args)?;
    let generator = Generator::new(gen_config.clone());
    let expected = gen_config.users * datagen::EVENTS_PER_USER_90_DAYS * u64::from(gen_config.days) / 90;
    if let Some(path) = &args.out {
        let mut out = create_output(path)?;
        let bar = count_bar(expected, "events");
        let mut result = Ok(());
        let mut n_events = 0u64;
        generator.for_each_event_ref(|event| {
            if result.is_ok() {
                result = datagen::write_jsonl(event, &mut out);
                n_events += 1;
                if n_events.is_multiple_of(10_000) {
                    bar.set_position(n_events);
                }
            }
        });
        result?;
        out.flush()?;
        bar.finish_and_clear();
        eprintln!("wrote {n_events} events for {} users to {}", gen_config.users, path.display());
    }
    if let Some(path) = &args.profiles {
        let mut out = create_output(path)?;
        let mut result = Ok(());
        generator.for_each_profile(|update| {
            if result.is_ok() {
                result = write_profile_line(&update, &mut out);
            }
        });
        result?;
        out.flush()?;
    }
    if let Some(project) = &args.project {
        load_into_project(config, &args, project, &generator, expected)?;
    }
    if args.out.is_none() && args.profiles.is_none() && args.project.is_none() {
        anyhow::bail!("nothing to do: give --out FILE, --profiles FILE or --project NAME");
    }
    Ok(())
}

fn write_profile_line(update: &events::ProfileUpdate, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut object = serde_json::Map::new();
    object.insert("$distinct_id".into(), update.distinct_id.clone().into());
    object.insert("$time".into(), update.time_ms.into());
    let value = match &update.op {
        events::ProfileOp::Set(p) | events::ProfileOp::SetOnce(p) => serde_json::Value::Object(p.clone()),
        _ => return Ok(()),
    };
    object.insert(update.op.wire_name().into(), value);
    serde_json::to_writer(&mut *out, &object)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn load_into_project(config: &Config, args: &GenArgs, name: &str, generator: &Generator, expected: u64) -> anyhow::Result<()> {
    let data = data_dir(config, &args.data);
    let (meta, project) = open_project(config, &data, name)?;
    let meta = std::sync::Arc::new(meta);
    let protector = crate::commands::open_protector(config, &data, meta.clone())?;
    let store = crate::commands::open_store(&data, config.ingest_store_config(crate::config::Unreachable::Fail, &protector)?, &meta)?;
    let links = meta::LinkCache::default();
    let bar = count_bar(expected, "events");
    let mut batch = Vec::with_capacity(BATCH_EVENTS);
    let mut result: anyhow::Result<()> = Ok(());
    let mut n_events = 0u64;
    let mut protection = protector.batch(project.id)?;
    generator.for_each_event(|mut event| {
        if result.is_err() {
            return;
        }
        match protection.event(&mut event) {
            Ok(privacy::apply::Verdict::Keep) => batch.push(event),
            Ok(privacy::apply::Verdict::Drop) => {}
            Err(error) => result = Err(error.into()),
        }
        if batch.len() == BATCH_EVENTS && result.is_ok() {
            n_events += batch.len() as u64;
            // Sealed values, then identity links, then events, as the server does.
            result = protector
                .batch(project.id)
                .and_then(|next| std::mem::replace(&mut protection, next).commit())
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(links.record(&meta, project.id, &batch)?))
                .and_then(|()| Ok(store.append_blocking(project.id, std::mem::replace(&mut batch, Vec::with_capacity(BATCH_EVENTS)))?));
            bar.set_position(n_events);
        }
    });
    result?;
    protection.commit()?;
    n_events += batch.len() as u64;
    links.record(&meta, project.id, &batch)?;
    store.append_blocking(project.id, batch)?;
    let mut profiles = Vec::new();
    let mut protection = protector.batch(project.id)?;
    let mut failure = None;
    generator.for_each_profile(|mut update| {
        if let Err(error) = protection.profile(&mut update) {
            failure.get_or_insert(error);
        }
        profiles.push(update);
    });
    let mut groups = Vec::new();
    generator.for_each_group(|mut update| {
        if let Err(error) = protection.group(&mut update) {
            failure.get_or_insert(error);
        }
        groups.push(update);
    });
    if let Some(error) = failure {
        return Err(error.into());
    }
    protection.commit()?;
    for chunk in profiles.chunks(10_000) {
        meta.apply_profile_updates(project.id, chunk)?;
    }
    meta.apply_group_updates(project.id, &groups)?;
    store.close()?;
    bar.finish_and_clear();
    eprintln!("loaded {n_events} events, {} profiles and {} group profiles into {name:?}", profiles.len(), groups.len());
    Ok(())
}
