//! The applicant's page at `/applications/{id}`: one page of HTML, CSS and vanilla JavaScript,
//! embedded in the binary like the dashboard and served with its headers. The files are open to
//! anyone; the applicant's token rides in the link's fragment, which browsers never send, and the
//! page's script uses it against the public API.

use actix_web::{web, HttpRequest, HttpResponse};

use super::dashboard::{asset, content_security_policy, get_or_head};

const INDEX_HTML: &str = include_str!("../../assets/applicant/index.html");
const APP_JS: &str = include_str!("../../assets/applicant/app.js");
const STYLE_CSS: &str = include_str!("../../assets/applicant/style.css");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/applications/{id}", get_or_head().to(index))
        .route("/assets/applicant/app.js", get_or_head().to(app_js))
        .route("/assets/applicant/style.css", get_or_head().to(style_css));
}

/// The same page for every id: the script reads the id from the path, and an unknown one gets
/// the API's answer (shown as such), so the page itself says nothing about which loans exist.
async fn index(req: HttpRequest) -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML, &content_security_policy(&req))
}

async fn app_js(req: HttpRequest) -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS, &content_security_policy(&req))
}

async fn style_css(req: HttpRequest) -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS, &content_security_policy(&req))
}
