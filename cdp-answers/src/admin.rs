//! The admin pages' rules, shared by `cdp serve` and the Worker: where the login and the
//! dashboard live, the login page and the session cookie it sets, and how a path under
//! `/admin/cdp/` maps onto the dashboard build (`dashboard/dist/`) with which headers. The
//! shells only hold the files (embedded in the binary, or Workers static assets) and send.

use crate::access::{AdminToken, COOKIE, SESSION_HOURS};
use chrono::{DateTime, Duration, Utc};

/// Where the login page lives (`GET` the form, `POST` the token).
pub const LOGIN_PATH: &str = "/admin/login";
/// Where signing out is posted.
pub const LOGOUT_PATH: &str = "/admin/logout";
/// Where the dashboard lives, and where a successful login lands.
pub const DASHBOARD_PATH: &str = "/admin/cdp/";
/// How long a wrong token waits before its answer, to slow guessing.
pub const WRONG_TOKEN_DELAY_MS: u64 = 300;

/// What the dashboard page may load: only this origin, plus the inline styles the chart
/// library sets.
pub const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' \
     'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'self'; form-action 'self'";
/// What the login page may do: its inline style, and post its form here.
pub const LOGIN_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/// The headers every dashboard HTML page carries besides its cache rule.
pub const PAGE_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", DASHBOARD_CSP),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// What the login page says when the token was wrong.
pub const WRONG_TOKEN: &str = "That token is not right.";

/// The login page, with an optional message above the form (HTML the caller wrote, never
/// user input).
pub fn login_html(message: Option<&str>) -> String {
    let message = message.map_or(String::new(), |m| format!("<p class=\"msg\">{m}</p>"));
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>CDP sign in</title>\
         <style>body{{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}\
         input,button{{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}}\
         .msg{{color:#9a3412}}</style></head><body><h1>CDP dashboard</h1>{message}\
         <form method=\"post\" action=\"{LOGIN_PATH}\" autocomplete=\"off\">\
         <label for=\"token\">Admin token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form></body></html>"
    )
}

/// The `Set-Cookie` value of a new session signed by `token` at `now`: HttpOnly,
/// SameSite=Strict, Secure when the browser came over https.
pub fn session_cookie(token: &AdminToken, now: DateTime<Utc>, https: bool) -> String {
    let value = token.session(now + Duration::hours(SESSION_HOURS));
    format!(
        "{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        SESSION_HOURS * 3600,
        if https { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session.
pub const CLEARED_COOKIE: &str = "cdp_admin_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";

/// The `token` field of an `application/x-www-form-urlencoded` login body, decoded as `cdp
/// serve`'s form extractor decodes it (`form_urlencoded`: `+` and percent escapes, invalid
/// escapes kept as written, invalid UTF-8 replaced), trimmed; `None` when it is absent.
pub fn form_token(body: &str) -> Option<String> {
    form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
}

/// What a path under `/admin/cdp/` (without that prefix) is in the dashboard build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served<'a> {
    /// A build file by name (the shell answers [`missing`] when it has no such file).
    File {
        /// Its path in the build.
        path: &'a str,
        /// Its content type.
        content_type: &'static str,
        /// Its cache rule: hashed assets for a year, anything else revalidated.
        cache: &'static str,
        /// Whether it is an HTML page (then it carries [`PAGE_HEADERS`]).
        page: bool,
    },
    /// The dashboard's page (`index.html` through [`index_html`]): the root, and any path
    /// without a file extension, since the dashboard routes by URL hash but a deep link
    /// should still load it.
    Index,
}

/// Where a path under `/admin/cdp/` leads.
pub fn served(path: &str) -> Served<'_> {
    let path = path.trim_start_matches('/');
    let has_extension = path
        .rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'));
    if !has_extension {
        return Served::Index;
    }
    Served::File {
        path,
        content_type: content_type(path),
        cache: if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        },
        page: path.ends_with(".html"),
    }
}

/// The cache rule of the dashboard's page.
pub const INDEX_CACHE: &str = "no-cache";

/// The built `index.html` as served for any dashboard path: the build refers to its assets
/// relatively (`./assets/...`), so a base element keeps that working for a deeper path.
pub fn index_html(built: &str) -> String {
    built.replacen(
        "<head>",
        &format!("<head>\n    <base href=\"{DASHBOARD_PATH}\" />"),
        1,
    )
}

/// The body of the 404 for a file the build does not have.
pub fn missing(path: &str) -> String {
    format!("{path} is not part of the dashboard build\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_onto_the_build() {
        assert_eq!(served(""), Served::Index);
        assert_eq!(served("visitor/abc"), Served::Index);
        let Served::File {
            path, cache, page, ..
        } = served("/assets/index-1a2b.js")
        else {
            panic!("a file");
        };
        assert_eq!(
            (path, cache, page),
            (
                "assets/index-1a2b.js",
                "public, max-age=31536000, immutable",
                false
            )
        );
        let Served::File { cache, page, .. } = served("index.html") else {
            panic!("a file");
        };
        assert_eq!((cache, page), ("no-cache", true));
        assert!(
            index_html("<html><head><title>x</title>").contains("<base href=\"/admin/cdp/\" />")
        );
    }

    #[test]
    fn the_login_form_token_is_decoded() {
        assert_eq!(form_token("token=abc%2B1+2"), Some("abc+1 2".to_owned()));
        assert_eq!(form_token("x=1&token=%20t%20"), Some("t".to_owned()));
        assert_eq!(form_token("x=1"), None);
        assert_eq!(
            form_token("token=%zz"),
            Some("%zz".to_owned()),
            "kept as written"
        );
        assert_eq!(
            form_token("token=%ff"),
            Some("\u{fffd}".to_owned()),
            "not UTF-8"
        );
    }

    #[test]
    fn cookies_are_strict_and_secure_over_https() {
        let token = AdminToken::new("0123456789abcdef");
        let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let plain = session_cookie(&token, now, false);
        assert!(plain.starts_with("cdp_admin_session=v1."), "{plain}");
        assert!(plain.contains("HttpOnly; SameSite=Strict") && !plain.contains("Secure"));
        assert!(session_cookie(&token, now, true).ends_with("; Secure"));
        assert!(!plain.contains("0123456789abcdef"));
    }
}
