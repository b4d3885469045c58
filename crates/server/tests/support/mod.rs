//! What every HTTP-level test builds: a server's services on real files in
//! temporary directories (data, and the key store beside it).

#![allow(dead_code)]

use std::sync::Arc;

pub(crate) struct Instance {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) keys_dir: tempfile::TempDir,
    pub(crate) store: Arc<store::Store>,
    pub(crate) meta: Arc<meta::Meta>,
    pub(crate) access: Arc<access::Access>,
}

/// The services, and the instance that keeps their files alive.
pub(crate) fn services() -> (Instance, server::Services) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store::Store::open(dir.path(), store::StoreConfig::default()).unwrap());
    let meta = Arc::new(meta::Meta::open(dir.path()).unwrap());
    let keys_dir = tempfile::tempdir().unwrap();
    let key_store = keys::KeyStore::open(keys_dir.path(), dir.path(), &keys::MasterSource::File { path: keys_dir.path().join("master.key"), create: true }).unwrap();
    let protector = Arc::new(protect::Protector::new(meta.clone(), Arc::new(key_store)));
    let access = Arc::new(access::Access::new(meta.clone(), protector.keys().clone(), access::AccessConfig::new("http://localhost:8080").unwrap()).unwrap());
    let audit = Arc::new(audit::AuditLog::open(dir.path(), None).unwrap());
    let services = server::Services { store: store.clone(), meta: meta.clone(), protector, audit, access: access.clone(), enricher: Arc::new(enrich::Enricher::default()), reports: None };
    (Instance { dir, keys_dir, store, meta, access }, services)
}
