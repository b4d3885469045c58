//! The key store: the master key, each project's keys, and one key per
//! person (subject) for their personal fields.
//!
//! Why a store of its own, outside the data directory: erasure here is
//! crypto-shredding. A person's personal fields are sealed under their own
//! key; destroying that key makes every copy of the ciphertext unreadable at
//! once: in the live database, in parts, and in every backup of the data
//! directory, because no backup of the data directory holds the key. So the
//! key store lives in its own directory (default `./hearth-keys`, beside
//! `./hearth-data`), the server refuses a key directory or master key inside
//! the data directory, and the key store is backed up on its own, short
//! schedule.
//!
//! Hierarchy (envelope encryption):
//! - the master key (`master.key`, or `HEARTH_MASTER_KEY`) wraps each
//!   project's root key (stable: it derives the keyed-hash and pseudonym
//!   keys, which must not change or tokens would) and each project's data
//!   key (versioned, rotatable);
//! - the project data key wraps each subject key;
//! - a subject key seals that person's values (`privacy::crypto::seal`).
//!
//! Subjects are stored as keyed hashes, so the key store does not list who
//! the people are. Secrets are zeroised when dropped.

mod error;
mod master;
mod store;

pub use error::KeyError;
pub use master::{MasterKey, MasterSource};
pub use store::{KeyStore, ProjectKeys, RotationReport, SealedValue, SubjectSealer};
