//! What an organisation set for its alert rules, the countries each
//! credential has been used from, and small named settings.

use crate::db::Meta;
use crate::error::Error;
use sqldb::{params, OptionalExtension};

/// A stored rule setting; the rule and action are named, and checked by
/// the alerting code that reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    pub rule: String,
    pub enabled: bool,
    pub action: String,
    pub threshold: f64,
}

impl Meta {
    /// Every rule an organisation has changed from its default.
    pub fn alert_rules(&self) -> Result<Vec<StoredRule>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached("SELECT rule, enabled, action, threshold FROM alert_rules ORDER BY rule")?;
        let rows = statement.query_map([], |row| Ok(StoredRule { rule: row.get(0)?, enabled: row.get::<_, i64>(1)? != 0, action: row.get(2)?, threshold: row.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_alert_rule(&self, rule: &StoredRule) -> Result<(), Error> {
        self.connection().execute(
            "INSERT INTO alert_rules (rule, enabled, action, threshold, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (rule) DO UPDATE SET enabled = excluded.enabled, action = excluded.action, threshold = excluded.threshold, updated_ms = excluded.updated_ms",
            params![rule.rule, rule.enabled as i64, rule.action, rule.threshold, events::now_ms()],
        )?;
        self.bump_policy_generation();
        Ok(())
    }

    /// Notes that `credential` was used from `country`; true when that is
    /// new and the credential had been used from another country before.
    pub fn note_credential_country(&self, credential: &str, country: &str) -> Result<bool, Error> {
        let connection = self.connection();
        let inserted = connection.execute("INSERT INTO credential_countries (credential, country, first_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![credential, country, events::now_ms()])? > 0;
        if !inserted {
            return Ok(false);
        }
        let known: i64 = connection.query_row("SELECT COUNT(*) FROM credential_countries WHERE credential = ?1", [credential], |row| row.get(0))?;
        Ok(known > 1)
    }

    pub fn setting(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self.connection().query_row("SELECT value FROM settings WHERE name = ?1", [name], |row| row.get(0)).optional()?)
    }

    pub fn set_setting(&self, name: &str, value: Option<&str>) -> Result<(), Error> {
        let connection = self.connection();
        match value {
            Some(value) => connection.execute("INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", params![name, value])?,
            None => connection.execute("DELETE FROM settings WHERE name = ?1", [name])?,
        };
        self.bump_policy_generation();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_country_is_new_the_first_is_not() {
        crate::testing::on_each_backend(|meta| {
        assert!(!meta.note_credential_country("api_key:a#1", "DE").unwrap(), "the first country is the baseline");
        assert!(!meta.note_credential_country("api_key:a#1", "DE").unwrap());
        assert!(meta.note_credential_country("api_key:a#1", "BR").unwrap());
        assert!(!meta.note_credential_country("api_key:a#1", "BR").unwrap());
        assert!(!meta.note_credential_country("api_key:b#2", "BR").unwrap());
        });
    }

    #[test]
    fn rules_and_settings_are_stored() {
        crate::testing::on_each_backend(|meta| {
        let rule = StoredRule { rule: "export_volume".to_owned(), enabled: true, action: "revoke".to_owned(), threshold: 5.0 };
        meta.set_alert_rule(&rule).unwrap();
        meta.set_alert_rule(&StoredRule { threshold: 3.0, ..rule.clone() }).unwrap();
        assert_eq!(meta.alert_rules().unwrap(), vec![StoredRule { threshold: 3.0, ..rule }]);
        meta.set_setting("export_approval_rows", Some("100")).unwrap();
        assert_eq!(meta.setting("export_approval_rows").unwrap().as_deref(), Some("100"));
        meta.set_setting("export_approval_rows", None).unwrap();
        assert_eq!(meta.setting("export_approval_rows").unwrap(), None);
        });
    }
}
