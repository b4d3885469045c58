//! Shipping every audit entry to syslog (RFC 5424), so that a copy leaves
//! the machine (or at least the data directory) the moment it is written.
//!
//! Why syslog and not only the JSONL sink: operators already collect syslog
//! into their SIEM; a datagram per entry needs no agent. The message is the
//! entry's JSON (sequence number, hashes and all), so the copy can be
//! checked against the chain. Large user bitmaps are left out of the
//! datagram (the count stays) to keep it under the transports' limits.

use crate::entry::Entry;
use crate::AuditError;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// `authpriv` (10) × 8 + `notice` (5): security messages readable only by
/// privileged users on most hosts.
const PRIORITY: u8 = 85;
/// Above this, the user bitmap is replaced by its count. RFC 5426 asks
/// receivers to take 2,048 bytes; common relays take 8 KiB and more.
const MAX_MESSAGE: usize = 8 * 1024;

/// Where entries are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local datagram socket, normally `/dev/log`.
    Unix(PathBuf),
    /// A remote collector, `host:port`.
    Udp(String),
}

impl SyslogTarget {
    /// `unix:/dev/log` or `udp:collector.example:514`.
    pub fn parse(text: &str) -> Result<SyslogTarget, String> {
        match text.split_once(':') {
            Some(("unix", path)) if !path.is_empty() => Ok(SyslogTarget::Unix(PathBuf::from(path))),
            Some(("udp", address)) if address.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()) => Ok(SyslogTarget::Udp(address.to_owned())),
            _ => Err(format!("syslog target {text:?} is neither unix:PATH nor udp:HOST:PORT")),
        }
    }

    fn describe(&self) -> PathBuf {
        match self {
            SyslogTarget::Unix(path) => path.clone(),
            SyslogTarget::Udp(address) => PathBuf::from(format!("udp:{address}")),
        }
    }
}

/// The RFC 5424 message for an entry.
pub(crate) fn message(entry: &Entry) -> String {
    let mut json = serde_json::to_value(entry).expect("an entry serialises");
    let mut text = json.to_string();
    if text.len() > MAX_MESSAGE {
        if let Some(object) = json.as_object_mut()
            && let Some(users) = object.remove("users")
        {
            object.insert("users_omitted".to_owned(), users.get("count").cloned().unwrap_or_default());
        }
        text = json.to_string();
    }
    let timestamp = chrono::DateTime::from_timestamp_millis(entry.time_ms).map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    format!("<{PRIORITY}>1 {timestamp} - hearth {} audit - {text}", std::process::id())
}

/// Sends an entry; an error means it did not leave.
pub(crate) fn send(target: &SyslogTarget, entry: &Entry) -> Result<(), AuditError> {
    let line = message(entry);
    let io = |source| AuditError::Io { path: target.describe(), source };
    match target {
        SyslogTarget::Unix(path) => UnixDatagram::unbound().and_then(|socket| socket.send_to(line.as_bytes(), path)).map_err(io)?,
        SyslogTarget::Udp(address) => UdpSocket::bind(("0.0.0.0", 0)).and_then(|socket| socket.send_to(line.as_bytes(), address.as_str())).map_err(io)?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Actor, NewEntry, Outcome, UserSet};

    fn entry(users: Option<UserSet>) -> Entry {
        let mut body = NewEntry::new(Actor::new("api_key", "hk_live_…abcd#1"), "export", Outcome::Ok).project(1);
        body.users = users;
        Entry { seq: 7, time_ms: 1_764_000_000_123, body, prev_hash: "a".repeat(64), hash: "b".repeat(64) }
    }

    #[test]
    fn targets_parse_or_say_why() {
        assert_eq!(SyslogTarget::parse("unix:/dev/log"), Ok(SyslogTarget::Unix(PathBuf::from("/dev/log"))));
        assert_eq!(SyslogTarget::parse("udp:127.0.0.1:514"), Ok(SyslogTarget::Udp("127.0.0.1:514".to_owned())));
        for bad in ["", "/dev/log", "unix:", "udp:host", "udp::514", "tcp:host:514", "udp:host:99999"] {
            assert!(SyslogTarget::parse(bad).unwrap_err().contains("unix:PATH"), "{bad}");
        }
    }

    #[test]
    fn a_message_is_rfc5424_with_the_entry_as_json() {
        let line = message(&entry(None));
        assert!(line.starts_with("<85>1 2025-11-24T16:00:00.123Z - hearth "), "{line}");
        let json: serde_json::Value = serde_json::from_str(line.split_once(" audit - ").unwrap().1).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["hash"], "b".repeat(64));
        assert_eq!(json["action"], "export");
    }

    #[test]
    fn a_large_bitmap_leaves_only_its_count() {
        let small = message(&entry(Some(UserSet::from_keys([1, 5, 9]))));
        assert!(small.contains("\"bitmap\""));
        let scattered: Vec<u32> = (0..20_000).map(|i| i * 7919).collect();
        let large = message(&entry(Some(UserSet::from_keys(scattered))));
        assert!(large.len() < MAX_MESSAGE, "{}", large.len());
        assert!(!large.contains("\"bitmap\""));
        assert!(large.contains("\"users_omitted\":20000"), "{large}");
    }

    #[test]
    fn entries_reach_a_unix_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(&SyslogTarget::Unix(path.clone()), &entry(None)).unwrap();
        let mut buffer = vec![0u8; 65_536];
        let n = receiver.recv(&mut buffer).unwrap();
        let text = String::from_utf8_lossy(&buffer[..n]);
        assert!(text.contains("\"seq\":7"), "{text}");
        drop(receiver);
        std::fs::remove_file(&path).unwrap();
        let error = send(&SyslogTarget::Unix(path), &entry(None)).unwrap_err();
        assert!(error.to_string().contains("audit io error"), "{error}");
    }
}
