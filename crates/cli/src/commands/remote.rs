//! `hearth import --url` and `hearth export --url`: the same commands against
//! a running server, over its Mixpanel-compatible API (`/import` and
//! `/api/2.0/export`) with the project secret or an API key, so that a
//! migration or a backup needs no downtime and no access to the data
//! directory.
//!
//! Import sends gzip JSON arrays of 2000 events with `strict=1`; the server
//! validates, applies the privacy policy and answers which records failed.
//! A 429 is retried after its `Retry-After`. Lines that are not JSON are
//! rejected here, so that one bad line never sinks the batch around it.

use crate::progress::bytes_bar;
use anyhow::{bail, Context};
use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

const BATCH_EVENTS: usize = 2000;
const RETRIES_MAX: u32 = 8;

/// A running server and the credential to use on it.
pub(crate) struct Remote {
    base: String,
    authorization: String,
    agent: ureq::Agent,
}

impl Remote {
    pub(crate) fn new(url: &str, secret: &str) -> anyhow::Result<Remote> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url must start with http:// or https://, got {url:?}");
        }
        if secret.is_empty() {
            bail!("give the project secret or an API key: --secret, or HEARTH_SECRET");
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{secret}:"));
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(300))).build().into();
        Ok(Remote { base: url.trim_end_matches('/').to_owned(), authorization: format!("Basic {basic}"), agent })
    }

    /// POSTs one batch (a JSON array) to /import; answers how many were
    /// imported and the failed records' messages.
    fn import_batch(&self, lines: &[String]) -> anyhow::Result<(u64, Vec<String>)> {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(b"[")?;
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                gzip.write_all(b",")?;
            }
            gzip.write_all(line.as_bytes())?;
        }
        gzip.write_all(b"]")?;
        let body = gzip.finish()?;
        let url = format!("{}/import?strict=1", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut response = self
                .agent
                .post(&url)
                .header("authorization", &self.authorization)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .send(&body[..])
                .with_context(|| format!("sending a batch to {url}"))?;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let imported = reply["num_records_imported"].as_u64().unwrap_or(0);
            match status {
                200 => return Ok((imported, Vec::new())),
                400 if reply["failed_records"].is_array() => {
                    let failed = reply["failed_records"].as_array().into_iter().flatten().map(|f| format!("{}: {}: {}", f["index"], f["field"].as_str().unwrap_or(""), f["message"].as_str().unwrap_or(""))).collect();
                    return Ok((imported, failed));
                }
                429 if attempt <= RETRIES_MAX => std::thread::sleep(Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 60))),
                401 => bail!("{url} refused the credential (401): give the project secret or an API key with the ingest scope"),
                _ => bail!("{url} answered {status}: {}", reply["error"].as_str().unwrap_or(text.trim())),
            }
        }
    }
}

/// Totals of a remote import.
#[derive(Default)]
pub(crate) struct Sent {
    pub(crate) imported: u64,
    pub(crate) rejected: u64,
    pub(crate) examples: Vec<String>,
}

impl Sent {
    fn reject(&mut self, example: String) {
        self.rejected += 1;
        if self.examples.len() < 10 {
            self.examples.push(example);
        }
    }
}

/// Sends a JSONL file (plain or gzip) to the server's /import.
pub(crate) fn import_file(remote: &Remote, path: &Path, sent: &mut Sent) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)?;
    let bar = bytes_bar(file.metadata()?.len(), &path.display().to_string());
    let mut counting = BufReader::new(super::import::Counting { inner: file, bar: bar.clone() });
    let is_gzip = counting.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> = if is_gzip { Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(counting))) } else { Box::new(counting) };
    let mut batch: Vec<String> = Vec::with_capacity(BATCH_EVENTS);
    let mut first_line = 1;
    let flush = |batch: &mut Vec<String>, first_line: usize, sent: &mut Sent| -> anyhow::Result<()> {
        let (imported, failed) = remote.import_batch(batch)?;
        sent.imported += imported;
        for failure in failed {
            sent.reject(format!("batch from line {first_line}: record {failure}"));
        }
        batch.clear();
        Ok(())
    };
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&line) {
            sent.reject(format!("line {}: not JSON ({error})", index + 1));
            continue;
        }
        if batch.is_empty() {
            first_line = index + 1;
        }
        batch.push(line);
        if batch.len() == BATCH_EVENTS {
            flush(&mut batch, first_line, sent)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, first_line, sent)?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// What `hearth export --url` asks for.
pub(crate) struct ExportQuery<'a> {
    pub(crate) from_date: &'a str,
    pub(crate) to_date: &'a str,
    pub(crate) events: &'a [String],
    pub(crate) filter: Option<&'a str>,
    pub(crate) time_in_ms: bool,
}

/// Streams the server's raw export into `out`; answers the lines written.
pub(crate) fn export(remote: &Remote, query: &ExportQuery<'_>, out: &mut dyn Write) -> anyhow::Result<u64> {
    let mut params = form_urlencoded::Serializer::new(String::new());
    params.append_pair("from_date", query.from_date).append_pair("to_date", query.to_date);
    if !query.events.is_empty() {
        params.append_pair("event", &serde_json::to_string(query.events)?);
    }
    if let Some(filter) = query.filter {
        params.append_pair("where", filter);
    }
    if query.time_in_ms {
        params.append_pair("time_in_ms", "true");
    }
    let url = format!("{}/api/2.0/export?{}", remote.base, params.finish());
    let mut response = remote.agent.get(&url).header("authorization", &remote.authorization).call().with_context(|| format!("asking {}", remote.base))?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let reason = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["error"].as_str().map(str::to_owned)).unwrap_or(text);
        bail!("the export answered {status}: {}", reason.trim());
    }
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut lines = 0u64;
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        out.write_all(&buffer[..n])?;
    }
    out.flush()?;
    Ok(lines)
}
