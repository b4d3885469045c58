//! Who is asking, and may they: the project secret (HTTP Basic user name
//! with an empty password, as Mixpanel's project secret works; or Bearer, as
//! Mixpanel's GDPR API sends its token) or a service account's API key
//! (Basic or Bearer), checked for liveness, scope, project and source
//! address on every request, so that disabling, expiry and rotation take
//! effect on the very next one.

use crate::error::ApiError;
use crate::state::Inner;
use crate::audit_trail::Source;
use audit::Actor;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use meta::{Project, Scope};

/// An authorised caller.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) project: Project,
    pub(crate) actor: Actor,
    /// Where the request came from, as the audit records it.
    pub(crate) source: Source,
}

/// The username of a Basic `Authorization` header, if any.
fn basic_username(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let username = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
    (!username.is_empty()).then(|| username.to_owned())
}

/// A `Bearer` token.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}

fn credential(headers: &HeaderMap) -> Option<String> {
    basic_username(headers).or_else(|| bearer_token(headers))
}

/// The `project_id` query parameter, which names the project a key acts on.
fn project_param(parts: &Parts) -> Result<Option<u32>, ApiError> {
    let found = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).find(|(key, _)| key == "project_id").map(|(_, v)| v.into_owned());
    found.map(|text| text.parse::<u32>().map_err(|_| ApiError::BadRequest(format!("project_id must be a number, got {text:?}")))).transpose()
}

/// [`authorise`] off the async threads.
pub(crate) async fn authorised(state: &crate::state::AppState, parts: &Parts, need: impl Into<Need>) -> Result<Principal, ApiError> {
    let inner = state.inner.clone();
    let parts = parts.clone();
    let need = need.into();
    tokio::task::spawn_blocking(move || authorise(&inner, &parts, need)).await?
}

/// What a request needs beyond being signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Scope(Scope),
    /// Decrypted personal fields: the `view_pii` permission and a fresh
    /// passkey assertion for members; the admin scope for keys.
    RevealPii,
}

impl From<Scope> for Need {
    fn from(scope: Scope) -> Need {
        Need::Scope(scope)
    }
}

pub(crate) const SESSION_COOKIE: &str = "hearth_session";
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie's value, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The signed-in member of a request, with CSRF checked on anything that
/// changes state. Blocking (SQLite).
pub(crate) fn session_of(inner: &Inner, parts: &Parts) -> Result<access::SessionView, ApiError> {
    let id = session_cookie(&parts.headers).ok_or(ApiError::Unauthorized)?;
    let view = inner.access.session(&id).map_err(|e| ApiError::Internal(e.to_string()))?.ok_or(ApiError::Unauthorized)?;
    let safe = matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
    if !safe {
        let csrf = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !access::Access::csrf_matches(&view, csrf) {
            return Err(ApiError::Forbidden(format!("missing or wrong {CSRF_HEADER} header (the token given at sign-in)")));
        }
    }
    inner.limiters.api(&format!("session:{}", view.session.short_id))?;
    Ok(view)
}

fn session_principal(inner: &Inner, parts: &Parts, need: Need, source: Source) -> Result<Principal, ApiError> {
    let view = session_of(inner, parts)?;
    let member = &view.member;
    let now = events::now_ms();
    let admin = member.role >= meta::Role::Admin;
    match need {
        Need::Scope(Scope::Read) => {}
        Need::Scope(Scope::Ingest | Scope::Admin) if admin => {}
        Need::Scope(Scope::Ingest | Scope::Admin) => return Err(ApiError::Forbidden(format!("the {} role may not do this", member.role.as_str()))),
        Need::Scope(Scope::Export) if !member.can_export => return Err(ApiError::Forbidden("this needs the export permission".to_owned())),
        Need::RevealPii if !member.can_view_pii => return Err(ApiError::Forbidden("this needs the view_pii permission".to_owned())),
        Need::Scope(Scope::Export) | Need::RevealPii if !view.stepped_up(now) => return Err(step_up_required()),
        Need::Scope(Scope::Export) | Need::RevealPii => {}
    }
    if need == Need::Scope(Scope::Export) {
        refuse_frozen_exports(inner)?;
    }
    let projects = inner.meta.projects()?;
    let project = match project_param(parts)? {
        Some(id) => projects.into_iter().find(|p| p.id.0 == id).ok_or_else(|| ApiError::Forbidden(format!("no access to project {id}")))?,
        None => {
            let mut visible: Vec<Project> = projects.into_iter().filter(|p| member.may_access(p.id)).collect();
            if visible.len() != 1 {
                return Err(ApiError::BadRequest("give project_id: you have access to several projects".to_owned()));
            }
            visible.remove(0)
        }
    };
    if !member.may_access(project.id) {
        return Err(ApiError::Forbidden(format!("no access to project {}", project.id.0)));
    }
    let actor = Actor { kind: "session".to_owned(), id: view.session.short_id.clone(), user: Some(format!("member:{}", member.id)) };
    Ok(Principal { project, actor, source })
}

/// The answer to a member whose last passkey confirmation is too old.
pub(crate) fn step_up_required() -> ApiError {
    ApiError::Forbidden("step-up required: confirm with your passkey (POST /api/v1/auth/step-up/start), then retry".to_owned())
}

/// A member's session confirmed with a passkey within the step-up window.
pub(crate) fn require_stepped_up(view: &access::SessionView) -> Result<(), ApiError> {
    if view.stepped_up(events::now_ms()) { Ok(()) } else { Err(step_up_required()) }
}

/// For actions that issue or cut off credentials: a member's session must be
/// freshly confirmed with a passkey; keys and the secret need not (they
/// already passed the admin scope).
pub(crate) fn require_fresh(inner: &Inner, parts: &Parts, principal: &Principal) -> Result<(), ApiError> {
    if principal.actor.kind == "session" {
        require_stepped_up(&session_of(inner, parts)?)?;
    }
    Ok(())
}

/// Exports frozen by an incident containment stay refused until an owner
/// lifts the freeze.
fn refuse_frozen_exports(inner: &Inner) -> Result<(), ApiError> {
    if inner.meta.exports_frozen()? {
        return Err(ApiError::Forbidden("exports are frozen by an incident containment until an owner lifts it (hearth incident lift)".to_owned()));
    }
    Ok(())
}

/// Authorises a request. Blocking (SQLite).
pub(crate) fn authorise(inner: &Inner, parts: &Parts, need: impl Into<Need>) -> Result<Principal, ApiError> {
    let need = need.into();
    let scope = match need {
        Need::Scope(scope) => scope,
        Need::RevealPii => Scope::Admin,
    };
    let facts = crate::routes::request_facts(parts, inner);
    let source = Source::of(inner, facts.client_ip);
    if !inner.config.api_allowed.is_empty() && !facts.client_ip.is_some_and(|ip| inner.config.api_allowed.iter().any(|net| net.contains(&ip.to_canonical()))) {
        metrics::counter!("hearth_auth_denied_total", "reason" => "address_not_allowed").increment(1);
        return Err(ApiError::Forbidden("this address may not use the API".to_owned()));
    }
    let Some(credential) = credential(&parts.headers) else {
        return session_principal(inner, parts, need, source);
    };
    let principal = credential_principal(inner, parts, &credential, scope, &facts, source)?;
    if need == Need::RevealPii {
        // Decrypted personal fields go to people, not programs: a member
        // holding view_pii, freshly confirmed with their passkey.
        let why = "revealing personal fields needs a signed-in member with the view_pii permission";
        let entry = principal.source.stamp(audit::NewEntry::new(principal.actor.clone(), "auth.denied", audit::Outcome::Denied))
            .project(principal.project.id.0)
            .detail(serde_json::json!({"reason": why, "path": parts.uri.path()}));
        inner.audit.append(entry).map_err(|e| ApiError::Internal(e.to_string()))?;
        return Err(ApiError::Forbidden(why.to_owned()));
    }
    Ok(principal)
}

/// The principal of a project secret or an API key, checked for `scope`.
fn credential_principal(inner: &Inner, parts: &Parts, credential: &str, scope: Scope, facts: &crate::routes::RequestFactsView, source: Source) -> Result<Principal, ApiError> {
    inner.limiters.auth_attempt(facts.client_ip)?;
    let wanted_project = project_param(parts)?;
    if meta::is_well_formed_key(credential) {
        let key = inner.meta.api_key_by_secret(credential)?.ok_or(ApiError::Unauthorized)?;
        let actor = Actor::new("api_key", format!("{}#{}", key.display, key.id));
        let deny = |why: String| -> ApiError {
            let entry = source.stamp(audit::NewEntry::new(actor.clone(), "auth.denied", audit::Outcome::Denied)).detail(serde_json::json!({"scope": scope.as_str(), "reason": why, "path": parts.uri.path()}));
            if let Err(error) = inner.audit.append(entry) {
                tracing::error!(%error, "could not audit a denied request");
            }
            ApiError::Forbidden(why)
        };
        if !key.is_live(events::now_ms()) {
            metrics::counter!("hearth_auth_denied_total", "reason" => "key_not_live").increment(1);
            return Err(ApiError::Unauthorized);
        }
        if !key.scopes.contains(&scope) {
            return Err(deny(format!("this key lacks the {:?} scope", scope.as_str())));
        }
        if !key.allow_cidrs.is_empty() {
            let allowed = facts.client_ip.is_some_and(|ip| key.allow_cidrs.iter().filter_map(|c| c.parse::<ipnet::IpNet>().ok()).any(|net| net.contains(&ip.to_canonical())));
            if !allowed {
                let project = key.projects.first().copied().filter(|_| key.projects.len() == 1);
                if let Err(error) = crate::alerts::key_outside_allowlist(inner, &actor, project, source.country.clone(), parts.uri.path()) {
                    tracing::error!(%error, "the key allowlist alert could not be raised");
                }
                return Err(deny("this key may not be used from this address".to_owned()));
            }
        }
        let project_id = match (wanted_project, key.projects.as_slice()) {
            (Some(id), projects) if projects.iter().any(|p| p.0 == id) => events::ProjectId(id),
            (Some(id), _) => return Err(deny(format!("this key has no access to project {id}"))),
            (None, [only]) => *only,
            (None, _) => return Err(ApiError::BadRequest("this key covers several projects: give project_id".to_owned())),
        };
        let project = inner.meta.project_by_id(project_id)?.ok_or(ApiError::Unauthorized)?;
        limit(inner, &actor, scope)?;
        return Ok(Principal { project, actor, source });
    }
    // The project secret: every scope of its own project, unless disabled.
    let project = inner.meta.project_by_secret(credential)?.ok_or(ApiError::Unauthorized)?;
    if wanted_project.is_some_and(|id| id != project.id.0) {
        return Err(ApiError::Forbidden("the project secret belongs to another project".to_owned()));
    }
    let actor = Actor::new("project_secret", project.id.0.to_string());
    limit(inner, &actor, scope)?;
    Ok(Principal { actor, project, source })
}

/// The per-credential limits: exports tighter than the rest of the API.
fn limit(inner: &Inner, actor: &Actor, scope: Scope) -> Result<(), ApiError> {
    let label = actor.label();
    if scope == Scope::Export {
        refuse_frozen_exports(inner)?;
        inner.limiters.export(&label)?;
    }
    if scope != Scope::Ingest {
        inner.limiters.api(&label)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_username_of_a_basic_header_is_the_secret() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("s3cret:");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).unwrap());
        assert_eq!(basic_username(&headers).as_deref(), Some("s3cret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(basic_username(&headers), None);
        assert_eq!(credential(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_username(&headers), None);
    }
}
