//! What wraps every request. Outermost, `observe`: the request id (echoed, or assigned) and the
//! HTTP metrics, by route *pattern*. Then `guard`: the `Host` (421) and the `Origin` (403). Then
//! CORS (closed unless origins are configured). Then `protect`: declared body sizes on every
//! route, JSON bodies on `POST` (415), and the per-client rate limit on submissions.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{Condition, Next};
use actix_web::{web, Error, HttpMessage};

use super::body_deadline;
use super::edge;
use super::errors::ApiError;
use super::state::AppState;
use crate::settings::HttpSettings;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID: usize = 128;
/// The route the rate limit applies to (POST only).
const SUBMISSIONS: &str = "/api/v1/loans";

/// The request's id as the response echoes it, for the request's span in the log.
#[derive(Clone)]
pub struct EchoedRequestId(pub HeaderValue);

/// Assign or echo `x-request-id`, and count and time the request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = incoming_request_id(&req).unwrap_or_else(new_request_id);
    req.extensions_mut().insert(EchoedRequestId(request_id.clone()));
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<AppState>>().map(|state| state.metrics.clone());
    let result = next.call(req).await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(response) => {
            let mut response = response.map_into_boxed_body();
            if let Some(metrics) = metrics {
                let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
                metrics.observe_http(method, &route, response.status().as_u16(), seconds);
            }
            response.headers_mut().insert(REQUEST_ID, request_id);
            Ok(response)
        }
        Err(err) => {
            if let Some(metrics) = metrics {
                let status = err.as_response_error().status_code().as_u16();
                metrics.observe_http(method, "unmatched", status, seconds);
            }
            Err(err)
        }
    }
}

/// A client's id is kept if it is short and plain; anything else gets replaced.
fn incoming_request_id(req: &ServiceRequest) -> Option<HeaderValue> {
    let value = req.headers().get(&REQUEST_ID)?;
    let text = value.to_str().ok()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    (!text.is_empty() && text.len() <= MAX_REQUEST_ID && text.chars().all(plain)).then(|| value.clone())
}

fn new_request_id() -> HeaderValue {
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid header value")
}

/// Methods as a small fixed set of label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Refuse a request for a host this node does not answer (421; the probes answer any host),
/// and one from an origin that is neither the server's own nor listed (403; a request without
/// `Origin` passes), before CORS and any handler.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let http = &state.settings.http;
    let headers = req.headers();
    let host =
        headers.get(header::HOST).and_then(|v| v.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !edge::is_probe(req.path()) {
        if let Some(host) = edge::misdirected(&http.hosts, host) {
            let refusal = ApiError::MisdirectedHost(host.to_owned());
            return Ok(req.error_response(refusal).map_into_boxed_body());
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let connection = if req.app_config().secure() { "https" } else { "http" };
        let scheme = edge::client_scheme(req.peer_addr().map(|a| a.ip()), headers, &http.proxies, connection);
        if !edge::origin_allowed(origin, scheme, host, &http.allowed_origins) {
            let refusal = ApiError::ForeignOrigin(origin.to_owned());
            return Ok(req.error_response(refusal).map_into_boxed_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// Refuse a declared body over `http.max_body_bytes` on any route (413), a `POST` body that is
/// not JSON (415), and submissions over the client's rate (429 with `Retry-After`), before any
/// handler runs: nothing is stored. A body must then arrive within `http.body_timeout_ms`.
pub async fn protect(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let limit = state.settings.http.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Ok(req.error_response(ApiError::PayloadTooLarge { limit }).map_into_boxed_body());
    }
    if req.method() == Method::POST && edge::has_body(req.headers()) && !edge::is_json(req.headers()) {
        return Ok(req.error_response(ApiError::UnsupportedMediaType).map_into_boxed_body());
    }
    if state.rate_limiter.enabled() && req.method() == Method::POST && req.path() == SUBMISSIONS {
        let peer = req.peer_addr().map(|a| a.ip());
        let client = edge::client_address(peer, req.headers(), &state.settings.http.proxies)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Err(retry_after_secs) = state.rate_limiter.check(client) {
            return Ok(req.error_response(ApiError::RateLimited { retry_after_secs }).map_into_boxed_body());
        }
    }
    body_deadline::limit(&mut req, state.settings.http.body_timeout());
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// CORS: closed (no `Access-Control-*` header at all, so browsers keep cross-origin answers from
/// pages and refuse to send anything but simple requests) unless `http.allowed_origins` lists
/// origins; `*` allows any. Requests from other origins never get this far (`guard`).
pub fn cors(settings: &HttpSettings) -> Condition<Cors> {
    let origins: Vec<&str> = settings.allowed_origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allowed_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
            REQUEST_ID,
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            REQUEST_ID,
            HeaderName::from_static("idempotency-replayed"),
        ])
        .max_age(3600);
    for &origin in &origins {
        if origin == "*" {
            cors = cors.allow_any_origin();
        } else if origin.parse::<actix_web::http::Uri>().is_ok_and(|uri| uri.scheme().is_some()) {
            cors = cors.allowed_origin(origin);
        } else {
            tracing::error!(origin, "http.allowed_origins: not an origin (scheme://host[:port]); ignored");
        }
    }
    Condition::new(!origins.is_empty(), cors)
}
