//! Cluster membership: each node records a heartbeat with its roles and live actors every few
//! seconds, so that any node can list the roles and actors of every node (`/admin/actors`). A node that stops
//! recording drops out of the listing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actors::Registry;
use crate::domain::rfc3339;
use crate::messages::ActorKind;
use crate::persistence::{nodes, Database, NodeRow, StoreError};
use crate::settings::NodeRoles;

/// How often each node records its actors, and when a record counts as stale.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(2_000);
const HEARTBEAT_STALE_MS: i64 = 10_000;
/// Actors per heartbeat at most (services first), to keep the record small under load.
const HEARTBEAT_ACTORS: usize = 1_000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeActorsView {
    pub node_id: String,
    /// The node's roles (`node.roles`): the work it takes. Empty for a node of an older
    /// version, whose heartbeat does not carry them.
    #[serde(default)]
    #[schema(example = json!(["api", "loans"]))]
    pub roles: Vec<String>,
    /// Live actors by kind.
    pub counts: BTreeMap<String, usize>,
    pub actors: Vec<ActorView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActorView {
    /// `loan`, `credit`, `appraisal` or `notifier`.
    pub kind: String,
    /// The loan id for a loan actor; `<kind>-<n>` for a service actor.
    pub id: String,
    pub state: String,
    /// Messages delivered to it and not finished yet.
    pub mailbox_depth: usize,
    pub messages_handled: u64,
    pub restarts: u32,
    pub started_at: String,
    pub age_seconds: f64,
}

/// Record this node's live actors every few seconds, for as long as the node runs.
pub fn spawn_heartbeat(db: Database, registry: Arc<Registry>, node_id: String, roles: NodeRoles) {
    let started_at = chrono::Utc::now().naive_utc();
    actix::spawn(async move {
        let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            ticker.tick().await;
            let view = node_view(&registry, &node_id, &roles, None, HEARTBEAT_ACTORS);
            let node = NodeRow {
                node_id: node_id.clone(),
                started_at,
                heartbeat_at: chrono::Utc::now().naive_utc(),
                snapshot: serde_json::to_string(&view).unwrap_or_default(),
            };
            if let Err(err) = db.write_outside_units(move |c| nodes::replace_node(c, &node)).await {
                tracing::warn!(error = %err, "recording the node heartbeat failed");
            }
        }
    });
}

/// The live actors of the other nodes (of `kind`, or all), from their last heartbeats. Empty
/// for a node that runs alone: nobody records heartbeats there.
pub async fn other_nodes(
    db: &Database,
    node_id: &str,
    kind: Option<ActorKind>,
) -> Result<Vec<NodeActorsView>, StoreError> {
    let since = chrono::Utc::now().naive_utc() - chrono::Duration::milliseconds(HEARTBEAT_STALE_MS);
    let rows = db.read(move |c| nodes::live_nodes(c, since)).await?;
    let mut nodes = Vec::new();
    for row in rows.into_iter().filter(|row| row.node_id != node_id) {
        let Ok(mut node) = serde_json::from_str::<NodeActorsView>(&row.snapshot) else { continue };
        node.actors.retain(|a| kind.is_none_or(|k| a.kind == k.as_str()));
        nodes.push(node);
    }
    Ok(nodes)
}

/// This node's roles and live actors (of `kind`, or all), at most `limit`.
pub fn node_view(
    registry: &Registry,
    node_id: &str,
    roles: &NodeRoles,
    kind: Option<ActorKind>,
    limit: usize,
) -> NodeActorsView {
    let counts = registry.counts().into_iter().map(|(k, n)| (k.as_str().to_owned(), n)).collect();
    let actors = registry
        .snapshot()
        .into_iter()
        .filter(|a| kind.is_none_or(|k| a.kind == k))
        .take(limit)
        .map(|a| ActorView {
            kind: a.kind.as_str().to_owned(),
            id: a.id,
            state: a.state.as_str().to_owned(),
            mailbox_depth: a.mailbox_depth,
            messages_handled: a.messages_handled,
            restarts: a.restarts,
            started_at: rfc3339(a.started_at.naive_utc()),
            age_seconds: a.age_seconds,
        })
        .collect();
    let roles = roles.names().into_iter().map(str::to_owned).collect();
    NodeActorsView { node_id: node_id.to_owned(), roles, counts, actors }
}
