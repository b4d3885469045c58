//! The policy cache, per-batch protection, reveal and erasure.

use crate::ProtectError;
use events::{Event, GroupUpdate, ProfileUpdate, ProjectId, Properties};
use keys::{KeyStore, ProjectKeys, SubjectSealer};
use meta::Meta;
use privacy::apply::{self, Protection, Tally, Verdict};
use privacy::crypto;
use privacy::policy::{GeoLevel, Policy, PolicyDocument};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A project's policy as applied, with the version that made it.
#[derive(Debug)]
pub struct LoadedPolicy {
    /// 0 for the built-in default (no version stored yet).
    pub version: i64,
    pub policy: Policy,
}

#[derive(Debug)]
pub struct Protector {
    meta: Arc<Meta>,
    keys: Arc<KeyStore>,
    policies: Mutex<HashMap<ProjectId, (u64, Arc<LoadedPolicy>)>>,
    /// Set once events go to an external database ([`Protector::sink_gate`]):
    /// erasures then leave tombstones.
    keeps_tombstones: AtomicBool,
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub erasure: meta::Erasure,
    /// Every distinct id of the identity cluster.
    pub distinct_ids: Vec<String>,
    pub keys_destroyed: usize,
}

impl Protector {
    pub fn new(meta: Arc<Meta>, keys: Arc<KeyStore>) -> Protector {
        Protector { meta, keys, policies: Mutex::new(HashMap::new()), keeps_tombstones: AtomicBool::new(false) }
    }

    /// The gate that rows bound for an external event database pass (see
    /// [`crate::gate`]); from now on, erasures leave tombstones for it.
    pub fn sink_gate(self: &Arc<Self>) -> Arc<dyn store::SinkGate> {
        self.keep_erasure_tombstones();
        Arc::new(crate::gate::ErasureGate::new(self.clone()))
    }

    /// Erasures from now on leave tombstones for the gates of every node
    /// that shares the event database.
    pub fn keep_erasure_tombstones(&self) {
        self.keeps_tombstones.store(true, Ordering::Release);
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// The project's current policy (the default when none was set).
    pub fn policy(&self, project: ProjectId) -> Result<Arc<LoadedPolicy>, ProtectError> {
        let generation = self.meta.policy_generation();
        if let Some((seen, loaded)) = self.policies.lock().unwrap_or_else(|p| p.into_inner()).get(&project) {
            if *seen == generation {
                return Ok(loaded.clone());
            }
        }
        let loaded = Arc::new(match self.meta.privacy_policy(project)? {
            Some(stored) => {
                let value: Value = serde_json::from_str(&stored.document).map_err(|e| ProtectError::StoredPolicy { version: stored.version, message: e.to_string() })?;
                let document = PolicyDocument::from_json(value).map_err(|e| ProtectError::StoredPolicy { version: stored.version, message: e.to_string() })?;
                LoadedPolicy { version: stored.version, policy: Policy::check(document)? }
            }
            None => LoadedPolicy { version: 0, policy: Policy::default() },
        });
        self.policies.lock().unwrap_or_else(|p| p.into_inner()).insert(project, (generation, loaded.clone()));
        Ok(loaded)
    }

    /// Checks and stores a new policy version; it applies from now on.
    pub fn set_policy(&self, project: ProjectId, document: PolicyDocument) -> Result<i64, ProtectError> {
        let policy = Policy::check(document)?;
        let json = serde_json::to_string(policy.document()).expect("a policy serialises");
        let version = self.meta.put_privacy_policy(project, &json)?;
        let geo = match policy.geo {
            GeoLevel::Region => meta::GeoPrecisionSetting::Region,
            GeoLevel::City => meta::GeoPrecisionSetting::City,
            GeoLevel::Country | GeoLevel::None => meta::GeoPrecisionSetting::Country,
        };
        self.meta.set_geo_precision(project, geo)?;
        Ok(version)
    }

    /// Protection for one batch of one project.
    pub fn batch(&self, project: ProjectId) -> Result<ProtectBatch, ProtectError> {
        let policy = self.policy(project)?;
        let sealer = self.keys.sealer(project)?;
        let project_keys = sealer.project_keys();
        Ok(ProtectBatch { meta: self.meta.clone(), keys: self.keys.clone(), project, policy, sealer, project_keys, tally: Tally::default() })
    }

    pub fn meta(&self) -> &Arc<Meta> {
        &self.meta
    }

    /// The pseudonym a distinct id is stored under in this project, when its
    /// policy pseudonymises ids; the id itself otherwise.
    pub fn stored_id(&self, project: ProjectId, distinct_id: &str) -> Result<String, ProtectError> {
        if self.policy(project)?.policy.pseudonymise_ids {
            let keys = self.keys.project_keys(project)?;
            return Ok(apply::pseudonymise(&keys.pseudonym_key, distinct_id));
        }
        Ok(distinct_id.to_owned())
    }

    /// The keyed-hash token of a value (to search profiles by email, say).
    pub fn token_of(&self, project: ProjectId, value: &str) -> Result<String, ProtectError> {
        Ok(crypto::value_token(&self.keys.project_keys(project)?.hash_key, value))
    }

    /// Replaces every token in `properties` by the value it stands for, as
    /// far as `subject`'s key still exists; returns how many were revealed.
    /// Callers audit the reveal.
    pub fn reveal(&self, project: ProjectId, subject: &str, properties: &mut Properties) -> Result<usize, ProtectError> {
        let entries = self.meta.personal_values(project, subject, None)?;
        if entries.is_empty() {
            return Ok(0);
        }
        let mut plain: HashMap<&str, Value> = HashMap::with_capacity(entries.len());
        for entry in &entries {
            if let Some(text) = self.keys.open_value(project, subject, &entry.token, &entry.ciphertext)? {
                plain.insert(entry.token.as_str(), serde_json::from_str(&text).unwrap_or(Value::Null));
            }
        }
        let mut n_revealed = 0;
        for value in properties.values_mut() {
            reveal_value(value, &plain, &mut n_revealed);
        }
        Ok(n_revealed)
    }

    /// Erases people: the identity cluster of each id is resolved, their
    /// subject keys destroyed (their sealed values, in every copy, become
    /// unreadable at once), their profiles and vault entries deleted, and
    /// their ids recorded so that reports and exports skip their events
    /// until compaction removes them.
    pub fn erase(&self, project: ProjectId, task_id: &str, distinct_ids: &[String]) -> Result<Erased, ProtectError> {
        let mut cluster: Vec<String> = Vec::new();
        for id in distinct_ids {
            let stored = self.stored_id(project, id)?;
            cluster.extend(self.meta.identity_cluster(project, &stored)?);
        }
        cluster.sort();
        cluster.dedup();
        let keys_destroyed = self.keys.destroy_subjects(project, &cluster)?;
        let tombstones: Vec<String> = if self.keeps_tombstones.load(Ordering::Acquire) {
            let keys = self.keys.project_keys(project)?;
            cluster.iter().map(|id| crate::gate::tombstone(&keys.tombstone_key, id)).collect()
        } else {
            Vec::new()
        };
        let erasure = self.meta.record_erasure(project, task_id, &cluster, &tombstones)?;
        metrics::counter!("hearth_erasures_total").increment(1);
        Ok(Erased { erasure, distinct_ids: cluster, keys_destroyed })
    }
}

fn reveal_value(value: &mut Value, plain: &HashMap<&str, Value>, n_revealed: &mut usize) {
    match value {
        Value::String(text) if crypto::is_value_token(text) => {
            if let Some(original) = plain.get(text.as_str()) {
                *value = original.clone();
                *n_revealed += 1;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| reveal_value(item, plain, n_revealed)),
        Value::Object(map) => map.values_mut().for_each(|item| reveal_value(item, plain, n_revealed)),
        _ => {}
    }
}

/// Applies one project's policy to a batch, then commits what it sealed
/// and counted.
pub struct ProtectBatch {
    meta: Arc<Meta>,
    keys: Arc<KeyStore>,
    project: ProjectId,
    policy: Arc<LoadedPolicy>,
    sealer: SubjectSealer,
    project_keys: Arc<ProjectKeys>,
    tally: Tally,
}

impl ProtectBatch {
    /// The same batch, leaving ids as they are even when the policy
    /// pseudonymises them (for rewriting stored events, whose ids cannot
    /// change).
    pub fn keeping_ids(mut self) -> ProtectBatch {
        if self.policy.policy.pseudonymise_ids {
            let mut policy = self.policy.policy.clone();
            policy.pseudonymise_ids = false;
            self.policy = Arc::new(LoadedPolicy { version: self.policy.version, policy });
        }
        self
    }

    pub fn policy(&self) -> &LoadedPolicy {
        &self.policy
    }

    pub fn geo(&self) -> GeoLevel {
        self.policy.policy.geo
    }

    /// Applies the policy; a dropped event must not be written.
    pub fn event(&mut self, event: &mut Event) -> Result<Verdict, ProtectError> {
        let mut protection = Protection { hash_key: &self.project_keys.hash_key, pseudonym_key: &self.project_keys.pseudonym_key, sealer: &mut self.sealer };
        Ok(apply::apply_to_event(&self.policy.policy, event, &mut protection, &mut self.tally)?)
    }

    pub fn profile(&mut self, update: &mut ProfileUpdate) -> Result<(), ProtectError> {
        let mut protection = Protection { hash_key: &self.project_keys.hash_key, pseudonym_key: &self.project_keys.pseudonym_key, sealer: &mut self.sealer };
        Ok(apply::apply_to_profile(&self.policy.policy, update, &mut protection, &mut self.tally)?)
    }

    pub fn group(&mut self, update: &mut GroupUpdate) -> Result<(), ProtectError> {
        let mut protection = Protection { hash_key: &self.project_keys.hash_key, pseudonym_key: &self.project_keys.pseudonym_key, sealer: &mut self.sealer };
        Ok(apply::apply_to_group(&self.policy.policy, update, &mut protection, &mut self.tally)?)
    }

    /// Seals the collected values under their subjects' keys, writes them to
    /// the vault and adds the counts; durable when it returns. Call before
    /// writing the batch.
    pub fn commit(self) -> Result<(), ProtectError> {
        let ProtectBatch { meta, keys, project, sealer, tally, .. } = self;
        let sealed = sealer.finish()?;
        if !sealed.is_empty() {
            let entries: Vec<meta::VaultEntry> = sealed.iter().map(|v| meta::VaultEntry { subject: v.subject.clone(), token: v.token.clone(), ciphertext: v.ciphertext.clone() }).collect();
            meta.put_personal_values(project, &entries)?;
            keys.remember_sealed(project, &sealed);
            metrics::counter!("hearth_personal_values_sealed_total").increment(sealed.len() as u64);
        }
        if !tally.is_empty() {
            let counts: Vec<(String, String, String, u64)> = tally.counts.into_iter().map(|((event, property, observation), n)| {
                metrics::counter!("hearth_privacy_observations_total", "kind" => observation.as_str()).increment(n);
                (event, property, observation.as_str().to_owned(), n)
            }).collect();
            meta.add_privacy_counts(project, &counts)?;
        }
        Ok(())
    }
}
