//! Nodes that start at the same moment on a new database: one runs the migrations while the
//! others wait for it (an advisory lock), and all of them then work on the same schema.

use std::collections::HashSet;

use crate::broker::Vhost;
use crate::database::{Db, TestDatabase};
use crate::loans::{check_all, client, submit_all, wait_all_finished};
use crate::process::Service;
use crate::{node_env, wait_ready, BROKER, DEADLINE};

#[tokio::test]
async fn nodes_started_together_on_a_new_database_migrate_it_once() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let envs: Vec<_> = ["node-a", "node-b", "node-c"].iter().map(|id| node_env(&database, &vhost, id, &[])).collect();
    // Started from threads released together, so the migrations overlap.
    let barrier = std::sync::Barrier::new(envs.len());
    let nodes: Vec<Service> = std::thread::scope(|scope| {
        let started: Vec<_> = envs
            .iter()
            .map(|env| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    Service::start(env)
                })
            })
            .collect();
        started.into_iter().map(|handle| handle.join().expect("a node starts")).collect()
    });
    for node in &nodes {
        wait_ready(&client, node).await;
    }
    let applied = database.query_i64("SELECT count(*) FROM __diesel_schema_migrations");
    let versions = database.query_i64("SELECT count(DISTINCT version) FROM __diesel_schema_migrations");
    assert_eq!(applied, versions, "a migration recorded twice");
    assert!(applied > 0, "no migration recorded");
    let all: Vec<&Service> = nodes.iter().collect();
    let ids = submit_all(&client, &all, 0..60).await;
    let done = wait_all_finished(&client, &nodes[0], &ids, DEADLINE).await;
    check_all(&done);
    let loans: HashSet<&str> = done.iter().map(|(_, loan, _)| loan["id"].as_str().unwrap()).collect();
    assert_eq!(loans.len(), 60);
    assert_eq!(database.count("notifications"), 60);
}
