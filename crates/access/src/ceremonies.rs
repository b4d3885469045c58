//! WebAuthn ceremonies between their start and finish: kept in memory for
//! five minutes under a random id (never persisted: a restart only means
//! starting the ceremony again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration};

const CEREMONY_TTL: Duration = Duration::from_secs(300);
const CEREMONIES_MAX: usize = 10_000;

pub(crate) enum Ceremony {
    /// Registering a passkey through an enrolment link.
    Enrol { member: i64, token: String, state: PasskeyRegistration },
    /// Signing in.
    Login { member: i64, state: PasskeyAuthentication },
    /// A fresh assertion by a signed-in member.
    StepUp { member: i64, session: String, state: PasskeyAuthentication },
}

#[derive(Default)]
pub(crate) struct Ceremonies {
    pending: Mutex<HashMap<String, (Instant, Ceremony)>>,
}

impl Ceremonies {
    pub(crate) fn start(&self, ceremony: Ceremony) -> String {
        let id = hex::encode(rand::random::<[u8; 16]>());
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
        id
    }

    /// Takes a ceremony (each is finished at most once).
    pub(crate) fn take(&self, id: &str) -> Option<Ceremony> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(id).filter(|(at, _)| at.elapsed() < CEREMONY_TTL).map(|(_, ceremony)| ceremony)
    }
}
