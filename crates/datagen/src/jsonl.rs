//! Events as Mixpanel import lines: the shape `/import` accepts and raw
//! export produces, with `time` in integer milliseconds.
//!
//! Written by hand rather than through [`events::Event::to_export_json`] to
//! avoid building a second map per event, and with properties always in key
//! order so the bytes do not depend on whether serde_json's `preserve_order`
//! feature is enabled somewhere in the build.

use events::Event;
use serde::Serialize;
use std::io::{self, Write};

/// Writes `event` as one line:
/// `{"event":..,"properties":{"time":<ms>,"distinct_id":..,"$insert_id":..,<properties by key>}}`.
/// Many small writes: give it a buffered writer.
pub fn write_jsonl(event: &Event, out: &mut impl Write) -> io::Result<()> {
    debug_assert!(
        ["time", "distinct_id", "$insert_id"]
            .iter()
            .all(|key| !event.properties.contains_key(*key)),
        "reserved keys live outside the properties"
    );
    out.write_all(b"{\"event\":")?;
    write_json(out, &event.name)?;
    out.write_all(b",\"properties\":{\"time\":")?;
    write_json(out, &event.time_ms)?;
    out.write_all(b",\"distinct_id\":")?;
    write_json(out, &event.distinct_id)?;
    out.write_all(b",\"$insert_id\":")?;
    write_json(out, &event.insert_id)?;
    if event.properties.keys().is_sorted() {
        for (key, value) in &event.properties {
            write_property(out, key, value)?;
        }
    } else {
        let mut entries: Vec<_> = event.properties.iter().collect();
        entries.sort_unstable_by_key(|(key, _)| *key);
        for (key, value) in entries {
            write_property(out, key, value)?;
        }
    }
    out.write_all(b"}}\n")
}

fn write_property(out: &mut impl Write, key: &str, value: &serde_json::Value) -> io::Result<()> {
    out.write_all(b",")?;
    write_json(out, key)?;
    out.write_all(b":")?;
    write_json(out, value)
}

fn write_json(out: &mut impl Write, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
    serde_json::to_writer(out, value).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(event: &Event, expected: &str) {
        let mut line = Vec::new();
        write_jsonl(event, &mut line).unwrap();
        assert_eq!(String::from_utf8(line).unwrap(), expected);
    }

    #[test]
    fn writes_mixpanel_import_lines() {
        let properties =
            json!({"plan": "free", "$browser": "Chrome", "note": "a \"quoted\"\nline", "n": 1.5});
        let event = Event {
            name: "Sign Up".to_owned(),
            distinct_id: "u1".to_owned(),
            time_ms: 1_736_121_600_123,
            insert_id: "0123456789abcdef0123456789abcdef".to_owned(),
            properties: properties.as_object().unwrap().clone(),
        };
        check(
            &event,
            concat!(
                r#"{"event":"Sign Up","properties":{"time":1736121600123,"distinct_id":"u1","#,
                r#""$insert_id":"0123456789abcdef0123456789abcdef","$browser":"Chrome","n":1.5,"#,
                r#""note":"a \"quoted\"\nline","plan":"free"}}"#,
                "\n"
            ),
        );
    }
}
