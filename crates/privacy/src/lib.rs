//! Privacy policies applied at ingest, before anything is written. Pure: no
//! IO, no HTTP, no key storage.
//!
//! - [`policy`]: the per-project policy document and its checked form;
//! - [`apply`]: applying it to events and profile updates (the one place raw
//!   personal values become tokens, ciphertexts, coarse values or nothing);
//! - [`pii`]: the detector of personal data in free-form values;
//! - [`crypto`]: keys, AEAD sealing and the keyed hashes behind tokens and
//!   pseudonyms.
//!
//! The IP address is handled by the server (used for geolocation, never
//! stored) and the raw user agent by `enrich` (parsed, never stored). Keys
//! live in the `keys` crate; `protect` joins the two at every writing path.

pub mod apply;
pub mod crypto;
pub mod pii;
pub mod policy;
