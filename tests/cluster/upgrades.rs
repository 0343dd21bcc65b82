//! A rolling upgrade: nodes of two versions consume the same queues. A node that receives a
//! message kind it does not know (here: the test-only `faults.unknown_kind`, which makes a node
//! treat `check_credit` as unknown, like a node of an older version) leaves it for a node that
//! knows it, and never dead-letters it on sight.

use std::time::{Duration, Instant};

use crate::broker::Vhost;
use crate::database::{Db, TestDatabase};
use crate::loans::{check_all, client, submit_all, unfinished, wait_all_finished};
use crate::process::Service;
use crate::{node_env, wait_ready, BROKER, DEADLINE};

const LEFT: &str = "a message kind this node does not know: left for a node that does";

#[tokio::test]
async fn a_node_leaves_a_kind_it_does_not_know_for_a_node_that_knows_it() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let front_roles = ("LOANFLOW__NODE__ROLES", "api,loans,appraisal,notifier");
    let front = Service::start(&node_env(&database, &vhost, "front", &[front_roles]));
    // The only credit node does not know credit checks: they go round between it and the queue.
    let old = [("LOANFLOW__NODE__ROLES", "credit"), ("LOANFLOW__FAULTS__UNKNOWN_KIND", "check_credit")];
    let mut old = Service::start(&node_env(&database, &vhost, "old", &old));
    wait_ready(&client, &front).await;
    wait_ready(&client, &old).await;
    let ids = submit_all(&client, &[&front], 0..20).await;
    let start = Instant::now();
    while !old.log_tail(200).contains(LEFT) {
        assert!(start.elapsed() < Duration::from_secs(20), "the old node never left a message:\n{}", old.log_tail(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(unfinished(&client, &front).await, 20, "a credit check was done by a node that does not know it");
    assert_eq!(database.count("dead_letters"), 0, "a message of an unknown kind was dead-lettered");

    // A node that knows the kind joins, beside the old one: every loan finishes.
    let new = Service::start(&node_env(&database, &vhost, "new", &[("LOANFLOW__NODE__ROLES", "credit")]));
    wait_ready(&client, &new).await;
    let done = wait_all_finished(&client, &front, &ids, DEADLINE).await;
    check_all(&done);
    assert_eq!(database.count("notifications"), 20);
    assert_eq!(database.count("dead_letters"), 0);
    assert!(!old.exited(), "the old node stays up beside the new one:\n{}", old.log_tail(20));
}
