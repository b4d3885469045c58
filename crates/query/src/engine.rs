//! The engine over the embedded store: keeps, per project, the decoded day
//! blocks and the tables built from them, and rebuilds a table only when the
//! store's parts or buffer, or the identity links, changed.
//!
//! A day held by exactly one part (the settled state) is read column by
//! column from Parquet; a day still spread over several parts or the
//! in-memory buffer is read through the store's deduplicating row path.

use crate::context::Profiles;
use crate::blocks::{BufferedDayBlock, PartBlock, SplitDayBlock};
use crate::error::QueryError;
use crate::result::ReportResult;
use crate::run::{needs_table, run, unit_kind, Inputs};
use crate::spec::{CohortRule, Spec};
use crate::table::{Block, Identities, KeyNames, Table, UnitKind};
use events::ProjectId;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use store::part::CoreColumns;
use store::{DaySource, Snapshot, Store};

type BlockKey = (i32, Vec<u64>, Vec<u64>);

fn key_of(source: &DaySource) -> BlockKey {
    (source.day, source.parts.iter().map(|(id, _)| *id).collect(), source.chunks.clone())
}

pub struct Engine {
    store: Arc<Store>,
    meta: Arc<meta::Meta>,
    projects: Mutex<HashMap<ProjectId, Arc<Mutex<ProjectCache>>>>,
}

#[derive(Default)]
struct ProjectCache {
    blocks: HashMap<BlockKey, Arc<dyn Block>>,
    key_names: KeyNames,
    tables: HashMap<UnitKind, (Vec<BlockKey>, u64, Arc<Table>)>,
    identities: Option<(u64, Arc<Identities>)>,
    #[allow(clippy::type_complexity)]
    profiles: Option<(u64, Arc<Profiles>, Arc<HashMap<i64, CohortRule>>)>,
}

/// What a report read, and whose rows it returned (people-level reports:
/// profiles, cohort members, activity; aggregates return nobody's rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadFacts {
    /// Events in the table the report passed over.
    pub events_read: u64,
    /// People (or groups) in that table.
    pub people_read: u64,
    pub returned_people: u64,
    /// Store user keys of the people returned.
    pub returned_user_keys: Vec<u32>,
}

/// What the reports read from the metadata database.
struct MetaState {
    identities: Arc<Identities>,
    profiles: Arc<Profiles>,
    cohorts: Arc<HashMap<i64, CohortRule>>,
    identity_generation: u64,
    erasure_generation: u64,
}

/// Whether a report reads profiles or cohorts (which may test profiles):
/// profile filters and breakdowns, cohort filters and breakdowns, the
/// profile and activity reports.
fn reads_profiles(spec: &Spec) -> bool {
    if matches!(spec, Spec::Profiles(_) | Spec::Activity(_) | Spec::CohortMembers(_)) {
        return true;
    }
    let text = serde_json::to_string(spec).unwrap_or_default();
    text.contains("\"source\":\"profile\"") || text.contains("\"cohort\"") || text.contains("\"not_cohort\"")
}

impl Engine {
    pub fn new(store: Arc<Store>, meta: Arc<meta::Meta>) -> Engine {
        Engine { store, meta, projects: Mutex::new(HashMap::new()) }
    }

    /// Computes a report; blocking (reads files, uses every core).
    pub fn run(&self, project: &meta::Project, spec: &Spec) -> Result<ReportResult, QueryError> {
        let cache = self.projects.lock().unwrap_or_else(|p| p.into_inner()).entry(project.id).or_default().clone();
        let (table, state) = {
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            let state = self.meta_state(&mut cache, project.id, spec)?;
            let table = if needs_table(spec) { Some(self.table(&mut cache, project.id, &unit_kind(spec), &state)?) } else { None };
            (table, state)
        };
        let inputs = Inputs {
            identities: &state.identities,
            profiles: &state.profiles,
            cohorts: &state.cohorts,
            timezone: &project.timezone,
            now_ms: events::now_ms(),
        };
        run(table, &inputs, spec)
    }

    /// The project's event names, most frequent first (pickers in the
    /// dashboard); from the same in-memory table the reports read.
    pub fn event_names(&self, project: &meta::Project) -> Result<Vec<String>, QueryError> {
        let cache = self.projects.lock().unwrap_or_else(|p| p.into_inner()).entry(project.id).or_default().clone();
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        // Any report that reads no profiles: the names need only the table.
        let spec = Spec::Insights(crate::spec::InsightsSpec {
            from: String::new(),
            to: String::new(),
            interval: Default::default(),
            events: Vec::new(),
            breakdown: None,
            limit: None,
            other: false,
            filters: Vec::new(),
            formulas: Vec::new(),
            compare: None,
            unit: crate::spec::Unit::Users,
        });
        let state = self.meta_state(&mut cache, project.id, &spec)?;
        let table = self.table(&mut cache, project.id, &UnitKind::People, &state)?;
        let mut counts = vec![0u64; table.event_names.len()];
        for code in table.events.iter() {
            if let Some(slot) = counts.get_mut(*code as usize) {
                *slot += 1;
            }
        }
        let mut named: Vec<(u64, String)> = table.event_names.iter().zip(counts).filter(|(name, n)| *n > 0 && !name.is_empty()).map(|(name, n)| (n, name.to_string())).collect();
        named.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(named.into_iter().map(|(_, name)| name).collect())
    }

    /// Identity links (every report needs them) and, only for reports that
    /// read them, profiles and cohorts: loading half a million profiles is
    /// not a cost an insights count should pay after every `/engage`.
    fn meta_state(&self, cache: &mut ProjectCache, project: ProjectId, spec: &Spec) -> Result<Arc<MetaState>, QueryError> {
        // Erasures change who is counted as much as identity links do.
        let erasure_generation = self.meta.erasure_generation();
        let identity_generation = self.meta.identity_generation().wrapping_mul(1_000_003).wrapping_add(erasure_generation);
        let identities = match &cache.identities {
            Some((seen, identities)) if *seen == identity_generation => identities.clone(),
            _ => {
                // Erased people and canary profiles count in no report.
                let mut hidden = self.meta.erased_ids(project)?;
                hidden.extend(self.meta.canaries(project)?);
                let identities = Arc::new(Identities::new(self.meta.identity_links(project)?).with_erased(hidden));
                cache.identities = Some((identity_generation, identities.clone()));
                identities
            }
        };
        let (profiles, cohorts) = if reads_profiles(spec) {
            let profile_generation = self.meta.profile_generation();
            match &cache.profiles {
                Some((seen, profiles, cohorts)) if *seen == profile_generation => (profiles.clone(), cohorts.clone()),
                _ => {
                    let (profiles, cohorts) = self.load_profiles(project)?;
                    cache.profiles = Some((profile_generation, profiles.clone(), cohorts.clone()));
                    (profiles, cohorts)
                }
            }
        } else {
            (Arc::new(Profiles::default()), Arc::new(HashMap::new()))
        };
        Ok(Arc::new(MetaState { identities, profiles, cohorts, identity_generation, erasure_generation }))
    }

    #[allow(clippy::type_complexity)]
    fn load_profiles(&self, project: ProjectId) -> Result<(Arc<Profiles>, Arc<HashMap<i64, CohortRule>>), QueryError> {
        let canaries: std::collections::HashSet<String> = self.meta.canaries(project)?.into_iter().collect();
        let people = self.meta.profiles(project, &[], usize::MAX)?.into_iter().filter(|(id, _)| !canaries.contains(id)).collect();
        let mut groups = HashMap::new();
        for key in self.meta.group_keys(project)? {
            let list = self.meta.group_profiles(project, &key, &[], usize::MAX)?;
            groups.insert(key, list);
        }
        let mut cohorts = HashMap::new();
        for saved in self.meta.cohorts(project)? {
            match serde_json::from_str::<CohortRule>(&saved.definition) {
                Ok(rule) => {
                    cohorts.insert(saved.id, rule);
                }
                Err(error) => tracing::warn!(cohort = saved.id, %error, "skipping a cohort whose definition no longer parses"),
            }
        }
        Ok((Arc::new(Profiles { people, groups }), Arc::new(cohorts)))
    }

    /// Decodes the days whose sources changed; drops the blocks of days
    /// that no longer exist in this form.
    fn refresh_blocks(cache: &mut ProjectCache, snapshot: &Snapshot, project: ProjectId, sources: &[DaySource]) -> Result<(), QueryError> {
        let keys: Vec<BlockKey> = sources.iter().map(key_of).collect();
        let missing: Vec<&DaySource> = sources.iter().filter(|s| !cache.blocks.contains_key(&key_of(s))).collect();
        for (source, mut loaded) in missing.iter().zip(load_blocks(snapshot, project, &missing)?) {
            cache.key_names.take_from(loaded.core_mut());
            cache.blocks.insert(key_of(source), loaded.into_block());
        }
        cache.blocks.retain(|key, _| keys.contains(key));
        Ok(())
    }

    /// The store's user keys of these distinct ids (those with events), for
    /// the audit's record of whose rows a read returned.
    pub fn user_keys_of(&self, project: ProjectId, distinct_ids: &[String]) -> Result<Vec<u32>, QueryError> {
        if distinct_ids.is_empty() {
            return Ok(Vec::new());
        }
        let cache = self.projects.lock().unwrap_or_else(|p| p.into_inner()).entry(project).or_default().clone();
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = self.store.snapshot();
        let sources = snapshot.day_sources(project);
        Self::refresh_blocks(&mut cache, &snapshot, project, &sources)?;
        Ok(cache.key_names.keys_of(distinct_ids))
    }

    /// The distinct ids of store user keys (what the audit's bitmaps hold).
    pub fn distinct_ids_of(&self, project: ProjectId, keys: &[u32]) -> Result<Vec<(u32, String)>, QueryError> {
        let cache = self.projects.lock().unwrap_or_else(|p| p.into_inner()).entry(project).or_default().clone();
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = self.store.snapshot();
        let sources = snapshot.day_sources(project);
        Self::refresh_blocks(&mut cache, &snapshot, project, &sources)?;
        Ok(cache.key_names.ids_of(keys))
    }

    /// Runs a report and says what it read and whose rows it returned: what
    /// the audit records of every query.
    pub fn run_audited(&self, project: &meta::Project, spec: &Spec) -> Result<(ReportResult, ReadFacts), QueryError> {
        let result = self.run(project, spec)?;
        let (events_read, people_read) = {
            let cache = self.projects.lock().unwrap_or_else(|p| p.into_inner()).entry(project.id).or_default().clone();
            let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.tables.get(&unit_kind(spec)).map_or((0, 0), |(_, _, table)| (table.n_rows() as u64, table.n_units() as u64))
        };
        let returned = result.returned_people();
        let returned_user_keys = self.user_keys_of(project.id, &returned)?;
        Ok((result, ReadFacts { events_read, people_read, returned_people: returned.len() as u64, returned_user_keys }))
    }

    fn table(&self, cache: &mut ProjectCache, project: ProjectId, kind: &UnitKind, state: &MetaState) -> Result<Arc<Table>, QueryError> {
        // Group units do not depend on identity links, only on erasures.
        let generation = match kind {
            UnitKind::Group(_) => state.erasure_generation,
            UnitKind::People => state.identity_generation,
        };
        let snapshot = self.store.snapshot();
        let sources = snapshot.day_sources(project);
        let keys: Vec<BlockKey> = sources.iter().map(key_of).collect();
        if let Some((seen_keys, seen_generation, table)) = cache.tables.get(kind)
            && *seen_keys == keys && *seen_generation == generation {
                return Ok(table.clone());
            }
        Self::refresh_blocks(cache, &snapshot, project, &sources)?;
        let blocks: Vec<Arc<dyn Block>> = keys.iter().filter_map(|key| cache.blocks.get(key).cloned()).collect();
        // The old table goes first: two tables of ten million rows at once
        // would double the engine's memory. Its buffers are reused when no
        // running report still holds it.
        let recycle = cache.tables.remove(kind).and_then(|(_, _, table)| Arc::try_unwrap(table).ok());
        let started = std::time::Instant::now();
        let table = Arc::new(Table::build(blocks, kind, &state.identities, &cache.key_names, Some(snapshot), recycle)?);
        tracing::debug!(project = project.0, rows = table.n_rows(), units = table.n_units(), ms = started.elapsed().as_millis() as u64, "built query table");
        cache.tables.insert(kind.clone(), (keys, generation, table.clone()));
        Ok(table)
    }
}

/// Decodes days on every core.
fn load_blocks(snapshot: &Snapshot, project: ProjectId, sources: &[&DaySource]) -> Result<Vec<Box<dyn LoadedBlock>>, QueryError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = Option<Result<Box<dyn LoadedBlock>, QueryError>>;
    let results: Mutex<Vec<Slot>> = Mutex::new((0..sources.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..crate::parallel::threads().min(sources.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(source) = sources.get(i) else { break };
                let block = load_block(snapshot, project, source);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(block);
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().map(|r| r.unwrap_or_else(|| Err(QueryError::bad("block not loaded")))).collect()
}

/// A decoded day whose distinct ids still have to move to the project's [`KeyNames`].
trait LoadedBlock: Send {
    fn core_mut(&mut self) -> &mut CoreColumns;
    fn into_block(self: Box<Self>) -> Arc<dyn Block>;
}

macro_rules! loaded_block {
    ($($kind:ty),*) => {$(
        impl LoadedBlock for $kind {
            fn core_mut(&mut self) -> &mut CoreColumns {
                <$kind>::core_mut(self)
            }
            fn into_block(self: Box<Self>) -> Arc<dyn Block> {
                Arc::new(*self)
            }
        }
    )*};
}

loaded_block!(PartBlock, SplitDayBlock, BufferedDayBlock);

impl PartBlock {
    fn core_mut(&mut self) -> &mut CoreColumns {
        &mut self.core
    }
}

fn load_block(snapshot: &Snapshot, project: ProjectId, source: &DaySource) -> Result<Box<dyn LoadedBlock>, QueryError> {
    if source.is_single_part() {
        let path = source.parts[0].1.clone();
        let core = store::part::read_core(&path)?;
        return Ok(Box::new(PartBlock { core, path, columns: Default::default() }));
    }
    if source.chunks.is_empty() {
        let paths: Vec<PathBuf> = source.parts.iter().map(|(_, path)| path.clone()).collect();
        return Ok(Box::new(SplitDayBlock::load(&paths)?));
    }
    Ok(Box::new(BufferedDayBlock::new(snapshot.day_rows(project, source.day)?)))
}
