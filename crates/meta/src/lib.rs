//! Metadata in SQLite: projects and their credentials, user and group
//! profiles, and identity links.
//!
//! Why SQLite: this is small, mutable, relational state that must be durable
//! at once (a profile update is acknowledged like an event). Every write is a
//! transaction in WAL journal mode with `synchronous=FULL`.
//!
//! Architecture invariants: secrets are stored only as SHA-256 hashes (they
//! carry at least 128 random bits, so a plain hash is enough: OWASP ASVS 5.0
//! 6.5.2); this crate knows nothing of HTTP; profile operations follow
//! Mixpanel's semantics ([`profiles`]).

mod accounts;
mod alert_settings;
mod api_keys;
mod canaries;
mod ceremonies;
mod cohorts;
mod containment;
mod dashboards;
mod db;
mod export_requests;
mod error;
mod identity;
mod privacy;
mod person_keys;
mod profiles;
mod projects;
mod recorder;
mod shared_limits;
#[cfg(test)]
mod testing;

pub use accounts::{Member, NewMember, Organisation, Role, Session};
pub use alert_settings::StoredRule;
pub use export_requests::{ExportRequest, NewExportRequest, APPROVAL_VALID_MS};
pub use canaries::Alert;
pub use api_keys::{is_well_formed_key, ApiKey, KeySpec, Scope, ServiceAccount, KEY_PREFIX};
pub use cohorts::SavedCohort;
pub use dashboards::Dashboard;
pub use db::Meta;
pub use sqldb::{Dialect, PostgresTarget};
pub use error::Error;
pub use identity::LinkSource;
pub use privacy::{Erasure, PolicyVersion, PrivacyCount, VaultEntry};
pub use projects::{GeoPrecisionSetting, NewProject, Project};
pub use recorder::LinkCache;
