//! `hearth service-account create|list|disable` and
//! `hearth api-key create|list|disable|rotate`.

use crate::args::{ApiKeyCommand, ServiceAccountCommand};
use crate::commands::{audit_cli, data_dir};
use crate::config::Config;
use serde_json::json;

/// `90d`, `24h`, `30m`, `45s` or `0`, in milliseconds.
pub(crate) fn parse_duration_ms(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| anyhow::anyhow!("{text:?} is not a duration such as 90d, 24h, 30m or 45s"))?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => anyhow::bail!("{text:?} is not a duration such as 90d, 24h, 30m or 45s"),
    };
    Ok(n * unit_ms)
}

pub(crate) fn time_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn key_json(key: &meta::ApiKey) -> serde_json::Value {
    key.summary_json(events::now_ms())
}

pub(crate) fn run_accounts(config: &Config, command: ServiceAccountCommand) -> anyhow::Result<()> {
    match command {
        ServiceAccountCommand::Create { name, data } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
            let account = meta.create_service_account(&name)?;
            audit_cli(config, &data, None, "service_account.create", json!({"account": account.name}))?;
            println!("created service account {:?} (id {}); give it keys with `hearth api-key create --account {}`", account.name, account.id, account.name);
            Ok(())
        }
        ServiceAccountCommand::List { data } => {
            let meta = crate::commands::open_meta(config, &data_dir(config, &data))?;
            for account in meta.service_accounts()? {
                let state = if account.disabled_ms.is_some() { "disabled" } else { "active" };
                println!("{}\t{}\t{state}\tcreated {}", account.id, account.name, time_text(Some(account.created_ms)));
            }
            Ok(())
        }
        ServiceAccountCommand::Disable { name, data } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
            let account = meta.service_account(&name)?;
            meta.disable_service_account(account.id)?;
            audit_cli(config, &data, None, "service_account.disable", json!({"account": account.name}))?;
            println!("service account {:?} disabled: every key of it is refused from the next request on", account.name);
            Ok(())
        }
    }
}

pub(crate) fn run_keys(config: &Config, command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { data, account, scopes, projects, expires_in, allow_cidrs, json: as_json } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
            let account = meta.service_account(&account)?;
            let scopes = scopes
                .iter()
                .map(|s| meta::Scope::parse(s.trim()).ok_or_else(|| anyhow::anyhow!("unknown scope {s:?}: use ingest, read, export or admin")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let projects = projects.iter().map(|name| Ok(meta.project_by_name(name.trim())?.id)).collect::<anyhow::Result<Vec<_>>>()?;
            for cidr in &allow_cidrs {
                cidr.parse::<ipnet::IpNet>().map_err(|_| anyhow::anyhow!("{cidr:?} is not a CIDR such as 10.0.0.0/8"))?;
            }
            let expires_ms = expires_in.as_deref().map(parse_duration_ms).transpose()?.map(|ms| events::now_ms() + ms);
            let spec = meta::KeySpec { scopes, projects, allow_cidrs, expires_ms };
            let (secret, key) = meta.create_api_key(account.id, &spec, None)?;
            audit_cli(config, &data, None, "api_key.create", key_json(&key))?;
            print_new_key(&secret, &key, as_json);
            Ok(())
        }
        ApiKeyCommand::List { data, json: as_json } => {
            let meta = crate::commands::open_meta(config, &data_dir(config, &data))?;
            for key in meta.api_keys()? {
                if as_json {
                    println!("{}", key_json(&key));
                } else {
                    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                    let state = if key.is_live(events::now_ms()) { "live" } else { "dead" };
                    println!("{}\t{}\t{}\t{}\t{state}\texpires {}\tlast used {}", key.id, key.account_name, key.display, scopes.join(","), time_text(key.expires_ms), time_text(key.last_used_ms));
                }
            }
            Ok(())
        }
        ApiKeyCommand::Disable { id, data } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
            if !meta.disable_api_key(id)? {
                anyhow::bail!("no live key {id}");
            }
            audit_cli(config, &data, None, "api_key.disable", json!({"key": id}))?;
            println!("key {id} disabled: refused from the next request on");
            Ok(())
        }
        ApiKeyCommand::Rotate { id, data, overlap, json: as_json } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
            let overlap_ms = parse_duration_ms(&overlap)?;
            let (secret, key) = meta.rotate_api_key(id, events::now_ms() + overlap_ms)?;
            audit_cli(config, &data, None, "api_key.rotate", json!({"old": id, "new": key.id, "overlap_ms": overlap_ms}))?;
            print_new_key(&secret, &key, as_json);
            if !as_json {
                println!("key {id} keeps working for {overlap}");
            }
            Ok(())
        }
    }
}

fn print_new_key(secret: &str, key: &meta::ApiKey, as_json: bool) {
    if as_json {
        let mut value = key_json(key);
        value["key"] = json!(secret);
        println!("{value}");
    } else {
        println!("key {} for {:?}: {secret}", key.id, key.account_name);
        println!("(shown only now; stored as a hash)");
    }
}
