//! The exposure report: after an incident, exactly whose data, which
//! fields, a credential saw, computed from the audit log.
//!
//! Every audited read that returned people's rows holds a bitmap of their
//! store user keys and the fields returned; the report takes the entries of
//! the chosen credential in the chosen window, unions their bitmaps per
//! project, resolves user keys to distinct ids (the report engine's key
//! names) and those across merged identities to people, and gives each
//! person the fields of the responses that included them. Aggregates
//! (counts, funnels) returned nobody's rows and add nobody.

pub mod containment;

use audit::{AuditLog, Entry, Filter};
use events::ProjectId;
use meta::Meta;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error(transparent)]
    Meta(#[from] meta::Error),
    #[error(transparent)]
    Query(#[from] query::QueryError),
}

/// Whose activity the report covers; every given part must match.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Selector {
    pub key: Option<i64>,
    pub session: Option<String>,
    pub member: Option<i64>,
    /// Source country (addresses are not recorded, countries are).
    pub country: Option<String>,
    /// Limit to one project (the API's view).
    pub project: Option<u32>,
}

impl Selector {
    fn matches(&self, entry: &Entry) -> bool {
        let actor = &entry.body.actor;
        self.key.is_none_or(|id| actor.kind == "api_key" && actor.id.ends_with(&format!("#{id}")))
            && self.session.as_ref().is_none_or(|s| actor.kind == "session" && &actor.id == s)
            && self.member.is_none_or(|m| actor.user.as_deref() == Some(&format!("member:{m}")))
            && self.country.as_ref().is_none_or(|c| entry.body.country.as_deref() == Some(c.as_str()))
            && self.project.is_none_or(|p| entry.body.project == Some(p))
    }
}

/// One affected person.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Person {
    pub project: u32,
    /// The identity-merged id.
    pub canonical_id: String,
    /// Every distinct id of theirs that a response carried.
    pub distinct_ids: Vec<String>,
    /// Fields of the responses that included them.
    pub fields: Vec<String>,
    /// Audit entries (actions) through which they were seen.
    pub via: Vec<String>,
    pub country: Option<String>,
    /// Group (organisation) ids on their profile.
    pub organisations: Vec<String>,
    /// Their profile's personal fields as tokens (for contacts, revealed by
    /// the caller with view_pii).
    #[serde(skip)]
    pub profile: Option<events::Properties>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldSummary {
    pub people: u64,
    pub sensitivity: &'static str,
}

/// An affected organisation (a group) beyond its count.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct OrganisationDetail {
    pub project: u32,
    pub name: Option<String>,
    pub admins: Vec<String>,
}

/// Distinct ids in a profile property: a list, or one string.
fn ids_in(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(events::group_id_text).collect(),
        Some(other) => events::group_id_text(other).into_iter().collect(),
        None => Vec::new(),
    }
}

fn is_admin(profile: &events::Properties) -> bool {
    ["role", "$role"].iter().filter_map(|key| profile.get(*key).and_then(|v| v.as_str())).any(|role| role.eq_ignore_ascii_case("admin") || role.eq_ignore_ascii_case("owner"))
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Exposure {
    pub from_ms: i64,
    pub to_ms: i64,
    pub selector: Selector,
    pub entries: u64,
    pub by_action: BTreeMap<String, u64>,
    /// Rows returned (exports), summed.
    pub rows_returned: u64,
    pub people: Vec<Person>,
    pub fields: BTreeMap<String, FieldSummary>,
    pub people_by_country: BTreeMap<String, u64>,
    pub people_by_project: BTreeMap<u32, u64>,
    pub organisations: BTreeMap<String, u64>,
    /// Each affected organisation's name and admins (the people to tell
    /// there): the distinct ids its group profile lists under `$admins` or
    /// `admins`, and the exposed people of it whose profile `role` or
    /// `$role` is admin or owner.
    pub organisation_details: BTreeMap<String, OrganisationDetail>,
    /// User keys no distinct id is known for (none, normally).
    pub unresolved_keys: u64,
    /// Containment already taken (audit entries `incident.contain.*`).
    pub containment: Vec<serde_json::Value>,
}

/// How sensitive a field is, for the summary and the notice.
pub fn sensitivity(field: &str) -> &'static str {
    if privacy::policy::PERSONAL_KEYS.contains(&field) {
        "personal (stored encrypted: only tokens were returned, unintelligible without the key store)"
    } else if matches!(field, "distinct_id" | "$device_id" | "$user_id" | "$insert_id" | "$distinct_ids") {
        "identifier"
    } else if matches!(field, "$city" | "$region" | "mp_country_code" | "$country_code") {
        "location"
    } else if matches!(field, "$browser" | "$browser_version" | "$os" | "$device") {
        "device"
    } else if matches!(field, "$referrer" | "$referring_domain" | "$current_url" | "$initial_referrer") {
        "referrer or page"
    } else {
        "behavioural"
    }
}

/// What the numbers in the audit's bitmaps of people are.
#[derive(Clone, Copy)]
pub enum PersonKeys<'a> {
    /// The embedded store's user keys, resolved by its engine (the server's
    /// own, or one opened by the CLI with the server stopped).
    Store(&'a query::Engine),
    /// The person keys in the metadata that every node shares (events in
    /// ClickHouse).
    Shared,
}

/// Builds the report; `keys` says how to turn the audit's numbers back into people.
pub fn exposure(log: &AuditLog, meta: &Meta, person_keys: PersonKeys<'_>, from_ms: i64, to_ms: i64, selector: Selector) -> Result<Exposure, IncidentError> {
    let entries = log.list(&Filter { since_ms: Some(from_ms), until_ms: Some(to_ms), ..Filter::default() })?;
    let matching: Vec<&Entry> = entries.iter().filter(|e| selector.matches(e) && !e.body.action.starts_with("incident.")).collect();
    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows_returned = 0;
    // Per project: user key -> (field set, actions).
    let mut seen: BTreeMap<u32, HashMap<u32, (BTreeSet<String>, BTreeSet<String>)>> = BTreeMap::new();
    for entry in &matching {
        *by_action.entry(entry.body.action.clone()).or_default() += 1;
        // Rows that left: exports only (an approval request names rows it did not return).
        if entry.body.action == "export" {
            rows_returned += entry.body.detail.get("rows").and_then(|v| v.as_u64()).unwrap_or(0);
        }
        let (Some(project), Some(users)) = (entry.body.project, entry.body.users.as_ref()) else { continue };
        let Some(bitmap) = users.keys() else { continue };
        let fields: Vec<String> = entry.body.detail.get("fields").and_then(|f| f.as_array()).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        let per_key = seen.entry(project).or_default();
        for key in bitmap.iter() {
            let slot = per_key.entry(key).or_default();
            slot.0.extend(fields.iter().cloned());
            slot.1.insert(entry.body.action.clone());
        }
    }
    let mut people = Vec::new();
    let mut organisation_details: BTreeMap<String, OrganisationDetail> = BTreeMap::new();
    let mut unresolved_keys = 0;
    for (project, per_key) in seen {
        let project_id = ProjectId(project);
        let keys: Vec<u32> = per_key.keys().copied().collect();
        let ids: HashMap<u32, String> = match person_keys {
            PersonKeys::Store(engine) => engine.distinct_ids_of(project_id, &keys)?,
            PersonKeys::Shared => meta.distinct_ids_of_person_keys(project_id, &keys)?,
        }
        .into_iter()
        .collect();
        unresolved_keys += (keys.len() - ids.len()) as u64;
        let links: HashMap<String, String> = meta.identity_links(project_id)?.into_iter().collect();
        let resolve = |id: &str| -> String {
            let mut current = id.to_owned();
            for _ in 0..16 {
                match links.get(&current) {
                    Some(next) if *next != current => current = next.clone(),
                    _ => break,
                }
            }
            current
        };
        let mut by_person: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for (key, (fields, actions)) in per_key {
            let Some(id) = ids.get(&key) else { continue };
            let person = by_person.entry(resolve(id)).or_default();
            person.0.insert(id.clone());
            person.1.extend(fields);
            person.2.extend(actions);
        }
        let group_keys = meta.group_keys(project_id)?;
        let canonical: Vec<String> = by_person.keys().cloned().collect();
        let profiles: HashMap<String, events::Properties> = meta.profiles(project_id, &canonical, usize::MAX)?.into_iter().collect();
        for (canonical_id, (distinct_ids, fields, via)) in by_person {
            let profile = profiles.get(&canonical_id).cloned();
            let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string()));
            let country = profile.as_ref().and_then(|p| p.get("$country_code").or_else(|| p.get("mp_country_code"))).and_then(text);
            let organisations: Vec<String> = group_keys.iter().filter_map(|key| profile.as_ref().and_then(|p| p.get(key)).and_then(text).map(|v| format!("{key}={v}"))).collect();
            for organisation in &organisations {
                let detail = organisation_details.entry(organisation.clone()).or_insert_with(|| OrganisationDetail { project, ..OrganisationDetail::default() });
                if profile.as_ref().is_some_and(is_admin) {
                    detail.admins.push(canonical_id.clone());
                }
            }
            people.push(Person { project, canonical_id, distinct_ids: distinct_ids.into_iter().collect(), fields: fields.into_iter().collect(), via: via.into_iter().collect(), country, organisations, profile });
        }
        // The organisations' own profiles: names and listed admins.
        for key in &group_keys {
            let prefix = format!("{key}=");
            let ids: Vec<String> = organisation_details.iter().filter(|(o, d)| d.project == project && o.starts_with(&prefix)).map(|(o, _)| o[prefix.len()..].to_owned()).collect();
            if ids.is_empty() {
                continue;
            }
            for (id, properties) in meta.group_profiles(project_id, key, &ids, usize::MAX)? {
                let Some(detail) = organisation_details.get_mut(&format!("{prefix}{id}")) else { continue };
                detail.name = ["$name", "name"].iter().find_map(|k| properties.get(*k).and_then(|v| v.as_str()).map(str::to_owned));
                detail.admins.extend(ids_in(properties.get("$admins")).into_iter().chain(ids_in(properties.get("admins"))).map(|id| resolve(&id)));
            }
        }
    }
    let mut fields: BTreeMap<String, FieldSummary> = BTreeMap::new();
    let mut people_by_country: BTreeMap<String, u64> = BTreeMap::new();
    let mut people_by_project: BTreeMap<u32, u64> = BTreeMap::new();
    let mut organisations: BTreeMap<String, u64> = BTreeMap::new();
    for person in &people {
        for field in &person.fields {
            fields.entry(field.clone()).or_insert(FieldSummary { people: 0, sensitivity: sensitivity(field) }).people += 1;
        }
        *people_by_country.entry(person.country.clone().unwrap_or_else(|| "unknown".to_owned())).or_default() += 1;
        *people_by_project.entry(person.project).or_default() += 1;
        for organisation in &person.organisations {
            *organisations.entry(organisation.clone()).or_default() += 1;
        }
    }
    let containment = entries.iter().filter(|e| e.body.action.starts_with("incident.contain")).map(|e| serde_json::json!({"time_ms": e.time_ms, "action": e.body.action, "detail": e.body.detail})).collect();
    for detail in organisation_details.values_mut() {
        detail.admins.sort();
        detail.admins.dedup();
    }
    Ok(Exposure { from_ms, to_ms, selector, entries: matching.len() as u64, by_action, rows_returned, people, fields, people_by_country, people_by_project, organisations, organisation_details, unresolved_keys, containment })
}

/// The facts a GDPR Article 33 notice needs, drafted from the report.
pub fn article33_draft(report: &Exposure) -> String {
    let personal: Vec<&String> = report.fields.iter().filter(|(_, s)| s.sensitivity.starts_with("personal")).map(|(f, _)| f).collect();
    let categories: BTreeSet<&str> = report.fields.values().map(|s| s.sensitivity).collect();
    let time = |ms: i64| ms.to_string();
    let mut text = String::new();
    text.push_str("# Draft: facts for a notification under GDPR Article 33\n\n");
    text.push_str(&format!("## (a) Nature of the breach\nA credential ({}) read analytics data between {} and {} (milliseconds since 1970, UTC) through {} audited requests: {}.\n\n",
        serde_json::to_string(&report.selector).unwrap_or_default(), time(report.from_ms), time(report.to_ms), report.entries,
        report.by_action.iter().map(|(a, n)| format!("{n} × {a}")).collect::<Vec<_>>().join(", ")));
    text.push_str(&format!("Categories of data subjects: end users of the analysed products ({} people; by country: {}).\n\n", report.people.len(),
        report.people_by_country.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ")));
    text.push_str(&format!("Categories of personal data: {}. Approximate number of records: {} rows returned by exports, and the profiles and activity of the people above.\n\n",
        categories.into_iter().collect::<Vec<_>>().join("; "), report.rows_returned));
    if !personal.is_empty() {
        text.push_str(&format!("Fields {} were returned only as keyed-hash tokens: their values are encrypted under per-person keys held outside the data, and were unintelligible to the reader (Article 34(3)(a)).\n\n", personal.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")));
    }
    text.push_str("## (b) Contact point\n[name and contact details of the data protection officer]\n\n");
    text.push_str("## (c) Likely consequences\nThe identifiers, locations, devices and behaviour above could help tailor phishing against the people listed; [assess further].\n\n");
    text.push_str("## (d) Measures taken\n");
    if report.containment.is_empty() {
        text.push_str("[no containment recorded in the audit yet]\n");
    } else {
        for step in &report.containment {
            text.push_str(&format!("- {} at {}: {}\n", step["action"].as_str().unwrap_or(""), step["time_ms"], step["detail"]));
        }
    }
    text
}
