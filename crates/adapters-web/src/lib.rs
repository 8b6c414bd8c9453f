//! Tandem's web app: the pages a person opens (`/` for hosts, `/join#<invite
//! token>`, `/s/{session id}`) and the ES modules, style sheet and icon they load
//! from `/assets/<version>/...`. Everything is embedded in the binary at build
//! time (no Node, no bundler, no CDN); the pages are a client of the `/v1` API
//! like any other, and keep their tokens in the browser.
//!
//! One module is written by the server rather than embedded: `js/catalog.js`,
//! the event types of the domain's catalog (`EventSource` dispatches frames by
//! type, so the page must name every one), so that the page and the server
//! can never disagree about the catalog.
//!
//! Every answer carries a strict Content-Security-Policy (no inline script or
//! style, no `eval`, `connect-src 'self'`, no framing), `X-Frame-Options: DENY`,
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. Asset
//! URLs carry a version computed from the assets' contents, so the assets are
//! cached for good; pages are revalidated with an `ETag` on every load.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;
use sha2::{Digest, Sha256};
use tandem_domain::EventType;

/// The static files the pages load, served under `/assets/<version>/`.
#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

/// The HTML pages; `{{assets}}` in them becomes `/assets/<version>`.
#[derive(Embed)]
#[folder = "pages/"]
struct Pages;

/// The policy every answer carries: scripts, styles, images and connections only
/// from this origin; nothing inline, no `eval`, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The path, under the assets, of the module the server writes from the catalog.
const CATALOG_MODULE: &str = "js/catalog.js";

/// What the assets' URLs and the pages' caching need, computed once.
struct Site {
    /// A digest of every asset's path and contents: changes whenever one does.
    version: String,
    /// `js/catalog.js`: the event types, written from the domain's catalog.
    catalog: Page,
    /// The pages with their asset URLs filled in, and their `ETag`s.
    index: Page,
    join: Page,
    session: Page,
}

/// A page or a written module, with its `ETag`.
struct Page {
    body: Vec<u8>,
    etag: String,
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let catalog = catalog_module();
        let mut digest = Sha256::new();
        digest.update(CATALOG_MODULE.as_bytes());
        digest.update([0]);
        digest.update(Sha256::digest(&catalog));
        let mut paths: Vec<_> = Assets::iter().collect();
        paths.sort();
        for path in &paths {
            if let Some(file) = Assets::get(path) {
                digest.update(path.as_bytes());
                digest.update([0]);
                digest.update(file.metadata.sha256_hash());
            }
        }
        let version = hex(&digest.finalize()[..8]);
        let etag = |bytes: &[u8]| format!("\"{}\"", hex(&Sha256::digest(bytes)[..12]));
        let page = |name: &str| {
            let template = Pages::get(name)
                .map(|file| String::from_utf8_lossy(&file.data).into_owned())
                .unwrap_or_default();
            let html = template
                .replace("{{assets}}", &format!("/assets/{version}"))
                .into_bytes();
            let etag = etag(&html);
            Page { body: html, etag }
        };
        Site {
            catalog: Page {
                etag: etag(&catalog),
                body: catalog,
            },
            index: page("index.html"),
            join: page("join.html"),
            session: page("session.html"),
            version,
        }
    })
}

/// `export const EVENT_TYPES = [...]`: every event type of the catalog.
fn catalog_module() -> Vec<u8> {
    let names: Vec<String> = EventType::ALL
        .iter()
        .map(|event_type| format!("  \"{}\",\n", event_type.as_str()))
        .collect();
    format!(
        "// Written by the server from its event catalog: every event type, in the\n\
         // catalog's order. EventSource dispatches each frame under its type.\n\
         export const EVENT_TYPES = Object.freeze([\n{}]);\n",
        names.concat()
    )
    .into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// The version in this build's asset URLs (`/assets/<version>/...`).
pub fn assets_version() -> &'static str {
    &site().version
}

/// The web app's routes: `/`, `/join`, `/s/{id}` and `/assets/{version}/{*path}`.
/// It has no fallback of its own, so that it merges with the API's router.
pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { page(&site().index, &headers) }),
        )
        .route(
            "/join",
            get(|headers: HeaderMap| async move { page(&site().join, &headers) }),
        )
        .route("/s/{id}", get(session_page))
        .route("/assets/{version}/{*path}", get(asset))
}

async fn session_page(Path(id): Path<String>, headers: HeaderMap) -> Response {
    if uuid::Uuid::try_parse(&id).is_err() {
        return not_found();
    }
    page(&site().session, &headers)
}

fn page(page: &Page, request: &HeaderMap) -> Response {
    cached(
        request,
        &page.etag,
        "text/html; charset=utf-8",
        // Revalidated on every load: a page names the assets of its build.
        "no-cache",
        page.body.clone(),
    )
}

async fn asset(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let (etag, body) = if path == CATALOG_MODULE {
        let catalog = &site().catalog;
        (catalog.etag.clone(), catalog.body.clone())
    } else if let Some(file) = Assets::get(&path) {
        let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
        (etag, file.data.into_owned())
    } else {
        return not_found();
    };
    let Some(content_type) = content_type(&path) else {
        return not_found();
    };
    // An asset under this build's version never changes; under another (a page
    // of an older build), it is this build's file, to be checked again.
    let cache = if version == site().version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    cached(&headers, &etag, content_type, cache, body)
}

/// The media type of an asset, by its extension; `None` for a kind this app
/// does not serve.
fn content_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.').map(|(_, extension)| extension)?;
    Some(match extension {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// A `200` with the body, or a `304` when the client holds this `etag`.
fn cached(
    request: &HeaderMap,
    etag: &str,
    content_type: &'static str,
    cache_control: &'static str,
    body: Vec<u8>,
) -> Response {
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    secure(headers);
    response
}

fn not_found() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not found\n",
    )
        .into_response();
    secure(response.headers_mut());
    response
}

/// The security headers of every answer of the web app.
fn secure(headers: &mut HeaderMap) {
    const HEADERS: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests;
