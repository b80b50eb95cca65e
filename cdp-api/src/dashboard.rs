//! Serves the built dashboard (`dashboard/dist/`, embedded at compile time by `build.rs`) at
//! `/admin/cdp/`, by the rules of `cdp_answers::admin` (the Worker serves the same build by
//! them): hashed assets cached for a year, `index.html` revalidated with a strict content
//! security policy and the page for any path without a file extension. When the binary was
//! built without the dashboard, every path answers 404 saying how to build it.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use cdp_answers::admin::{self, Served};

include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));

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
    match admin::served(path) {
        Served::Index => index_page(),
        Served::File {
            path,
            content_type,
            cache,
            page,
        } => match FILES.iter().find(|(p, _)| *p == path) {
            Some((_, bytes)) => {
                let mut response = (
                    [
                        (header::CONTENT_TYPE, content_type),
                        (header::CACHE_CONTROL, cache),
                    ],
                    *bytes,
                )
                    .into_response();
                if page {
                    add_page_headers(&mut response);
                }
                response
            }
            None => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                admin::missing(path),
            )
                .into_response(),
        },
    }
}

fn index_page() -> Response {
    let Some((_, bytes)) = FILES.iter().find(|(p, _)| *p == "index.html") else {
        return not_built();
    };
    let html = admin::index_html(&String::from_utf8_lossy(bytes));
    let mut response = ([(header::CACHE_CONTROL, admin::INDEX_CACHE)], Html(html)).into_response();
    add_page_headers(&mut response);
    response
}

fn add_page_headers(response: &mut Response) {
    let h = response.headers_mut();
    for (name, value) in admin::PAGE_HEADERS {
        h.insert(name, header::HeaderValue::from_static(value));
    }
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
