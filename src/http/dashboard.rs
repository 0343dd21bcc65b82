//! The operator dashboard at `/`: one page of HTML, CSS and vanilla JavaScript, embedded in the
//! binary (it works offline: no CDN), served with security headers. It reads the public API
//! only; it never holds the admin token.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{guard, web, HttpRequest, HttpResponse};

const INDEX_HTML: &str = include_str!("../../assets/dashboard/index.html");
const STYLE_CSS: &str = include_str!("../../assets/dashboard/style.css");
const FAVICON_SVG: &str = include_str!("../../assets/dashboard/favicon.svg");

/// The page's scripts, each served at `/assets/dashboard/<name>`: the page itself and the live
/// stream, the application form, the work queue and its cards, the process view.
const SCRIPTS: [(&str, &str); 5] = [
    ("app.js", include_str!("../../assets/dashboard/app.js")),
    ("apply.js", include_str!("../../assets/dashboard/apply.js")),
    ("queue.js", include_str!("../../assets/dashboard/queue.js")),
    ("review.js", include_str!("../../assets/dashboard/review.js")),
    ("process.js", include_str!("../../assets/dashboard/process.js")),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", get_or_head().to(index))
        .route("/assets/dashboard/style.css", get_or_head().to(style_css))
        .route("/favicon.svg", get_or_head().to(favicon));
    for (name, script) in SCRIPTS {
        let serve = move |req: HttpRequest| async move {
            asset("text/javascript; charset=utf-8", script, &content_security_policy(&req))
        };
        cfg.route(&format!("/assets/dashboard/{name}"), get_or_head().to(serve));
    }
}

pub(super) fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

async fn index(req: HttpRequest) -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML, &content_security_policy(&req))
}

async fn style_css(req: HttpRequest) -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS, &content_security_policy(&req))
}

async fn favicon(req: HttpRequest) -> HttpResponse {
    asset("image/svg+xml", FAVICON_SVG, &content_security_policy(&req))
}

pub(super) fn asset(content_type: &'static str, body: &'static str, csp: &str) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if let Ok(csp) = HeaderValue::from_str(csp) {
        response.insert_header((header::CONTENT_SECURITY_POLICY, csp));
    }
    response.body(body)
}

/// Only this origin: scripts, styles, images, and connections (fetch, `EventSource`, and the
/// WebSocket, named explicitly by host because browsers differ on whether `'self'` covers `ws:`).
pub(super) fn content_security_policy(req: &HttpRequest) -> String {
    let mut connect = String::from("'self'");
    if let Some(host) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| is_plain_host(h)) {
        connect.push_str(&format!(" ws://{host} wss://{host}"));
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src {connect}; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// A `Host` header fit to echo into the policy: a name or address and a port, nothing else.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_policy_allows_only_this_origin_and_its_websocket() {
        let req = TestRequest::default().insert_header((header::HOST, "127.0.0.1:8080")).to_http_request();
        let csp = content_security_policy(&req);
        assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{csp}");
        assert!(csp.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }

    #[test]
    fn a_hostile_host_header_is_not_echoed() {
        let req = TestRequest::default().insert_header((header::HOST, "x; script-src *")).to_http_request();
        assert!(content_security_policy(&req).contains("connect-src 'self';"));
    }
}
