//! Saved dashboards: named, ordered lists of saved reports (tiles), each
//! named by its dashboard link (`insights?…`, `funnels?…`, `retention?…`),
//! so that a dashboard is shared by its own link and every tile reruns on
//! current data. Any member who reads may save; changes are audited.

use super::respond::{blocking, json_response};
use super::request::read_body;
use crate::audit_trail::record;
use crate::auth::authorised;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meta::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const NAME_MAX: usize = 100;
const TILES_MAX: usize = 24;
const REPORT_PAGES: [&str; 3] = ["insights", "funnels", "retention"];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tile {
    title: String,
    /// The report's dashboard link, without `#/`: `insights?event=…`.
    report: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardBody {
    name: String,
    #[serde(default)]
    tiles: Vec<Tile>,
}


fn checked(bytes: &[u8]) -> Result<(String, String), ApiError> {
    let body: DashboardBody = serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("expected {{\"name\", \"tiles\": [{{\"title\", \"report\"}}]}}: {e}")))?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(ApiError::BadRequest(format!("name must be 1 to {NAME_MAX} characters")));
    }
    if body.tiles.len() > TILES_MAX {
        return Err(ApiError::BadRequest(format!("a dashboard holds at most {TILES_MAX} tiles")));
    }
    for tile in &body.tiles {
        let page = tile.report.split('?').next().unwrap_or_default();
        if !REPORT_PAGES.contains(&page) || tile.report.len() > 2000 || tile.title.chars().count() > 200 {
            return Err(ApiError::BadRequest(format!("a tile's report is a link to one of {REPORT_PAGES:?} (like insights?event=Sign%20Up), under 2000 characters, with a title under 200")));
        }
    }
    Ok((name.to_owned(), serde_json::to_string(&body.tiles).unwrap_or_else(|_| "[]".to_owned())))
}

fn dashboard_json(dashboard: &meta::Dashboard) -> Value {
    json!({"id": dashboard.id, "name": dashboard.name, "tiles": serde_json::from_str::<Value>(&dashboard.tiles).unwrap_or(Value::Array(Vec::new())), "created_by": dashboard.created_by, "created_ms": dashboard.created_ms, "updated_ms": dashboard.updated_ms})
}

fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::BadRequest(format!("{text:?} is not a dashboard id")))
}


/// `GET /api/v1/dashboards`.
pub(crate) async fn list(State(state): State<AppState>, request: Request) -> Response {
    async {
        let project = authorised(&state, &request.into_parts().0, Scope::Read).await?.project;
        let inner = state.inner.clone();
        let dashboards = blocking(move || Ok(inner.meta.dashboards(project.id)?)).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"dashboards": dashboards.iter().map(dashboard_json).collect::<Vec<_>>()})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/dashboards` with `{name, tiles}`.
pub(crate) async fn create(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Read).await?;
        let (name, tiles) = checked(&read_body(body, 256 * 1024).await?)?;
        let inner = state.inner.clone();
        let saved = blocking(move || {
            let saved = inner.meta.create_dashboard(principal.project.id, &name, &tiles, &principal.actor.label())?;
            record(&inner, &principal, "dashboard.create", json!({"dashboard": saved.id, "name": saved.name}), None)?;
            Ok(saved)
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::CREATED, &dashboard_json(&saved)))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/dashboards/{id}`.
pub(crate) async fn get_one(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    async {
        let project = authorised(&state, &request.into_parts().0, Scope::Read).await?.project;
        let id = parse_id(&id)?;
        let inner = state.inner.clone();
        let found = blocking(move || inner.meta.dashboard(project.id, id)?.ok_or_else(|| ApiError::NotFound(format!("no dashboard {id}")))).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &dashboard_json(&found)))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `PUT /api/v1/dashboards/{id}` with `{name, tiles}`.
pub(crate) async fn update(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Read).await?;
        let id = parse_id(&id)?;
        let (name, tiles) = checked(&read_body(body, 256 * 1024).await?)?;
        let inner = state.inner.clone();
        let saved = blocking(move || {
            if !inner.meta.update_dashboard(principal.project.id, id, &name, &tiles)? {
                return Err(ApiError::NotFound(format!("no dashboard {id}")));
            }
            record(&inner, &principal, "dashboard.update", json!({"dashboard": id, "name": name}), None)?;
            inner.meta.dashboard(principal.project.id, id)?.ok_or_else(|| ApiError::NotFound(format!("no dashboard {id}")))
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &dashboard_json(&saved)))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /api/v1/dashboards/{id}`.
pub(crate) async fn delete(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    async {
        let principal = authorised(&state, &request.into_parts().0, Scope::Read).await?;
        let id = parse_id(&id)?;
        let inner = state.inner.clone();
        blocking(move || {
            if !inner.meta.delete_dashboard(principal.project.id, id)? {
                return Err(ApiError::NotFound(format!("no dashboard {id}")));
            }
            record(&inner, &principal, "dashboard.delete", json!({"dashboard": id}), None)
        })
        .await?;
        Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
