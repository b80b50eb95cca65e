//! Who may use the dashboard and its API (`/admin/cdp/*`, `/api/cdp/*`), which expose customer
//! data.
//!
//! With an admin token configured, a request needs either `Authorization: Bearer <token>` or
//! the session cookie that the login page (`/admin/login`, a POST form) sets. Tokens are
//! compared in constant time (as SHA-256 digests, so not even the length leaks), never read
//! from a URL, never logged. The cookie holds no token: it is an expiry and an HMAC-SHA256 of
//! it keyed by the token (`v1.<unix expiry>.<hex mac>`), HttpOnly, SameSite=Strict, Secure when
//! the request came over https, valid for [`SESSION_HOURS`]; changing the token signs everyone
//! out.
//!
//! Without a token, these routes answer only clients on this machine (a loopback peer address
//! and no proxy headers, since a reverse proxy on the same host would make every visitor look
//! local); the server says so at start-up. The collector itself (`/collect`, `/health`,
//! `/cdp.js`) is never behind this.

use crate::reply::AppError;
use crate::server::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::net::SocketAddr;

pub use cdp_answers::access::{AdminToken, COOKIE, SESSION_HOURS};
use cdp_answers::admin::{self, WRONG_TOKEN_DELAY_MS};
pub use cdp_answers::admin::{DASHBOARD_PATH, LOGIN_PATH};

/// Shortest admin token accepted (checked in [`crate::settings`]).
pub const ADMIN_TOKEN_MIN_CHARS: usize = 16;

/// How admin routes are guarded.
#[derive(Debug, Clone)]
pub enum Access {
    /// A token (bearer or login session) is required.
    Token(AdminToken),
    /// No token configured: only clients on this machine.
    LoopbackOnly,
}

impl Access {
    /// From the configured token, if any.
    pub fn new(token: Option<&str>) -> Access {
        match token {
            Some(t) => Access::Token(AdminToken::new(t)),
            None => Access::LoopbackOnly,
        }
    }

    /// Whether the request may use an admin route.
    fn admits(&self, headers: &HeaderMap, peer: Option<SocketAddr>, now: DateTime<Utc>) -> bool {
        match self {
            Access::Token(token) => {
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let cookies = headers
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                token.admits(authorization, cookies, now)
            }
            Access::LoopbackOnly => peer.is_some_and(|p| p.ip().is_loopback()) && !proxied(headers),
        }
    }
}

/// What the server logs at start-up about admin access, and whether it is a warning. Without
/// a token on an address other hosts can reach, the warning is loud: the dashboard is then
/// guarded only by the peer address and the absence of [`FORWARDING_HEADERS`], and a proxy
/// that adds none of them would open it to everyone behind it.
pub fn startup_notice(access: &Access, listen: SocketAddr) -> (bool, String) {
    match access {
        Access::Token(_) => (
            false,
            "admin routes (/admin/cdp/, /api/cdp/) need the admin token: \
             Authorization: Bearer, or a session from /admin/login"
                .to_owned(),
        ),
        Access::LoopbackOnly if listen.ip().is_loopback() => (
            false,
            "no admin token configured: /admin/cdp/ and /api/cdp/ answer only clients on this \
             machine (loopback, no forwarding headers); set --admin-token / CDP_ADMIN_TOKEN to \
             open them to other hosts"
                .to_owned(),
        ),
        Access::LoopbackOnly => (
            true,
            format!(
                "NO ADMIN TOKEN WHILE LISTENING ON {listen}, AN ADDRESS OTHER HOSTS CAN REACH. \
                 /admin/cdp/ and /api/cdp/ (customer data) answer loopback clients that send no \
                 forwarding header; a proxy or tunnel on this machine that forwards without \
                 one of {} opens them to everyone behind it. Set --admin-token / \
                 CDP_ADMIN_TOKEN (at least {ADMIN_TOKEN_MIN_CHARS} characters), or listen on \
                 127.0.0.1",
                FORWARDING_HEADERS.join(", ")
            ),
        ),
    }
}

/// Headers that proxies, tunnels and CDNs add to say whom they forward for. A request carrying
/// any of them came through something on this machine on behalf of someone who may be
/// anywhere, so without a token it is not a local client. The one list of them.
pub const FORWARDING_HEADERS: [&str; 16] = [
    // RFC 7239 and its de-facto predecessors (nginx, HAProxy, Traefik, Caddy, AWS ALB).
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    // RFC 9110: every proxy in the chain may add itself.
    "via",
    // Cloudflare's edge and `cloudflared` tunnels.
    "cf-connecting-ip",
    "cf-connecting-ipv6",
    "cdn-loop",
    // Akamai and Cloudflare Enterprise.
    "true-client-ip",
    // Azure Front Door, assorted load balancers.
    "x-client-ip",
    "x-azure-clientip",
    // Fly.io's proxy.
    "fly-client-ip",
    // Rackspace and other cluster load balancers.
    "x-cluster-client-ip",
    // Fastly.
    "fastly-client-ip",
    // Envoy and Istio ingress.
    "x-envoy-external-address",
    // Google Cloud load balancers and ingress controllers that keep the original chain.
    "x-original-forwarded-for",
];

/// Whether a request carries a header from [`FORWARDING_HEADERS`].
fn proxied(headers: &HeaderMap) -> bool {
    FORWARDING_HEADERS.iter().any(|h| headers.contains_key(*h))
}

/// Whether the browser reached us over https (directly or through a proxy that says so).
fn over_https(headers: &HeaderMap) -> bool {
    let says = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    says("x-forwarded-proto").is_some_and(|p| p.split(',').next().map(str::trim) == Some("https"))
        || says("forwarded").is_some_and(|f| f.contains("proto=https"))
}

/// The middleware in front of every admin route. API answers get `Cache-Control: no-store`.
pub async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let is_api = req.uri().path().starts_with("/api/");
    if !app.access.admits(req.headers(), peer, app.clock.now()) {
        return match (&app.access, is_api) {
            (Access::Token(_), true) => AppError::Unauthorized.into_response(),
            (Access::Token(_), false) => Redirect::to(LOGIN_PATH).into_response(),
            (Access::LoopbackOnly, _) => AppError::Forbidden(
                "no admin token is configured, so the dashboard and its API answer only clients \
                 on this machine; start cdp serve with --admin-token (CDP_ADMIN_TOKEN)"
                    .to_owned(),
            )
            .into_response(),
        };
    }
    let mut response = next.run(req).await;
    if is_api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The admin token.
    pub token: String,
}

/// `GET /admin/login`.
pub async fn login_page(State(app): State<AppState>) -> Response {
    match app.access {
        Access::Token(_) => page(StatusCode::OK, None),
        Access::LoopbackOnly => page(
            StatusCode::OK,
            Some(
                "No admin token is configured: the dashboard is open to this machine only. \
                 <a href=\"/admin/cdp/\">Open the dashboard</a>.",
            ),
        ),
    }
}

/// `POST /admin/login`: sets the session cookie and sends the browser to the dashboard.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Access::Token(token) = &app.access else {
        return Redirect::to(DASHBOARD_PATH).into_response();
    };
    if !token.matches(form.token.trim()) {
        tokio::time::sleep(std::time::Duration::from_millis(WRONG_TOKEN_DELAY_MS)).await;
        return page(StatusCode::UNAUTHORIZED, Some(admin::WRONG_TOKEN));
    }
    let cookie = admin::session_cookie(token, app.clock.now(), over_https(&headers));
    let mut response = Redirect::to(DASHBOARD_PATH).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /admin/logout`: clears the session cookie.
pub async fn logout() -> Response {
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(admin::CLEARED_COOKIE),
    );
    response
}

fn page(status: StatusCode, message: Option<&str>) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, admin::LOGIN_CSP),
        ],
        Html(admin::login_html(message)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-08 12:00 UTC.
    fn noon() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_971_200, 0).unwrap_or_default()
    }

    #[test]
    fn loopback_only_refuses_remote_and_proxied_clients() {
        let access = Access::LoopbackOnly;
        let now = noon();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap_or_else(|e| panic!("{e}"));
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(access.admits(&HeaderMap::new(), Some(local), now));
        assert!(!access.admits(&HeaderMap::new(), Some(remote), now));
        assert!(!access.admits(&HeaderMap::new(), None, now));
        // Written out rather than read from the list, so dropping a header from it fails here.
        for name in [
            "forwarded",
            "x-forwarded-for",
            "x-real-ip",
            "cf-connecting-ip",
            "true-client-ip",
            "x-client-ip",
            "fly-client-ip",
            "x-cluster-client-ip",
            "fastly-client-ip",
            "via",
            "cdn-loop",
        ] {
            let mut proxied = HeaderMap::new();
            proxied.insert(name, HeaderValue::from_static("198.51.100.1"));
            assert!(!access.admits(&proxied, Some(local), now), "{name}");
            let mut upper = HeaderMap::new();
            upper.insert(
                axum::http::HeaderName::from_bytes(name.to_ascii_uppercase().as_bytes())
                    .unwrap_or_else(|e| panic!("{e}")),
                HeaderValue::from_static(""),
            );
            assert!(!access.admits(&upper, Some(local), now), "{name}, empty");
        }
    }

    #[test]
    fn start_up_warns_loudly_without_a_token_on_a_reachable_address() {
        let addr = |a: &str| a.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{e}"));
        let none = Access::LoopbackOnly;
        let (warn, text) = startup_notice(&none, addr("0.0.0.0:8080"));
        assert!(warn && text.starts_with("NO ADMIN TOKEN"), "{text}");
        assert!(
            text.contains("cf-connecting-ip") && text.contains("--admin-token"),
            "{text}"
        );
        let (warn, _) = startup_notice(&none, addr("192.0.2.10:8080"));
        assert!(warn, "a LAN address");
        let (warn, text) = startup_notice(&none, addr("127.0.0.1:8080"));
        assert!(
            !warn && text.contains("only clients on this machine"),
            "{text}"
        );
        let (warn, _) = startup_notice(&none, addr("[::1]:8080"));
        assert!(!warn, "IPv6 loopback");
        let token = Access::new(Some("0123456789abcdef"));
        assert!(!startup_notice(&token, addr("0.0.0.0:8080")).0);
    }
}
