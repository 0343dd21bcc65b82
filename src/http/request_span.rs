//! The span of each request, as tracing-actix-web's default but with credentials taken out of
//! the logged target (a stream's `?access_token=` never reaches a log line or a span), the
//! request id the response echoes (`middleware::observe`), and the client's address as the
//! trusted proxies tell it (the default believes any `X-Forwarded-For`). When traces are
//! exported, the span continues the caller's trace (a W3C `traceparent` header) or starts one.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::{web, Error, HttpMessage};
use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use super::edge;
use super::middleware::EchoedRequestId;
use super::state::AppState;
use crate::domain::TraceParent;
use crate::telemetry;

/// Query parameters that carry a credential.
const SECRET_PARAMETERS: [&str; 1] = ["access_token"];

pub struct LoggedRequest;

impl RootSpanBuilder for LoggedRequest {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<EchoedRequestId>()
            .and_then(|id| id.0.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        let proxies =
            request.app_data::<web::Data<AppState>>().map_or(&[][..], |state| state.settings.http.proxies.as_slice());
        let client_ip = edge::client_address(request.peer_addr().map(|a| a.ip()), request.headers(), proxies);
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %format_args!("{} {}", request.method(), request.match_pattern().as_deref().unwrap_or("unmatched")),
            http.method = %request.method(),
            http.client_ip = %client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            http.target = %redacted_target(request.uri()),
            http.status_code = Empty,
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = %request_id,
            exception.message = Empty,
            exception.details = Empty,
            trace_id = Empty,
        );
        if telemetry::exporting() {
            let parent =
                request.headers().get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceParent::parse);
            telemetry::continue_trace(&span, parent.as_ref());
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The path and query, each secret parameter's value replaced.
pub fn redacted_target(uri: &Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else { return path.to_owned() };
    let parameters: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.contains(&name) => format!("{name}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", parameters.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_in_the_query_is_redacted_and_nothing_else() {
        let uri: Uri = "/ws/loans/x?after=3&access_token=lfa1.secret.0.abc&x=1".parse().unwrap();
        assert_eq!(redacted_target(&uri), "/ws/loans/x?after=3&access_token=[redacted]&x=1");
        let plain: Uri = "/api/v1/loans?limit=2".parse().unwrap();
        assert_eq!(redacted_target(&plain), "/api/v1/loans?limit=2");
        assert_eq!(redacted_target(&"/health/live".parse().unwrap()), "/health/live");
    }
}
