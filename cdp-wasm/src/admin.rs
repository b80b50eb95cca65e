//! The admin pages at the edge: `/admin` (to the dashboard), `/admin/login` (the form, and
//! the token posted to it), `/admin/logout`, and the dashboard build under `/admin/cdp/`,
//! which the Worker holds as static assets. The rules are `cdp_answers::admin` and
//! `cdp_answers::access`, as in `cdp serve`: the same login page, cookie and guard. The
//! Worker secret `CDP_ADMIN_TOKEN` is the token; without it the dashboard is closed (there is
//! no loopback at the edge) and the login page says so.

use crate::http::{refusal_named, Reply};
use crate::{at_ms, to_json, Engine};
use cdp_answers::access::AdminToken;
use cdp_answers::admin::{self, Served, DASHBOARD_PATH, LOGIN_PATH, LOGOUT_PATH};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// What the login page says when the Worker has no admin token.
const NO_TOKEN: &str = "No admin token is set for this Worker, so the dashboard is closed. \
     Set one with <code>wrangler secret put CDP_ADMIN_TOKEN</code>.";

/// What the shell does with an admin request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum AdminStep {
    /// Send this, after waiting `delay_ms` (a wrong token's answer is slowed).
    Reply { reply: Reply, delay_ms: u64 },
    /// Send the build's file `asset` (a path in `dashboard/dist/`) with these headers; when
    /// `index`, its text through [`Engine::dashboard_page`]. When the build has no such file,
    /// send `missing`.
    Asset {
        asset: String,
        index: bool,
        headers: Vec<(String, String)>,
        missing: Reply,
    },
}

fn reply(status: u16, headers: &[(&str, &str)], body: String) -> Reply {
    Reply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body,
    }
}

/// A redirect as axum's: `permanent` is 308, otherwise 303 See Other.
fn redirect(to: &str, permanent: bool, cookie: Option<&str>) -> Reply {
    let mut r = reply(
        if permanent { 308 } else { 303 },
        &[("location", to)],
        String::new(),
    );
    if let Some(c) = cookie {
        r.headers.push(("set-cookie".to_owned(), c.to_owned()));
    }
    r
}

fn login_page(status: u16, message: Option<&str>) -> Reply {
    reply(
        status,
        &[
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            ("content-security-policy", admin::LOGIN_CSP),
        ],
        admin::login_html(message),
    )
}

fn now_step(reply: Reply) -> AdminStep {
    AdminStep::Reply { reply, delay_ms: 0 }
}

#[wasm_bindgen]
impl Engine {
    /// An admin page request: its method and path, the posted form (the login's), the
    /// `Authorization` and `Cookie` headers, the admin token (the Worker secret; empty: no
    /// one is admitted), whether the browser came over https (the cookie is then Secure),
    /// and `now`. Returns JSON: `{"reply": {"reply", "delay_ms"}}` or `{"asset": {"asset",
    /// "index", "headers", "missing"}}`.
    #[allow(clippy::too_many_arguments)]
    pub fn admin_request(
        &self,
        method: &str,
        path: &str,
        form: Option<String>,
        authorization: Option<String>,
        cookie: Option<String>,
        admin_token: &str,
        https: bool,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let now = at_ms(now_ms)?;
        let token = (!admin_token.is_empty()).then(|| AdminToken::new(admin_token));
        let get = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
        let post = method.eq_ignore_ascii_case("POST");
        let wrong_method = || now_step(self.gate.error(&refusal_named("method_not_allowed"), None));
        let step = match path {
            "/admin" | "/admin/" | "/admin/cdp" if get => {
                now_step(redirect(DASHBOARD_PATH, true, None))
            }
            LOGIN_PATH if get => now_step(login_page(200, token.is_none().then_some(NO_TOKEN))),
            LOGIN_PATH if post => match &token {
                None => now_step(login_page(401, Some(NO_TOKEN))),
                Some(t) => match admin::form_token(form.as_deref().unwrap_or("")) {
                    Some(given) if t.matches(&given) => {
                        let c = admin::session_cookie(t, now, https);
                        now_step(redirect(DASHBOARD_PATH, false, Some(&c)))
                    }
                    _ => AdminStep::Reply {
                        reply: login_page(401, Some(admin::WRONG_TOKEN)),
                        delay_ms: admin::WRONG_TOKEN_DELAY_MS,
                    },
                },
            },
            LOGOUT_PATH if post => {
                now_step(redirect(LOGIN_PATH, false, Some(admin::CLEARED_COOKIE)))
            }
            "/admin" | "/admin/" | "/admin/cdp" | LOGIN_PATH | LOGOUT_PATH => wrong_method(),
            p => match p.strip_prefix(DASHBOARD_PATH) {
                Some(_) if !get => wrong_method(),
                Some(rest) => {
                    let admitted = token.as_ref().is_some_and(|t| {
                        t.admits(authorization.as_deref(), cookie.as_deref(), now)
                    });
                    if admitted {
                        asset_step(rest)
                    } else {
                        now_step(redirect(LOGIN_PATH, false, None))
                    }
                }
                None => now_step(self.gate.error(&refusal_named("not_found"), None)),
            },
        };
        Ok(to_json(&step))
    }

    /// The built `index.html` as the dashboard's page (see `cdp_answers::admin::index_html`).
    pub fn dashboard_page(&self, built: &str) -> String {
        admin::index_html(built)
    }
}

fn asset_step(rest: &str) -> AdminStep {
    let page_headers = || {
        admin::PAGE_HEADERS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    };
    match admin::served(rest) {
        Served::Index => AdminStep::Asset {
            asset: "index.html".to_owned(),
            index: true,
            headers: [
                (
                    "content-type".to_owned(),
                    "text/html; charset=utf-8".to_owned(),
                ),
                ("cache-control".to_owned(), admin::INDEX_CACHE.to_owned()),
            ]
            .into_iter()
            .chain(page_headers())
            .collect(),
            missing: not_built(),
        },
        Served::File {
            path,
            content_type,
            cache,
            page,
        } => {
            let mut headers = vec![
                ("content-type".to_owned(), content_type.to_owned()),
                ("cache-control".to_owned(), cache.to_owned()),
            ];
            if page {
                headers.extend(page_headers());
            }
            AdminStep::Asset {
                asset: path.to_owned(),
                index: false,
                headers,
                missing: reply(
                    404,
                    &[("content-type", "text/plain; charset=utf-8")],
                    admin::missing(path),
                ),
            }
        }
    }
}

/// The answer when the Worker was deployed without the dashboard build.
fn not_built() -> Reply {
    reply(
        404,
        &[("content-type", "text/plain; charset=utf-8")],
        "the dashboard is not part of this deployment: build it (npm ci && npm run build in \
         dashboard/) before wrangler deploy\n"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const TOKEN: &str = "an-admin-token-for-tests";
    const NOW: f64 = 1_780_000_000_000.0;

    fn engine() -> Engine {
        match Engine::new("", "", 0) {
            Ok(e) => e,
            Err(_) => panic!("the bundled configuration builds"),
        }
    }

    fn step(
        method: &str,
        path: &str,
        form: Option<&str>,
        auth: Option<&str>,
        token: &str,
    ) -> Value {
        let e = engine();
        let text = e
            .admin_request(
                method,
                path,
                form.map(str::to_owned),
                auth.map(str::to_owned),
                None,
                token,
                true,
                NOW,
            )
            .unwrap_or_else(|_| panic!("{method} {path}"));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    #[test]
    fn the_dashboard_needs_the_token_and_maps_onto_the_build() {
        let out = step("GET", "/admin/cdp/", None, None, TOKEN);
        assert_eq!(out["reply"]["reply"]["status"], 303);
        let bearer = format!("Bearer {TOKEN}");
        let index = step("GET", "/admin/cdp/", None, Some(&bearer), TOKEN);
        assert_eq!(index["asset"]["asset"], "index.html");
        assert_eq!(index["asset"]["index"], true);
        let js = step(
            "GET",
            "/admin/cdp/assets/a-1.js",
            None,
            Some(&bearer),
            TOKEN,
        );
        assert_eq!(js["asset"]["asset"], "assets/a-1.js");
        assert_eq!(js["asset"]["missing"]["status"], 404);
        let closed = step("GET", "/admin/cdp/", None, Some("Bearer "), "");
        assert_eq!(closed["reply"]["reply"]["status"], 303, "no token: no one");
    }

    #[test]
    fn the_login_sets_a_secure_session_or_waits_and_refuses() {
        let ok = step(
            "POST",
            LOGIN_PATH,
            Some(&format!("token={TOKEN}")),
            None,
            TOKEN,
        );
        let headers = ok["reply"]["reply"]["headers"].to_string();
        assert!(
            headers.contains("cdp_admin_session=v1.") && headers.contains("Secure"),
            "{headers}"
        );
        assert!(!headers.contains(TOKEN));
        let wrong = step("POST", LOGIN_PATH, Some("token=nope"), None, TOKEN);
        assert_eq!(wrong["reply"]["reply"]["status"], 401);
        assert_eq!(wrong["reply"]["delay_ms"], 300);
        let unset = step("GET", LOGIN_PATH, None, None, "");
        assert!(unset["reply"]["reply"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("CDP_ADMIN_TOKEN"));
        assert_eq!(
            step("DELETE", LOGIN_PATH, None, None, TOKEN)["reply"]["reply"]["status"],
            405
        );
    }
}
