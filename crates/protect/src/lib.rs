//! Privacy at the door: every path that writes events or profiles (the
//! server's ingestion, `hearth import`, `hearth gen`, a policy rewrite)
//! goes through a [`Protector`], which applies the project's current policy,
//! seals personal values under their subject's key into the vault, and
//! counts findings, before the caller writes anything.
//!
//! Order matters for durability and erasure: subject keys are created (key
//! store) before values are sealed under them, the vault is written
//! (metadata) before the events that hold the tokens are appended, so an
//! acknowledged event never points at a value that was lost.
//!
//! The other half lives here too: reading a person's values back
//! ([`Protector::reveal`]) and erasing a person ([`Protector::erase`]).

mod canary;
mod error;
pub mod gate;
mod jobs;
pub mod links;
mod protector;
mod retrieval;

pub use canary::Canaries;
pub use error::ProtectError;
pub use protector::{Erased, LoadedPolicy, ProtectBatch, Protector};
pub use retrieval::EventDays;
