//! Limits that every node counts together, where nodes share the metadata:
//! sign-in attempts per account and exports per credential (GCRA, as the
//! server's in-memory limiters), and failed sign-ins per account for the
//! failed-logins alert.
//!
//! Why: behind a load balancer each node's own limiter would grant its
//! budget again, so N nodes would let a password guesser or a bulk exporter
//! go N times as fast. These are low-volume paths, so one statement per
//! attempt is affordable. Keys are tokens and credential labels, never an
//! email or an address; limits per client address stay in each node's
//! memory, since an address must not be written down.

use crate::db::Meta;
use crate::error::Error;
use sqldb::params;

/// How long a key's state is kept after its last use.
const FORGET_AFTER_MS: i64 = 3_600_000;
/// Old rows of other keys are swept on about one call in this many.
const SWEEP_ONE_IN: i64 = 97;

impl Meta {
    /// Takes one unit of `key`'s quota (one every `interval_ms`, up to
    /// `burst` at once): `None` when granted, else the seconds to wait.
    pub fn take_shared_quota(&self, key: &str, interval_ms: i64, burst: u32, now_ms: i64) -> Result<Option<u64>, Error> {
        let tolerance = interval_ms * i64::from(burst.max(1));
        let connection = self.connection();
        // GCRA in one statement: the new theoretical arrival time is
        // max(tat, now) + interval, granted when it is within the tolerance.
        let granted = connection.execute(
            "INSERT INTO shared_limits (key, tat_ms) VALUES (?1, ?2 + ?3) \
             ON CONFLICT (key) DO UPDATE SET tat_ms = (CASE WHEN shared_limits.tat_ms > ?2 THEN shared_limits.tat_ms ELSE ?2 END) + ?3 \
             WHERE (CASE WHEN shared_limits.tat_ms > ?2 THEN shared_limits.tat_ms ELSE ?2 END) + ?3 - ?4 <= ?2",
            params![key, now_ms, interval_ms, tolerance],
        )?;
        if granted > 0 {
            if now_ms % SWEEP_ONE_IN == 0 {
                connection.execute("DELETE FROM shared_limits WHERE tat_ms < ?1", [now_ms - FORGET_AFTER_MS])?;
            }
            return Ok(None);
        }
        let tat: i64 = connection.query_row("SELECT tat_ms FROM shared_limits WHERE key = ?1", [key], |row| row.get(0))?;
        let wait_ms = tat.max(now_ms) + interval_ms - tolerance - now_ms;
        Ok(Some((wait_ms.max(0) as u64).div_ceil(1000).max(1)))
    }

    /// Records a failed sign-in under `key`; answers how many there were
    /// in the last `window_ms`, on every node.
    pub fn record_shared_failure(&self, key: &str, window_ms: i64, now_ms: i64) -> Result<usize, Error> {
        let connection = self.connection();
        connection.execute("DELETE FROM sign_in_failures WHERE key = ?1 AND at_ms <= ?2", params![key, now_ms - window_ms])?;
        connection.execute("INSERT INTO sign_in_failures (key, at_ms) VALUES (?1, ?2)", params![key, now_ms])?;
        let n: i64 = connection.query_row("SELECT COUNT(*) FROM sign_in_failures WHERE key = ?1", [key], |row| row.get(0))?;
        if now_ms % SWEEP_ONE_IN == 0 {
            connection.execute("DELETE FROM sign_in_failures WHERE at_ms < ?1", [now_ms - FORGET_AFTER_MS.max(window_ms)])?;
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_quota_is_counted_once_for_every_connection() {
        crate::testing::on_each_backend_reopening(|open| {
            let (first, second) = (open(), open());
            let now = 1_800_000_000_000;
            // 10 a minute, 3 at once: three are granted, from either handle.
            assert_eq!(first.take_shared_quota("login:a", 6_000, 3, now).unwrap(), None);
            assert_eq!(second.take_shared_quota("login:a", 6_000, 3, now).unwrap(), None);
            assert_eq!(first.take_shared_quota("login:a", 6_000, 3, now).unwrap(), None);
            assert_eq!(second.take_shared_quota("login:a", 6_000, 3, now).unwrap(), Some(6), "the fourth waits one interval");
            assert_eq!(first.take_shared_quota("login:b", 6_000, 3, now).unwrap(), None, "per key");
            assert_eq!(first.take_shared_quota("login:a", 6_000, 3, now + 6_000).unwrap(), None, "refilled after an interval");
            assert!(first.take_shared_quota("login:a", 6_000, 3, now + 6_000).unwrap().is_some());

            assert_eq!(first.record_shared_failure("account:x", 60_000, now).unwrap(), 1);
            assert_eq!(second.record_shared_failure("account:x", 60_000, now + 1).unwrap(), 2);
            assert_eq!(first.record_shared_failure("account:y", 60_000, now + 2).unwrap(), 1);
            assert_eq!(second.record_shared_failure("account:x", 60_000, now + 60_000).unwrap(), 2, "the first left the window");
        });
    }
}
