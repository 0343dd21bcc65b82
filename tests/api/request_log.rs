//! The request span in the log: the real binary with JSON logs, read from its output. The span
//! carries the request id the response echoes (the client's when it is sane, else the one the
//! node made) and the client's address as the trusted proxies tell it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::database::{Db, TestDatabase};
use crate::helpers::approvable_application;
use crate::process::Service;

const TOKEN: &str = "request-log-operator";
const LOG_DEADLINE: Duration = Duration::from_secs(10);

/// The fields of the `HTTP request` span of the first "staff action" line about `loan`.
async fn request_span_of_staff_action(service: &Service, loan: &str) -> Value {
    let started = Instant::now();
    loop {
        let lines = service.log_tail(10_000);
        let found = lines
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["message"] == "staff action" && line["loan_id"] == loan)
            .find_map(|line| line["spans"].as_array()?.iter().find(|span| span["name"] == "HTTP request").cloned());
        if let Some(span) = found {
            return span;
        }
        assert!(started.elapsed() < LOG_DEADLINE, "no staff action logged for {loan}:\n{}", service.log_tail(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn revoke(client: &reqwest::Client, service: &Service, loan: &str, request_id: &str) -> String {
    let response = client
        .post(service.url(&format!("/admin/loans/{loan}/access-token/revoke")))
        .header("x-request-id", request_id)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.headers()["x-request-id"].to_str().unwrap().to_owned()
}

async fn submit(client: &reqwest::Client, service: &Service) -> String {
    let response = client.post(service.url("/api/v1/loans")).json(&approvable_application()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_request_span_carries_the_echoed_request_id_and_the_client_address() {
    let database = TestDatabase::create(Db::Sqlite);
    let service = Service::start(&[
        ("LOANFLOW__HTTP__PORT", "0".to_owned()),
        ("LOANFLOW__DATABASE__URL", database.url.clone()),
        ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
        ("LOANFLOW__LOG__FORMAT", "json".to_owned()),
        ("LOANFLOW__LOG__LEVEL", "info".to_owned()),
        ("RUST_LOG", "info".to_owned()),
        ("LOANFLOW__HTTP__TRUSTED_PROXIES", "127.0.0.1".to_owned()),
    ]);
    let client = crate::helpers::client_with_token(TOKEN);

    let sane = submit(&client, &service).await;
    assert_eq!(revoke(&client, &service, &sane, "client-id-42").await, "client-id-42");
    let span = request_span_of_staff_action(&service, &sane).await;
    assert_eq!(span["request_id"], "client-id-42", "{span}");
    assert_eq!(span["http.client_ip"], "203.0.113.9", "{span}");

    let odd = submit(&client, &service).await;
    let echoed = revoke(&client, &service, &odd, "not a sane id; it has spaces").await;
    assert_ne!(echoed, "not a sane id; it has spaces");
    let span = request_span_of_staff_action(&service, &odd).await;
    assert_eq!(span["request_id"], echoed.as_str(), "the node's own id, echoed and logged: {span}");
}
