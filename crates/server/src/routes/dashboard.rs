//! The dashboard: a TypeScript app (web/, bundled into web/dist by the build
//! script) embedded in the binary and served from `/`, so `hearth serve`
//! needs no second server and no Node at run time. Its pages name their
//! state in the URL's hash; `/enrol` serves the same page for enrolment
//! links. The Content-Security-Policy allows this origin's script and
//! styles only: no inline script, no third party.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist/index.html"));
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist/app.js"))),
    ("app.css", "text/css; charset=utf-8", include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist/app.css"))),
    ("licenses.txt", "text/plain; charset=utf-8", include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist/licenses.txt"))),
];

/// The policy of the dashboard's pages (the API's is stricter still).
pub(crate) const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn with_type(body: &'static [u8], content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    response
}

/// `GET /` and `GET /enrol`: the app's one page.
pub(crate) async fn page() -> Response {
    with_type(INDEX, "text/html; charset=utf-8")
}

/// `GET /assets/{file}`.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => with_type(body, content_type),
        None => crate::error::ApiError::NotFound(format!("no asset {file:?}")).into_response(),
    }
}
