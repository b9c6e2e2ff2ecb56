//! The web client (`signaling/web/`), embedded in the binary at build time and served at `/`.
//!
//! Release builds carry the files inside the binary (containers need nothing beside it); debug
//! builds read them from `signaling/web/` so page edits show without a rebuild. Tests, tools and
//! `node_modules` are never served.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "node_modules/*"]
#[exclude = "test/*"]
#[exclude = "*/test/*"]
#[exclude = "*/tools/*"]
#[exclude = "package*.json"]
#[exclude = "*.md"]
struct WebAssets;

/// Serves one file of the web client; `/` is `index.html`. Unknown paths are 404.
pub(crate) async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = WebAssets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (headers, file.data).into_response()
}

/// Module scripts and workers need a JavaScript type, or the browser refuses them.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}
