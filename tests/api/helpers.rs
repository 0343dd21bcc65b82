//! Starting the real application for a test, and typed helpers to talk to it.

#![allow(dead_code)]

use std::time::{Duration, Instant};

pub use crate::database::{Db, TestDatabase};
use loanflow::inspect::{AddressHandoff, Registry};
use loanflow::settings::Settings;
use loanflow::startup::Application;
use serde_json::{json, Value};

/// Run an async test body once per backend: `both_backends!(name);` next to `async fn name(db: Db)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::database::Db::Sqlite).await
            }
            #[actix_web::test]
            async fn postgres() {
                super::$name($crate::database::Db::Postgres).await
            }
        }
    )*};
}

/// Settings for a test: port 0, its own database, quick idle stops.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::load().expect("default settings load");
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.http.workers = 2;
    settings.database.url = database_url.to_owned();
    settings.database.connect_timeout_ms = 1000;
    settings.bureaus.credit_latency_ms = 0;
    settings.bureaus.appraisal_latency_ms = 0;
    settings.bureaus.failure_rate = 0.0;
    // The rules decide every loan; the human-step tests set a band of their own.
    settings.decision.review_below_score = loanflow::settings::ReviewBand::NEVER;
    settings.actors.idle_timeout_ms = 200;
    settings.actors.redelivery_sweep_ms = 500;
    settings.log.level = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
    settings
}

pub struct TestApp {
    pub address: String,
    /// The node's operator token: the configured one, or the one it made for this start.
    pub operator_token: String,
    pub registry: std::sync::Arc<Registry>,
    /// The addresses the node's loan actors hand to its notifier.
    pub addresses: std::sync::Arc<AddressHandoff>,
    /// Sends the operator token with every request.
    pub client: reqwest::Client,
    /// Sends no credential.
    pub anonymous: reqwest::Client,
    pub db: TestDatabase,
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::create(db);
    let mut settings = test_settings(&database.url);
    tweak(&mut settings);
    loanflow::telemetry::init(&settings.log);
    let configured = settings.admin.token.clone();
    let app = Application::build(settings).await.expect("the application builds");
    let operator_token = match (configured, app.generated_operator_token()) {
        (Some(token), None) => token,
        (None, Some(token)) => token.to_owned(),
        (configured, generated) => panic!("configured {configured:?} and generated {generated:?} operator tokens"),
    };
    let address = format!("http://{}", app.address());
    let registry = app.registry();
    let addresses = app.addresses();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = client_with_token(&operator_token);
    TestApp { address, operator_token, registry, addresses, client, anonymous: reqwest::Client::new(), db: database }
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("a token fits a header");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder().default_headers(headers).build().expect("a client")
}

/// A valid application that is approved under CONTRACT.md's rules.
pub fn approvable_application() -> Value {
    json!({
        "applicant": {"name": "Barbara Liskov", "email": "barbara@example.com", "annual_income": 150000, "monthly_debts": 300},
        "property": {"address": "12 Harbour Road, Lisbon", "declared_value": 400000},
        "amount": 200000,
        "term_months": 300
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_loan(&self, body: &Value) -> reqwest::Response {
        self.client.post(self.url("/api/v1/loans")).json(body).send().await.expect("POST /api/v1/loans")
    }

    /// Submit and return the new loan's id (asserting 201).
    pub async fn submit(&self, body: &Value) -> String {
        let response = self.post_loan(body).await;
        assert_eq!(response.status().as_u16(), 201, "submission refused: {:?}", response.text().await);
        let created: Value = response.json().await.expect("JSON body");
        created["id"].as_str().expect("an id").to_owned()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn loan(&self, id: &str) -> Value {
        let (status, body) = self.get_json(&format!("/api/v1/loans/{id}")).await;
        assert_eq!(status, 200, "GET loan {id}: {body}");
        body
    }

    pub async fn events(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get_json(&format!("/api/v1/loans/{id}/events")).await;
        assert_eq!(status, 200, "GET events of {id}: {body}");
        body.as_array().expect("an array").clone()
    }

    /// Poll until the loan is terminal and notified, or panic at the deadline.
    pub async fn wait_finished(&self, id: &str, deadline: Duration) -> Value {
        let start = Instant::now();
        loop {
            let loan = self.loan(id).await;
            if !loan["notified_at"].is_null() {
                return loan;
            }
            assert!(start.elapsed() < deadline, "loan {id} not finished after {deadline:?}: {loan}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Event types of a history, in order.
pub fn event_types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or_default().to_owned()).collect()
}
