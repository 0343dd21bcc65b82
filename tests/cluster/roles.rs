//! A cluster split by roles (`node.roles`): an `api,loans` node and a worker for the bureaus and
//! the notifier. Each consumes only its roles' queues; work for a role with no live node waits in
//! its durable queue.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::broker::Vhost;
use crate::database::{Db, TestDatabase};
use crate::loans::{check_all, client, submit_all, unfinished, wait_all_finished};
use crate::process::Service;
use crate::{node_env, wait_ready, BROKER, DEADLINE, TOKEN};

const FRONT: &str = "api,loans";
const WORKER: &str = "credit,appraisal,notifier";
const SERVICE_QUEUES: [&str; 3] = ["loanflow.credit", "loanflow.appraisal", "loanflow.notifier"];

/// The node's roles as its listing of every node shows them, once `node_id` has a heartbeat.
async fn listed_roles(client: &reqwest::Client, node: &Service, node_id: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let listing: Value =
            client.get(node.url("/admin/actors")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        let nodes = listing["nodes"].as_array().unwrap();
        if let Some(found) = nodes.iter().find(|n| n["node_id"] == node_id) {
            return serde_json::from_value(found["roles"].clone()).unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{node_id} never listed: {listing}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn names(roles: &str) -> Vec<String> {
    roles.split(',').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_cluster_split_by_roles_finishes_and_a_killed_worker_s_work_waits_for_its_restart() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    // Slow calls: most of them are still waiting in the worker when it is killed.
    let slow = [("LOANFLOW__BUREAUS__CREDIT_LATENCY_MS", "2000"), ("LOANFLOW__BUREAUS__APPRAISAL_LATENCY_MS", "3000")];
    let with_roles = |roles| [slow[0], slow[1], ("LOANFLOW__NODE__ROLES", roles)];
    let front = Service::start(&node_env(&database, &vhost, "front", &with_roles(FRONT)));
    let worker_env = node_env(&database, &vhost, "worker", &with_roles(WORKER));
    let worker = Service::start(&worker_env);
    assert_eq!(wait_ready(&client, &front).await["roles"], serde_json::json!(["api", "loans"]));
    let ready = wait_ready(&client, &worker).await;
    assert_eq!(ready["roles"], serde_json::json!(["credit", "appraisal", "notifier"]));
    // Each node runs the service actors of its roles only.
    let services = |ready: &Value| {
        ["credit", "appraisal", "notifier"].map(|kind| ready["checks"]["actors"]["live"][kind].as_u64())
    };
    assert_eq!(services(&ready), [Some(1); 3], "{ready}");
    let front_ready = wait_ready(&client, &front).await;
    assert_eq!(services(&front_ready), [Some(0); 3], "{front_ready}");
    // The worker serves no API, only what operators need.
    assert_eq!(client.get(worker.url("/api/v1/loans/stats")).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(client.get(worker.url("/metrics")).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(listed_roles(&client, &front, "worker").await, names(WORKER));
    assert_eq!(listed_roles(&client, &worker, "front").await, names(FRONT));

    let ids = submit_all(&client, &[&front], 0..120).await;
    worker.kill_9();
    // The service calls wait in their durable queues: nothing consumes them, nothing is lost.
    let start = Instant::now();
    let waiting = loop {
        let depths = vhost.queue_depths();
        let held: Vec<(u64, u64)> =
            SERVICE_QUEUES.iter().map(|q| depths.get(*q).copied().unwrap_or_default()).collect();
        if held.iter().all(|(_, unacked)| *unacked == 0) && held.iter().any(|(ready, _)| *ready > 0) {
            break held;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "the killed worker's calls never came back: {held:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = unfinished(&client, &front).await;
    assert!(still > 0, "loans finished without a worker (waiting calls: {waiting:?})");
    assert_eq!(database.count("dead_letters"), 0);

    let worker = Service::start(&worker_env);
    wait_ready(&client, &worker).await;
    let done = wait_all_finished(&client, &front, &ids, DEADLINE).await;
    check_all(&done);
    assert_eq!(database.count("notifications"), 120);
    assert_eq!(database.notified_loans(), 120);
    assert_eq!(database.count("dead_letters"), 0);
    drop(worker);
}

#[test]
fn an_embedded_node_with_roles_refuses_to_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loanflow"))
        .env("LOANFLOW__NODE__ROLES", "api,loans")
        .env("LOANFLOW__HTTP__PORT", "0")
        .env_remove("LOANFLOW__BROKER__URL")
        .env("LOANFLOW__DATABASE__URL", "/nonexistent/never-opened.db")
        .output()
        .expect("running loanflow");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`node.roles` is for cluster mode"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}
