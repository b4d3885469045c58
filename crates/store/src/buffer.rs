//! The in-memory buffer of acknowledged events not yet in a part.
//!
//! It is a list of immutable chunks, one per appended batch, so that a reader
//! can take a snapshot by cloning a few `Arc`s while the ingest thread keeps
//! appending. A buffer is sealed whole when it is flushed.
//!
//! Events are held as [`StoredEvent`]s: the properties stay the compact JSON
//! text that was written to the WAL, about a fifth of the memory of a parsed
//! map, and parsed again only when a part is written.

use events::{Event, ProjectId, Properties};
use serde_json::value::RawValue;
use std::sync::Arc;

/// One stored event with its project-local user key (see [`crate::users`]).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub(crate) user_key: u32,
    pub(crate) time_ms: i64,
    pub(crate) name: Box<str>,
    pub(crate) distinct_id: Box<str>,
    pub(crate) insert_id: Box<str>,
    /// A JSON object, compact.
    pub(crate) properties: Box<RawValue>,
}

pub(crate) type Row = StoredEvent;

impl StoredEvent {
    /// Serialises the properties once; the user key is set by the ingest thread.
    pub fn from_event(event: Event) -> StoredEvent {
        // Serialised straight into the raw value: text serde_json has just
        // written is not parsed again to be checked.
        let properties = serde_json::value::to_raw_value(&event.properties).unwrap_or_else(|_| empty_object());
        StoredEvent {
            user_key: 0,
            time_ms: event.time_ms,
            name: event.name.into_boxed_str(),
            distinct_id: event.distinct_id.into_boxed_str(),
            insert_id: event.insert_id.into_boxed_str(),
            properties,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The project-local dense key of the distinct id (see `users`).
    pub fn user_key(&self) -> u32 {
        self.user_key
    }

    pub fn distinct_id(&self) -> &str {
        &self.distinct_id
    }

    pub fn insert_id(&self) -> &str {
        &self.insert_id
    }

    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// The properties as a compact JSON object.
    pub fn properties_json(&self) -> &str {
        self.properties.get()
    }

    /// One property, parsing only as much of the stored text as it takes.
    pub fn property(&self, key: &str) -> Option<serde_json::Value> {
        let map: std::collections::BTreeMap<std::borrow::Cow<'_, str>, &RawValue> = serde_json::from_str(self.properties.get()).ok()?;
        map.get(key).and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    pub fn parse_properties(&self) -> Properties {
        serde_json::from_str(self.properties.get()).unwrap_or_default()
    }

    /// The properties of the event's raw-export line: its own, with `time`
    /// (seconds), `distinct_id` and `$insert_id`; what export filters see.
    pub fn export_properties(&self) -> Properties {
        let mut properties = self.parse_properties();
        properties.insert("time".to_owned(), serde_json::Value::from(self.time_ms.div_euclid(1000)));
        properties.insert("distinct_id".to_owned(), serde_json::Value::from(self.distinct_id()));
        properties.insert("$insert_id".to_owned(), serde_json::Value::from(self.insert_id()));
        properties
    }

    pub fn to_event(&self) -> Event {
        Event {
            name: self.name.to_string(),
            distinct_id: self.distinct_id.to_string(),
            time_ms: self.time_ms,
            insert_id: self.insert_id.to_string(),
            properties: self.parse_properties(),
        }
    }

    /// True when both are copies under Mixpanel's deduplication rule.
    pub(crate) fn same_dedup_key(&self, other: &StoredEvent) -> bool {
        self.user_key == other.user_key && self.time_ms == other.time_ms && self.insert_id == other.insert_id && self.name == other.name
    }

    /// Appends the Mixpanel raw-export line (without the newline), splicing
    /// the stored properties text instead of parsing it.
    pub fn write_export_json(&self, out: &mut Vec<u8>, time_in_ms: bool) {
        self.write_export_json_with(out, time_in_ms, self.properties.get());
    }

    /// [`Self::write_export_json`] with other properties (a JSON object):
    /// the export's personal fields removed or revealed.
    pub fn write_export_json_with(&self, out: &mut Vec<u8>, time_in_ms: bool, properties_json: &str) {
        let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
        out.extend_from_slice(b"{\"event\":");
        out.extend_from_slice(quoted(&self.name).as_bytes());
        out.extend_from_slice(b",\"properties\":{\"time\":");
        if time_in_ms {
            out.extend_from_slice(self.time_ms.to_string().as_bytes());
        } else if self.time_ms % 1000 == 0 {
            out.extend_from_slice((self.time_ms / 1000).to_string().as_bytes());
        } else {
            out.extend_from_slice(serde_json::Value::from(self.time_ms as f64 / 1000.0).to_string().as_bytes());
        }
        out.extend_from_slice(b",\"distinct_id\":");
        out.extend_from_slice(quoted(&self.distinct_id).as_bytes());
        out.extend_from_slice(b",\"$insert_id\":");
        out.extend_from_slice(quoted(&self.insert_id).as_bytes());
        let inner = properties_json.trim();
        let inner = inner.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')).unwrap_or("").trim();
        if !inner.is_empty() {
            out.push(b',');
            out.extend_from_slice(inner.as_bytes());
        }
        out.extend_from_slice(b"}}");
    }
}

pub(crate) fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is valid JSON"))
}

#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) project: ProjectId,
    pub(crate) rows: Vec<Row>,
    /// Unique in this process: lets readers cache what they derived from a chunk.
    pub(crate) seq: u64,
}

static NEXT_CHUNK_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Chunk {
    pub(crate) fn new(project: ProjectId, rows: Vec<Row>) -> Chunk {
        Chunk { project, rows, seq: NEXT_CHUNK_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Buffer {
    pub(crate) chunks: Vec<Arc<Chunk>>,
    pub(crate) n_rows: usize,
}

impl Buffer {
    pub(crate) fn push(&mut self, chunk: Chunk) {
        self.n_rows += chunk.rows.len();
        self.chunks.push(Arc::new(chunk));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.n_rows == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_export_line_matches_the_event_shape() {
        let mut properties = Properties::new();
        properties.insert("plan".into(), json!("pro"));
        properties.insert("n".into(), json!(3));
        let event = Event { name: "Sign \"Up\"".into(), distinct_id: "u1".into(), time_ms: 1_795_317_755_287, insert_id: "abc".into(), properties };
        let stored = StoredEvent::from_event(event.clone());
        for time_in_ms in [false, true] {
            let mut line = Vec::new();
            stored.write_export_json(&mut line, time_in_ms);
            let parsed: serde_json::Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(parsed, event.to_export_json(time_in_ms));
        }
        let empty = StoredEvent::from_event(Event { properties: Properties::new(), time_ms: 5000, ..event });
        let mut line = Vec::new();
        empty.write_export_json(&mut line, false);
        assert_eq!(String::from_utf8(line).unwrap(), r#"{"event":"Sign \"Up\"","properties":{"time":5,"distinct_id":"u1","$insert_id":"abc"}}"#);
    }
}
