//! The one HTTP client of `loanflow admin`: the operator token on every request, and every
//! answer that is not a success turned into a `Failure`.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::exit::Failure;

/// What the node's `/admin` scope answers for a path none of its routes takes.
const UNKNOWN_ADMIN_ROUTE: &str = "admin resource not found";
/// Longest part of an unexpected answer quoted in a message.
const QUOTED: usize = 300;

/// One request: the route as the API documents it (named when the node lacks it), and its path.
pub struct Call {
    method: Method,
    route: &'static str,
    path: String,
    query: Vec<(&'static str, String)>,
    idempotency_key: Option<String>,
}

impl Call {
    pub fn get(route: &'static str, path: String) -> Self {
        Self { method: Method::GET, route, path, query: Vec::new(), idempotency_key: None }
    }

    pub fn post(route: &'static str, path: String) -> Self {
        Self { method: Method::POST, ..Self::get(route, path) }
    }

    pub fn query(mut self, key: &'static str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    pub fn idempotency_key(mut self, key: Option<String>) -> Self {
        self.idempotency_key = key;
        self
    }
}

pub struct AdminClient {
    base: Url,
    authorization: HeaderValue,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the node at `url`, or why there can be none: the token is checked before
    /// anything is sent.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self, Failure> {
        let base = Url::parse(url).map_err(|e| Failure::Usage(format!("--url {url:?} is not a URL: {e}")))?;
        if base.scheme() != "http" || base.host_str().is_none() {
            return Err(Failure::Usage(format!(
                "--url {url:?}: give the node's http:// address (nodes serve plain HTTP; reach one behind TLS through a tunnel or `kubectl port-forward`)"
            )));
        }
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).ok_or(Failure::NoToken)?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Failure::Usage("LOANFLOW__ADMIN__TOKEN holds characters a header cannot carry".into()))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .build()
            .map_err(|e| Failure::Usage(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self { base, authorization, http })
    }

    /// Send the call; a success's JSON body (`null` when it has none).
    pub async fn send(&self, call: Call) -> Result<Value, Failure> {
        let url = self.base.join(&call.path).map_err(|e| Failure::Usage(format!("{}: {e}", call.path)))?;
        let mut request =
            self.http.request(call.method.clone(), url.clone()).header(AUTHORIZATION, self.authorization.clone());
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if call.method == Method::POST {
            request = request.json(&serde_json::json!({}));
        }
        let unreachable = |e: reqwest::Error| Failure::Unreachable { url: self.base.to_string(), cause: causes(&e) };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            if body.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&body)
                .map_err(|e| Failure::Unreadable { cause: format!("{e}: {}", quoted(&body)) });
        }
        Err(failure(status, &body, &call))
    }
}

fn failure(status: StatusCode, body: &[u8], call: &Call) -> Failure {
    // A problem document's `detail`, else the start of whatever came back.
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|problem| problem.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| quoted(body));
    let status_code = status.as_u16();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Failure::Auth { status: status_code, detail },
        StatusCode::NOT_FOUND if detail == UNKNOWN_ADMIN_ROUTE => {
            Failure::NoSuchRoute { route: format!("{} {}", call.method, call.route) }
        }
        StatusCode::NOT_FOUND => Failure::NotFound { detail },
        StatusCode::CONFLICT => Failure::Conflict { detail },
        status if status.is_server_error() => Failure::NodeFailed { status: status_code, detail },
        _ => Failure::Refused { status: status_code, detail },
    }
}

fn quoted(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// The error and its causes, outermost first: reqwest's own message alone says little.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call {
        Call::post("/admin/loans/{id}/cancel", "/admin/loans/x/cancel".into())
    }

    #[test]
    fn each_refusal_has_its_failure() {
        let problem = |detail: &str| serde_json::json!({ "status": 0, "detail": detail }).to_string().into_bytes();
        let code = |status: u16, body: &[u8]| failure(StatusCode::from_u16(status).unwrap(), body, &call()).exit_code();
        assert_eq!(code(400, &problem("limit: must be ...")), 1);
        assert_eq!(code(404, &problem("loan 1 not found")), 3);
        assert_eq!(code(401, &problem("this needs a valid token")), 4);
        assert_eq!(code(403, &problem("this credential's role may not do this")), 4);
        assert_eq!(code(503, b"<html>bad gateway</html>"), 5);
        assert_eq!(code(409, &problem("loan 1 is finished")), 6);
        assert_eq!(code(404, &problem(UNKNOWN_ADMIN_ROUTE)), 7);
        let missing = failure(StatusCode::NOT_FOUND, &problem(UNKNOWN_ADMIN_ROUTE), &call()).to_string();
        assert!(missing.contains("POST /admin/loans/{id}/cancel"), "{missing}");
    }

    #[test]
    fn the_token_is_checked_and_the_url_must_be_plain_http() {
        let client = |url: &str, token: Option<&str>| {
            AdminClient::new(url, token.map(str::to_owned), Duration::from_secs(1))
                .map(|_| ())
                .map_err(|f| f.exit_code())
        };
        assert_eq!(client("http://127.0.0.1:8080", Some("t")), Ok(()));
        assert_eq!(client("http://127.0.0.1:8080", None), Err(4));
        assert_eq!(client("http://127.0.0.1:8080", Some("  ")), Err(4));
        assert_eq!(client("https://loanflow.example", Some("t")), Err(2));
        assert_eq!(client("127.0.0.1:8080", Some("t")), Err(2));
    }
}
