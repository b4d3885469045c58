//! Sign-in with passkeys and sessions: enrolment, sign-in, step-up,
//! sign-out, the member's own sessions; and the admin's members and
//! sessions. Every success and failure is an audit entry.

use super::respond::{blocking, json_response};
use super::request::read_body;
use crate::audit_trail::Source;
use crate::auth::{require_stepped_up, session_of, SESSION_COOKIE};
use crate::error::ApiError;
use crate::state::{AppState, Inner};
use audit::{Actor, NewEntry, Outcome};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const BODY_BYTES_MAX: usize = 64 * 1024;


fn access_error(error: access::AccessError) -> ApiError {
    match error {
        access::AccessError::Meta(e) => ApiError::Internal(e.to_string()),
        access::AccessError::Keys(e) => ApiError::Internal(e.to_string()),
        access::AccessError::Config(e) => ApiError::Internal(e),
        access::AccessError::SignInFailed => ApiError::Unauthorized,
        other => ApiError::BadRequest(other.to_string()),
    }
}

fn source_of(inner: &Inner, parts: &axum::http::request::Parts) -> Source {
    Source::of(inner, super::request_facts(parts, inner).client_ip)
}

/// Counts a sign-in attempt against the address's and the account's
/// limits; answers where it came from.
fn sign_in_attempt(inner: &Inner, parts: &axum::http::request::Parts, email: &str) -> Result<Source, ApiError> {
    inner.limiters.auth_attempt(super::request_facts(parts, inner).client_ip)?;
    let account = inner.access.email_token(&email.trim().to_lowercase()).map_err(|e| ApiError::Internal(e.to_string()))?;
    inner.limiters.login_account(&account)?;
    Ok(source_of(inner, parts))
}

fn audit(inner: &Inner, actor: Actor, action: &str, outcome: Outcome, source: &Source, detail: Value) -> Result<(), ApiError> {
    inner.audit.append(source.stamp(NewEntry::new(actor, action, outcome)).detail(detail)).map(|_| ()).map_err(|e| ApiError::Internal(format!("could not write the audit entry: {e}")))
}

fn member_actor(member: &meta::Member, session: Option<&str>) -> Actor {
    Actor { kind: if session.is_some() { "session" } else { "member" }.to_owned(), id: session.unwrap_or("-").to_owned(), user: Some(format!("member:{}", member.id)) }
}

async fn body_json(body: axum::body::Body) -> Result<Value, ApiError> {
    let bytes = read_body(body, BODY_BYTES_MAX).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("expected a JSON object: {e}")))
}

fn field<T: serde::de::DeserializeOwned>(value: &Value, name: &str) -> Result<T, ApiError> {
    serde_json::from_value(value.get(name).cloned().unwrap_or(Value::Null)).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}


/// The answer to a finished sign-in: the session cookie (HttpOnly,
/// SameSite=Strict, Secure over HTTPS) and the CSRF token, once.
fn signed_in(inner: &Inner, session: &access::NewSession) -> Response {
    let max_age = ((session.expires_ms - events::now_ms()) / 1000).max(0);
    let secure = if inner.access.config().secure_cookies() { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}", session.id);
    let mut body = json!({"csrf_token": session.csrf, "session": session.short_id, "expires_ms": session.expires_ms, "member": {"id": session.member.id, "role": session.member.role.as_str()}, "new_country": session.new_country});
    if !session.recovery_codes.is_empty() {
        body["recovery_codes"] = json!(session.recovery_codes);
    }
    let mut response = json_response(StatusCode::OK, &body);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

macro_rules! handler {
    ($name:ident, |$state:ident, $request:ident| $body:block) => {
        pub(crate) async fn $name(State($state): State<AppState>, $request: Request) -> Response {
            let result: Result<Response, ApiError> = async { $body }.await;
            result.unwrap_or_else(IntoResponse::into_response)
        }
    };
}

handler!(enrol_start, |state, request| {
    let (_, body) = request.into_parts();
    let token: String = field(&body_json(body).await?, "token")?;
    let inner = state.inner.clone();
    let (ceremony, options) = blocking(move || inner.access.enrol_start(&token).map_err(access_error)).await?;
    Ok(json_response(StatusCode::OK, &json!({"ceremony": ceremony, "options": options})))
});

handler!(enrol_finish, |state, request| {
    let (parts, body) = request.into_parts();
    let value = body_json(body).await?;
    let ceremony: String = field(&value, "ceremony")?;
    let credential: webauthn_rs::prelude::RegisterPublicKeyCredential = field(&value, "credential")?;
    let inner = state.inner.clone();
    let source = source_of(&inner, &parts);
    blocking(move || {
        let session = inner.access.enrol_finish(&ceremony, &credential, source.country.as_deref()).map_err(access_error)?;
        audit(&inner, member_actor(&session.member, Some(&session.short_id)), "auth.enrol", Outcome::Ok, &source, Value::Null)?;
        Ok(signed_in(&inner, &session))
    })
    .await
});

handler!(login_start, |state, request| {
    let (parts, body) = request.into_parts();
    let email: String = field(&body_json(body).await?, "email")?;
    let inner = state.inner.clone();
    let source = sign_in_attempt(&inner, &parts, &email)?;
    blocking(move || match inner.access.login_start(&email) {
        Ok((ceremony, options)) => Ok(json_response(StatusCode::OK, &json!({"ceremony": ceremony, "options": options}))),
        Err(error) => {
            let address = super::request_facts(&parts, &inner).client_ip;
            failed_sign_in(&inner, Some(&email), address, &source, json!({"stage": "start"}))?;
            Err(access_error(error))
        }
    })
    .await
});

handler!(login_finish, |state, request| {
    let (parts, body) = request.into_parts();
    let value = body_json(body).await?;
    let ceremony: String = field(&value, "ceremony")?;
    let credential: webauthn_rs::prelude::PublicKeyCredential = field(&value, "credential")?;
    let inner = state.inner.clone();
    let source = source_of(&inner, &parts);
    blocking(move || {
        let result = inner.access.login_finish(&ceremony, &credential, source.country.as_deref());
        let address = super::request_facts(&parts, &inner).client_ip;
        finish_sign_in(&inner, result, source, "passkey", None, address)
    })
    .await
});

/// Audits a finished sign-in (flagging a new country) or its failure, and
/// answers it.
fn finish_sign_in(inner: &Inner, result: Result<access::NewSession, access::AccessError>, source: Source, factor: &str, email: Option<&str>, address: Option<std::net::IpAddr>) -> Result<Response, ApiError> {
    match result {
        Ok(session) => {
            let actor = member_actor(&session.member, Some(&session.short_id));
            audit(inner, actor.clone(), "auth.login", Outcome::Ok, &source, json!({"factor": factor, "new_country": session.new_country}))?;
            if session.new_country {
                audit(inner, actor.clone(), "auth.login.new_country", Outcome::Ok, &source, Value::Null)?;
                let trigger = crate::alerts::Trigger { rule: alerting::Rule::NewCountry, actor: &actor, project: None, country: source.country.clone(), detail: json!({"via": "sign-in", "factor": factor}) };
                crate::alerts::raise(inner, trigger)?;
            }
            Ok(signed_in(inner, &session))
        }
        Err(error) => {
            failed_sign_in(inner, email, address, &source, json!({"factor": factor}))?;
            Err(access_error(error))
        }
    }
}

/// Audits a failed sign-in and counts it for the failed-logins alert (by
/// the account's keyed token, and by address in memory only).
fn failed_sign_in(inner: &Inner, email: Option<&str>, address: Option<std::net::IpAddr>, source: &Source, detail: Value) -> Result<(), ApiError> {
    audit(inner, Actor::new("anonymous", "-"), "auth.login.failed", Outcome::Failed, source, detail)?;
    let account = email.and_then(|email| inner.access.email_token(&email.trim().to_lowercase()).ok());
    crate::alerts::failed_sign_in(inner, account.as_deref(), address, source.country.clone())
}

handler!(recover, |state, request| {
    let (parts, body) = request.into_parts();
    let value = body_json(body).await?;
    let email: String = field(&value, "email")?;
    let code: String = field(&value, "code")?;
    let inner = state.inner.clone();
    let source = sign_in_attempt(&inner, &parts, &email)?;
    blocking(move || match inner.access.recover(&email, &code) {
        Ok(token) => {
            audit(&inner, Actor::new("anonymous", "-"), "auth.recover", Outcome::Ok, &source, Value::Null)?;
            Ok(json_response(StatusCode::OK, &json!({"enrolment_token": token, "expires_in_ms": 900_000})))
        }
        Err(error) => {
            audit(&inner, Actor::new("anonymous", "-"), "auth.recover.failed", Outcome::Failed, &source, Value::Null)?;
            Err(access_error(error))
        }
    })
    .await
});

handler!(set_password, |state, request| {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, BODY_BYTES_MAX).await?;
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        // A credential change: only with a fresh passkey assertion.
        require_stepped_up(&view)?;
        let password: String = field(&parse_json(&bytes)?, "password")?;
        let uri = inner.access.set_password(&view.member, &password).map_err(access_error)?;
        audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "auth.password.set", Outcome::Ok, &source_of(&inner, &parts), Value::Null)?;
        Ok(json_response(StatusCode::OK, &json!({"otpauth_uri": uri})))
    })
    .await
});

handler!(password_login, |state, request| {
    let (parts, body) = request.into_parts();
    let value = body_json(body).await?;
    let email: String = field(&value, "email")?;
    let password: String = field(&value, "password")?;
    let code: String = field(&value, "code")?;
    let inner = state.inner.clone();
    let source = sign_in_attempt(&inner, &parts, &email)?;
    blocking(move || {
        let result = inner.access.password_login(&email, &password, &code, source.country.as_deref());
        let address = super::request_facts(&parts, &inner).client_ip;
        finish_sign_in(&inner, result, source, "password+totp", Some(&email), address)
    })
    .await
});

handler!(step_up_start, |state, request| {
    let (parts, _) = request.into_parts();
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        let (ceremony, options) = inner.access.step_up_start(&view).map_err(access_error)?;
        Ok(json_response(StatusCode::OK, &json!({"ceremony": ceremony, "options": options})))
    })
    .await
});

/// The body as JSON, parsed only once the caller is known to be signed in:
/// an anonymous caller learns nothing from validation errors.
fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("expected a JSON object: {e}")))
}

handler!(step_up_finish, |state, request| {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, BODY_BYTES_MAX).await?;
    let inner = state.inner.clone();
    let source = source_of(&inner, &parts);
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        let value = parse_json(&bytes)?;
        let ceremony: String = field(&value, "ceremony")?;
        let credential: webauthn_rs::prelude::PublicKeyCredential = field(&value, "credential")?;
        inner.access.step_up_finish(&view, &ceremony, &credential).map_err(access_error)?;
        audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "auth.step_up", Outcome::Ok, &source, Value::Null)?;
        Ok(json_response(StatusCode::OK, &json!({"stepped_up_for_ms": access::STEP_UP_MS})))
    })
    .await
});

handler!(logout, |state, request| {
    let (parts, _) = request.into_parts();
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        inner.meta.revoke_sessions(Some(&view.session.short_id), None)?;
        audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "auth.logout", Outcome::Ok, &source_of(&inner, &parts), Value::Null)?;
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static("hearth_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
        Ok(response)
    })
    .await
});

fn session_json(session: &meta::Session, current: Option<&str>) -> Value {
    json!({"id": session.short_id, "member": session.member, "created_ms": session.created_ms, "last_seen_ms": session.last_seen_ms,
           "expires_ms": session.expires_ms, "country": session.country, "current": current == Some(session.short_id.as_str())})
}

handler!(me, |state, request| {
    let (parts, _) = request.into_parts();
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        let email = inner.access.email_of(&view.member).map_err(access_error)?;
        let now = events::now_ms();
        // The projects this member may open, with their public tokens (the
        // dashboard's SDK snippets need them; tokens are public by design).
        let projects: Vec<Value> = inner.meta.projects()?.into_iter().filter(|p| view.member.may_access(p.id)).map(|p| json!({"id": p.id.0, "name": p.name, "token": p.token, "timezone": p.timezone})).collect();
        Ok(json_response(StatusCode::OK, &json!({
            "member": {"id": view.member.id, "email": email, "role": view.member.role.as_str(), "can_export": view.member.can_export, "can_view_pii": view.member.can_view_pii},
            "session": {"id": view.session.short_id, "expires_ms": view.session.expires_ms, "stepped_up": view.stepped_up(now)},
            "projects": projects,
        })))
    })
    .await
});

handler!(my_sessions, |state, request| {
    let (parts, _) = request.into_parts();
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        let all = view.member.role >= meta::Role::Admin && form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).any(|(k, v)| k == "all" && v == "true");
        let sessions = inner.meta.sessions_of(if all { None } else { Some(view.member.id) })?;
        let now = events::now_ms();
        let list: Vec<Value> = sessions.iter().filter(|s| s.is_live(now)).map(|s| session_json(s, Some(&view.session.short_id))).collect();
        Ok(json_response(StatusCode::OK, &json!({"sessions": list})))
    })
    .await
});

pub(crate) async fn revoke_session(State(state): State<AppState>, Path(short_id): Path<String>, request: Request) -> Response {
    let result: Result<Response, ApiError> = async {
        let (parts, _) = request.into_parts();
        let inner = state.inner.clone();
        blocking(move || {
            let view = session_of(&inner, &parts)?;
            let target = inner.meta.sessions_of(None)?.into_iter().find(|s| s.short_id == short_id).ok_or_else(|| ApiError::NotFound("no such live session".to_owned()))?;
            // Members end their own sessions; admins anyone's.
            if target.member != view.member.id && view.member.role < meta::Role::Admin {
                return Err(ApiError::Forbidden("only admins may end other members' sessions".to_owned()));
            }
            inner.meta.revoke_sessions(Some(&short_id), None)?;
            audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "session.revoke", Outcome::Ok, &source_of(&inner, &parts), json!({"session": short_id, "member": target.member}))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        })
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/auth/passkeys`: the signed-in member's passkeys.
pub(crate) async fn my_passkeys(State(state): State<AppState>, request: Request) -> Response {
    let parts = request.into_parts().0;
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        let list: Vec<Value> = inner.meta.passkey_list(view.member.id)?.into_iter().map(|(id, created_ms, last_used_ms)| json!({"id": id, "created_ms": created_ms, "last_used_ms": last_used_ms})).collect();
        Ok(json_response(StatusCode::OK, &json!({"passkeys": list})))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/auth/passkeys`: a one-time enrolment token for the
/// signed-in member's own next passkey (a second device, a backup), after a
/// step-up; the client then runs the enrolment ceremony with it.
pub(crate) async fn add_passkey(State(state): State<AppState>, request: Request) -> Response {
    let parts = request.into_parts().0;
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        require_stepped_up(&view)?;
        let (_, token, expires_ms) = inner.access.enrolment_link(view.member.id).map_err(access_error)?;
        audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "passkey.add.start", Outcome::Ok, &source_of(&inner, &parts), Value::Null)?;
        Ok(json_response(StatusCode::OK, &json!({"enrolment_token": token, "expires_ms": expires_ms})))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /api/v1/auth/passkeys/{id}`: removes one of the member's own
/// passkeys after a step-up, never the last one.
pub(crate) async fn remove_passkey(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    let parts = request.into_parts().0;
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        require_stepped_up(&view)?;
        if !inner.meta.remove_passkey(view.member.id, &id)? {
            return Err(ApiError::Conflict("not removed: it is not one of your passkeys, or it is your last one".to_owned()));
        }
        audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "passkey.remove", Outcome::Ok, &source_of(&inner, &parts), json!({"passkey": id}))?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// An admin's signed-in, stepped-up session (roles and members change only so).
fn admin_session(inner: &Inner, parts: &axum::http::request::Parts, need_step_up: bool) -> Result<access::SessionView, ApiError> {
    let view = session_of(inner, parts)?;
    if view.member.role < meta::Role::Admin {
        return Err(ApiError::Forbidden(format!("the {} role may not manage members", view.member.role.as_str())));
    }
    if need_step_up {
        require_stepped_up(&view)?;
    }
    Ok(view)
}

handler!(list_members, |state, request| {
    let (parts, _) = request.into_parts();
    let inner = state.inner.clone();
    blocking(move || {
        let view = admin_session(&inner, &parts, false)?;
        let members = inner.meta.members(view.member.organisation)?;
        let list: Vec<Value> = members
            .iter()
            .map(|m| json!({"id": m.id, "email": inner.access.email_of(m).ok().flatten(), "role": m.role.as_str(), "can_export": m.can_export, "can_view_pii": m.can_view_pii,
                            "projects": m.projects.iter().map(|p| p.0).collect::<Vec<_>>(), "disabled": m.disabled_ms.is_some()}))
            .collect();
        audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "members.read", Outcome::Ok, &source_of(&inner, &parts), json!({"members": list.len()}))?;
        Ok(json_response(StatusCode::OK, &json!({"members": list})))
    })
    .await
});

handler!(invite_member, |state, request| {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, BODY_BYTES_MAX).await?;
    let inner = state.inner.clone();
    blocking(move || {
        let view = admin_session(&inner, &parts, true)?;
        let value = parse_json(&bytes)?;
        let email: String = field(&value, "email")?;
        let role_text: String = field(&value, "role")?;
        let role = meta::Role::parse(&role_text).ok_or_else(|| ApiError::BadRequest(format!("role must be owner, admin, analyst or viewer, got {role_text:?}")))?;
        let can_export: bool = field::<Option<bool>>(&value, "export")?.unwrap_or(false);
        let can_view_pii: bool = field::<Option<bool>>(&value, "view_pii")?.unwrap_or(false);
        let projects: Vec<u32> = field::<Option<Vec<u32>>>(&value, "projects")?.unwrap_or_default();
        if role == meta::Role::Owner && view.member.role != meta::Role::Owner {
            return Err(ApiError::Forbidden("only owners may make owners".to_owned()));
        }
        let projects: Vec<events::ProjectId> = projects.into_iter().map(events::ProjectId).collect();
        let invitation = inner.access.invite(&email, role, can_export, can_view_pii, &projects).map_err(access_error)?;
        audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "member.invite", Outcome::Ok, &source_of(&inner, &parts), json!({"member": invitation.member.id, "role": role.as_str(), "export": can_export, "view_pii": can_view_pii}))?;
        Ok(json_response(StatusCode::CREATED, &json!({"member": invitation.member.id, "enrolment_link": invitation.link, "expires_ms": invitation.expires_ms})))
    })
    .await
});

/// `POST /api/v1/admin/members/{id}` `{role, export, view_pii, projects}`:
/// changes a member's access (admin, stepped up; owners only make owners).
pub(crate) async fn change_member(State(state): State<AppState>, Path(id): Path<i64>, request: Request) -> Response {
    let result: Result<Response, ApiError> = async {
        let (parts, body) = request.into_parts();
        let bytes = read_body(body, BODY_BYTES_MAX).await?;
        let inner = state.inner.clone();
        blocking(move || {
            let view = admin_session(&inner, &parts, true)?;
            let value = parse_json(&bytes)?;
            let target = inner.meta.member(id)?.filter(|m| m.organisation == view.member.organisation).ok_or_else(|| ApiError::NotFound(format!("no member {id}")))?;
            let role = match field::<Option<String>>(&value, "role")? {
                Some(text) => meta::Role::parse(&text).ok_or_else(|| ApiError::BadRequest(format!("role must be owner, admin, analyst or viewer, got {text:?}")))?,
                None => target.role,
            };
            if (role == meta::Role::Owner || target.role == meta::Role::Owner) && view.member.role != meta::Role::Owner {
                return Err(ApiError::Forbidden("only owners may make or change owners".to_owned()));
            }
            let can_export = field::<Option<bool>>(&value, "export")?.unwrap_or(target.can_export);
            let can_view_pii = field::<Option<bool>>(&value, "view_pii")?.unwrap_or(target.can_view_pii);
            let projects: Vec<events::ProjectId> = match field::<Option<Vec<u32>>>(&value, "projects")? {
                Some(list) => list.into_iter().map(events::ProjectId).collect(),
                None => target.projects.clone(),
            };
            inner.meta.set_member_access(id, role, can_export, can_view_pii, &projects)?;
            let detail = json!({"member": id, "role": {"from": target.role.as_str(), "to": role.as_str()}, "export": {"from": target.can_export, "to": can_export}, "view_pii": {"from": target.can_view_pii, "to": can_view_pii}, "projects": projects.iter().map(|p| p.0).collect::<Vec<_>>()});
            audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "member.change", Outcome::Ok, &source_of(&inner, &parts), detail.clone())?;
            Ok(json_response(StatusCode::OK, &detail))
        })
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn disable_member(State(state): State<AppState>, Path(id): Path<i64>, request: Request) -> Response {
    let result: Result<Response, ApiError> = async {
        let (parts, _) = request.into_parts();
        let inner = state.inner.clone();
        blocking(move || {
            let view = admin_session(&inner, &parts, true)?;
            let target = inner.meta.member(id)?.filter(|m| m.organisation == view.member.organisation).ok_or_else(|| ApiError::NotFound(format!("no member {id}")))?;
            if target.role == meta::Role::Owner && view.member.role != meta::Role::Owner {
                return Err(ApiError::Forbidden("only owners may disable owners".to_owned()));
            }
            let sessions = inner.meta.disable_member(id)?;
            audit(&inner, member_actor(&view.member, Some(&view.session.short_id)), "member.disable", Outcome::Ok, &source_of(&inner, &parts), json!({"member": id, "sessions_revoked": sessions}))?;
            Ok(json_response(StatusCode::OK, &json!({"member": id, "sessions_revoked": sessions})))
        })
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
