//! WebAuthn ceremonies between their start and finish, for five minutes
//! under a random id. A single node keeps them in memory (never persisted:
//! a restart only means starting the ceremony again). Nodes that share their
//! metadata in PostgreSQL keep them there instead, since the finish may reach
//! another node than the start; the id is stored only as its hash.

use crate::AccessError;
use meta::Meta;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration};

const CEREMONY_TTL: Duration = Duration::from_secs(300);
const CEREMONIES_MAX: usize = 10_000;

#[derive(Serialize, Deserialize)]
pub(crate) enum Ceremony {
    /// Registering a passkey through an enrolment link.
    Enrol { member: i64, token: String, state: PasskeyRegistration },
    /// Signing in.
    Login { member: i64, state: PasskeyAuthentication },
    /// A fresh assertion by a signed-in member.
    StepUp { member: i64, session: String, state: PasskeyAuthentication },
}

pub(crate) struct Ceremonies {
    pending: Mutex<HashMap<String, (Instant, Ceremony)>>,
    /// Set where the metadata is shared between nodes.
    shared: Option<Arc<Meta>>,
}

impl Ceremonies {
    pub(crate) fn new(meta: &Arc<Meta>) -> Ceremonies {
        let shared = meta.is_shared().then(|| meta.clone());
        Ceremonies { pending: Mutex::new(HashMap::new()), shared }
    }

    pub(crate) fn start(&self, ceremony: Ceremony) -> Result<String, AccessError> {
        let id = hex::encode(rand::random::<[u8; 16]>());
        if let Some(meta) = &self.shared {
            let state = serde_json::to_string(&ceremony).map_err(|e| AccessError::Invalid(e.to_string()))?;
            let now_ms = events::now_ms();
            meta.store_ceremony(&id, &state, now_ms, now_ms - CEREMONY_TTL.as_millis() as i64)?;
            return Ok(id);
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, (at, _)| at.elapsed() < CEREMONY_TTL);
        if pending.len() >= CEREMONIES_MAX {
            // Under a flood of starts, the oldest half goes.
            let mut ages: Vec<(String, Instant)> = pending.iter().map(|(k, (at, _))| (k.clone(), *at)).collect();
            ages.sort_by_key(|(_, at)| *at);
            for (key, _) in ages.into_iter().take(CEREMONIES_MAX / 2) {
                pending.remove(&key);
            }
        }
        pending.insert(id.clone(), (Instant::now(), ceremony));
        Ok(id)
    }

    /// Takes a ceremony (each is finished at most once).
    pub(crate) fn take(&self, id: &str) -> Result<Option<Ceremony>, AccessError> {
        if let Some(meta) = &self.shared {
            let expired_before_ms = events::now_ms() - CEREMONY_TTL.as_millis() as i64;
            return Ok(meta.take_ceremony(id, expired_before_ms)?.and_then(|state| serde_json::from_str(&state).ok()));
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        Ok(pending.remove(id).filter(|(at, _)| at.elapsed() < CEREMONY_TTL).map(|(_, ceremony)| ceremony))
    }
}
