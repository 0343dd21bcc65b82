//! Faults of the database while loans are in flight, and floods of reads: the node says it is
//! not ready while commits fail, retries each message at a growing pace, sheds what it cannot
//! queue, and finishes every loan once the database is back.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use futures_util::{stream, StreamExt};

use crate::helpers::{approvable_application, spawn_app_with, Db, TestApp};

/// Run `sql` on the PostgreSQL server as its administrator.
fn admin(sql: &str) {
    let url = format!("{}/postgres", crate::database::postgres_server());
    diesel::PgConnection::establish(&url).unwrap().batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// New sessions of the database `name` read-only (or not), and its open sessions ended, so
/// every connection the app opens next gets the setting.
fn set_read_only(name: &str, read_only: bool) {
    let value = if read_only { "on" } else { "off" };
    admin(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = {value}; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
    ));
}

async fn readiness(app: &TestApp) -> (u16, serde_json::Value) {
    let response = app.anonymous.get(app.url("/health/ready")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Poll readiness until it answers `status`, or panic at the deadline.
async fn wait_readiness(app: &TestApp, status: u16, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let (now, body) = readiness(app).await;
        if now == status {
            return body;
        }
        assert!(Instant::now() < deadline, "readiness still {now} after {within:?}, not {status}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn database_retries(app: &TestApp) -> u64 {
    let text = app.anonymous.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("loanflow_database_retries_total ")).expect("the retry counter");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

const LOANS: usize = 40;
const FAULT: Duration = Duration::from_secs(4);

/// PostgreSQL only: the database refuses writes but answers reads (as with a full disk) while
/// loans are in flight.
#[actix_web::test]
async fn failing_commits_make_the_node_unready_and_each_message_retries_at_a_growing_pace() {
    let app = spawn_app_with(Db::Postgres, |s| {
        // Slow bureaus: the loans are mid-flight when the fault starts.
        s.bureaus.credit_latency_ms = 1000;
        s.bureaus.appraisal_latency_ms = 1500;
    })
    .await;
    let mut ids = Vec::with_capacity(LOANS);
    for _ in 0..LOANS {
        ids.push(app.submit(&approvable_application()).await);
    }
    set_read_only(app.db.name(), true);
    let down = wait_readiness(&app, 503, Duration::from_secs(10)).await;
    assert_eq!(down["checks"]["database"]["status"], "down", "{down}");
    assert!(!down.to_string().contains(app.db.name()), "no dependency detail for anonymous callers: {down}");
    let retries_before = database_retries(&app).await;
    // The fault lasts a while (this wait is the fault's length, not a check).
    tokio::time::sleep(FAULT).await;
    let retries = database_retries(&app).await - retries_before;
    set_read_only(app.db.name(), false);

    wait_readiness(&app, 200, Duration::from_secs(15)).await;
    for id in &ids {
        app.wait_finished(id, Duration::from_secs(30)).await;
    }
    assert_eq!(app.db.count("dead_letters"), 0, "the database's fault is never counted against a message");
    // At most two messages in flight per loan; each waits at least 25 ms, 50 ms, ... up to
    // 2.5 s between two tries (a retry without backoff made thousands in this time).
    let bound = (LOANS * 2 * (8 + FAULT.as_secs() as usize)) as u64;
    assert!(retries <= bound, "{retries} retries in {FAULT:?} for {LOANS} loans (at most {bound})");
}

/// A flood of reads against one reader with a queue of one: the reads it cannot queue are
/// answered 503 with `Retry-After` at once; none hangs.
#[actix_web::test]
async fn a_flood_of_reads_is_shed_with_503_and_retry_after() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.database.pool_size = 1;
        s.database.read_queue_max = 1;
    })
    .await;
    let id = app.submit(&approvable_application()).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let url = app.url(&format!("/api/v1/loans/{id}"));
    let answers: Vec<(u16, Option<String>)> = stream::iter(0..200)
        .map(|_| {
            let request = client.get(&url).bearer_auth(&app.operator_token).send();
            async move {
                let response = request.await.expect("every read is answered, none hangs");
                let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (response.status().as_u16(), retry_after)
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    assert!(answers.iter().all(|(status, _)| [200, 503].contains(status)), "{answers:?}");
    let shed: Vec<_> = answers.iter().filter(|(status, _)| *status == 503).collect();
    assert!(!shed.is_empty(), "nothing shed: {answers:?}");
    assert!(shed.iter().all(|(_, retry_after)| retry_after.is_some()), "{shed:?}");
}

/// PostgreSQL only: the server ends every session of the node (as a restart does). Each pooled
/// connection is tested before it is handed out, so no read meets a dead one.
#[actix_web::test]
async fn reads_after_the_server_ended_the_pools_sessions_get_new_connections() {
    let app = spawn_app_with(Db::Postgres, |s| s.database.pool_size = 2).await;
    let id = app.submit(&approvable_application()).await;
    app.wait_finished(&id, Duration::from_secs(20)).await;
    admin(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'", app.db.name()));
    for read in 1..=4 {
        let (status, body) = app.get_json(&format!("/api/v1/loans/{id}")).await;
        assert_eq!(status, 200, "read {read} after the sessions ended: {body}");
    }
}
