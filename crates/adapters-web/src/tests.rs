//! The web app's serving rules, and static checks of its assets that keep it
//! safe by construction: no inline script or style, no way to parse markup, every
//! import resolvable, and a first load within budget.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

async fn fetch(path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let response = router()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, headers, body.to_vec())
}

const PAGES: [&str; 3] = ["/", "/join", "/s/0190a7b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b"];

#[tokio::test]
async fn every_page_is_served_with_a_strict_policy_and_revalidated() {
    for path in PAGES {
        let (status, headers, body) = fetch(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let html = String::from_utf8(body).expect("utf-8");
        assert!(
            html.contains(&format!("/assets/{}/js/", assets_version())),
            "{path} loads this build's modules"
        );
        assert!(
            !html.contains("{{assets}}"),
            "{path}: every placeholder filled"
        );
        let etag = headers[header::ETAG].to_str().expect("etag").to_owned();
        let (again, headers, body) = fetch(path, Some(&etag)).await;
        assert_eq!(again, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty());
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
    }
}

#[test]
fn the_policy_allows_nothing_inline_nothing_evaluated_and_no_framing() {
    let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split("; ").collect();
    for needed in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(directives.contains(&needed), "{needed}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    assert!(!CONTENT_SECURITY_POLICY.contains("data:"));
}

#[tokio::test]
async fn assets_of_this_build_are_cached_for_good_and_others_revalidated() {
    let version = assets_version();
    let (status, headers, body) = fetch(&format!("/assets/{version}/js/session.js"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY
    );
    assert!(!body.is_empty());
    let etag = headers[header::ETAG].to_str().expect("etag").to_owned();
    let (status, headers, _) = fetch("/assets/0000000000000000/js/session.js", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an older page still gets this build's file"
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let (status, _, _) = fetch("/assets/0000000000000000/js/session.js", Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, headers, _) = fetch(&format!("/assets/{version}/style.css"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let version = assets_version();
    for path in [
        format!("/assets/{version}/js/nothing.js"),
        format!("/assets/{version}/../Cargo.toml"),
        "/s/not-a-session-id".to_owned(),
    ] {
        let (status, headers, _) = fetch(&path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}

/// Whether an asset's name has this extension.
fn has_extension(name: &str, extension: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .is_some_and(|found| found.eq_ignore_ascii_case(extension))
}

/// Every text asset and page, by name.
fn sources() -> Vec<(String, String)> {
    let assets = Assets::iter().filter_map(|path| {
        let file = Assets::get(&path)?;
        let text = String::from_utf8(file.data.into_owned()).ok()?;
        Some((format!("assets/{path}"), text))
    });
    let pages = Pages::iter().filter_map(|path| {
        let file = Pages::get(&path)?;
        Some((
            format!("pages/{path}"),
            String::from_utf8(file.data.into_owned()).ok()?,
        ))
    });
    assets.chain(pages).collect()
}

#[test]
fn pages_have_no_inline_script_style_or_handlers() {
    for (name, html) in sources()
        .iter()
        .filter(|(name, _)| has_extension(name, "html"))
    {
        for script in html.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap_or_default();
            assert!(tag.contains("src="), "{name}: an inline <script>");
            assert!(
                script
                    .split_once('>')
                    .is_some_and(|(_, rest)| rest.starts_with("</script>")),
                "{name}: a script with a body"
            );
        }
        assert!(!html.contains("<style"), "{name}: an inline <style>");
        assert!(!html.contains(" style="), "{name}: a style attribute");
        for handler in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            "javascript:",
        ] {
            assert!(!html.contains(handler), "{name}: {handler}");
        }
    }
}

#[test]
fn no_module_parses_markup_or_evaluates_code() {
    let forbidden = [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "createContextualFragment",
        "DOMParser",
        "setAttribute(\"style",
        ".style.",
    ];
    let modules: Vec<_> = sources()
        .into_iter()
        .filter(|(name, _)| has_extension(name, "js"))
        .collect();
    assert!(modules.len() >= 10, "the app's modules are embedded");
    for (name, source) in &modules {
        for word in forbidden {
            assert!(!source.contains(word), "{name} uses {word}");
        }
    }
}

#[test]
fn every_import_names_an_embedded_module() {
    for (name, source) in sources()
        .iter()
        .filter(|(name, _)| has_extension(name, "js"))
    {
        let dir = name
            .trim_start_matches("assets/")
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir);
        for line in source.lines().filter(|line| line.contains(" from \"")) {
            let target = line
                .split(" from \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            let relative = target
                .strip_prefix("./")
                .unwrap_or_else(|| panic!("{name}: import {target} is not relative"));
            let path = if dir.is_empty() {
                relative.to_owned()
            } else {
                format!("{dir}/{relative}")
            };
            assert!(
                Assets::get(&path).is_some() || path == CATALOG_MODULE,
                "{name} imports {path}, which is not embedded"
            );
        }
    }
}

#[tokio::test]
async fn the_catalog_module_names_every_event_type_of_the_domain() {
    let version = assets_version();
    let (status, headers, body) = fetch(&format!("/assets/{version}/{CATALOG_MODULE}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let module = String::from_utf8(body).expect("utf-8");
    let listed: Vec<&str> = module
        .lines()
        .filter_map(|line| line.trim().strip_prefix('"')?.strip_suffix("\","))
        .collect();
    let catalog: Vec<&str> = tandem_domain::EventType::ALL
        .iter()
        .map(|event_type| event_type.as_str())
        .collect();
    assert_eq!(listed, catalog, "every type, in the catalog's order");
    assert!(module.contains("export const EVENT_TYPES"));
    let etag = headers[header::ETAG].to_str().expect("etag").to_owned();
    let (again, _, _) = fetch(&format!("/assets/{version}/{CATALOG_MODULE}"), Some(&etag)).await;
    assert_eq!(again, StatusCode::NOT_MODIFIED);
    assert!(
        Assets::get(CATALOG_MODULE).is_none(),
        "the catalog is written by the server, never a stale copy in the assets"
    );
}

#[test]
fn a_first_load_stays_under_150_kib() {
    let total: usize = Assets::iter()
        .filter_map(|path| Assets::get(&path))
        .map(|file| file.data.len())
        .sum::<usize>()
        + Pages::get("session.html").map_or(0, |file| file.data.len());
    assert!(
        total < 150 * 1024,
        "every asset together plus a page is {total} bytes"
    );
}
