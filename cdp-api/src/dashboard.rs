//! Serves the built dashboard (`dashboard/dist/`, embedded at compile time by `build.rs`) at
//! `/admin/cdp/`. Hashed assets are cached for a year; `index.html` is revalidated, carries a
//! strict content security policy, and is the fallback for any other path without a file
//! extension (the dashboard routes by URL hash, but a deep link should still load it). When the
//! binary was built without the dashboard, every path answers 404 saying how to build it.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));

/// What the page may load: only this origin, plus the inline styles the chart library sets.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'self'; form-action 'self'";

/// Whether the dashboard was built into this binary.
pub fn is_built() -> bool {
    FILES.iter().any(|(p, _)| *p == "index.html")
}

/// `GET /admin/cdp/`.
pub async fn index() -> Response {
    serve("")
}

/// `GET /admin/cdp/{*path}`.
pub async fn file(Path(path): Path<String>) -> Response {
    serve(&path)
}

/// `GET /admin`, `/admin/` and `/admin/cdp`: to the dashboard.
pub async fn to_dashboard() -> Redirect {
    Redirect::permanent("/admin/cdp/")
}

fn serve(path: &str) -> Response {
    if !is_built() {
        return not_built();
    }
    let path = path.trim_start_matches('/');
    let found = FILES.iter().find(|(p, _)| *p == path && !path.is_empty());
    match found {
        Some((p, bytes)) => {
            let cache = if p.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let mut response = (
                [
                    (header::CONTENT_TYPE, content_type(p)),
                    (header::CACHE_CONTROL, cache),
                ],
                *bytes,
            )
                .into_response();
            if p.ends_with(".html") {
                add_page_headers(&mut response);
            }
            response
        }
        None if has_extension(path) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{path} is not part of the dashboard build\n"),
        )
            .into_response(),
        None => index_page(),
    }
}

fn index_page() -> Response {
    let Some((_, bytes)) = FILES.iter().find(|(p, _)| *p == "index.html") else {
        return not_built();
    };
    // The build refers to its assets relatively (`./assets/...`); a base element keeps that
    // working when the page is served for a deeper path.
    let html = String::from_utf8_lossy(bytes).replacen(
        "<head>",
        "<head>\n    <base href=\"/admin/cdp/\" />",
        1,
    );
    let mut response = ([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response();
    add_page_headers(&mut response);
    response
}

fn add_page_headers(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
}

fn not_built() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!doctype html><meta charset=\"utf-8\"><title>Dashboard not built</title>\
             <h1>The dashboard is not built into this binary</h1>\
             <p>Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>dashboard/</code>, \
             then rebuild <code>cdp</code> (<code>scripts/run</code> does both).</p>",
        ),
    )
        .into_response()
}

fn has_extension(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
