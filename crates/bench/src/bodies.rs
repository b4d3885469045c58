//! Request bodies built before the clock starts, so that the load process
//! spends its CPU on sending, not on generating.

use base64::Engine;
use bytes::Bytes;
use datagen::{GenConfig, Generator};

pub(crate) struct Body {
    pub(crate) bytes: Bytes,
    pub(crate) n_events: u64,
}

/// `/import` bodies: JSON arrays of `batch` events in Mixpanel's import format.
pub(crate) fn import_bodies(config: &GenConfig, batch: usize) -> Vec<Body> {
    let mut bodies = Vec::new();
    let mut current = Vec::with_capacity(batch * 600);
    let mut n_in_current = 0u64;
    let mut line = Vec::with_capacity(1024);
    Generator::new(config.clone()).for_each_event_ref(|event| {
        line.clear();
        datagen::write_jsonl(event, &mut line).unwrap_or_default();
        current.push(if n_in_current == 0 { b'[' } else { b',' });
        current.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(&line));
        n_in_current += 1;
        if n_in_current as usize == batch {
            current.push(b']');
            bodies.push(Body { bytes: Bytes::from(std::mem::replace(&mut current, Vec::with_capacity(batch * 600))), n_events: n_in_current });
            n_in_current = 0;
        }
    });
    if n_in_current > 0 {
        current.push(b']');
        bodies.push(Body { bytes: Bytes::from(current), n_events: n_in_current });
    }
    bodies
}

/// `/track` bodies as mixpanel-browser sends them: a form whose `data` is
/// the base64 of a JSON array of `batch` events carrying the token.
pub(crate) fn track_bodies(config: &GenConfig, batch: usize, token: &str) -> Vec<Body> {
    let mut bodies = Vec::new();
    let mut events: Vec<serde_json::Value> = Vec::with_capacity(batch);
    let flush = |events: &mut Vec<serde_json::Value>, bodies: &mut Vec<Body>| {
        let json = serde_json::to_vec(events).unwrap_or_default();
        let data = base64::engine::general_purpose::STANDARD.encode(json);
        let form = form_urlencoded::Serializer::new(String::new()).append_pair("data", &data).finish();
        bodies.push(Body { bytes: Bytes::from(form), n_events: events.len() as u64 });
        events.clear();
    };
    Generator::new(config.clone()).for_each_event_ref(|event| {
        let mut value = event.to_export_json(true);
        value["properties"]["token"] = serde_json::Value::from(token);
        events.push(value);
        if events.len() == batch {
            flush(&mut events, &mut bodies);
        }
    });
    if !events.is_empty() {
        flush(&mut events, &mut bodies);
    }
    bodies
}
