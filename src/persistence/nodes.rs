//! Cluster mode: each node's heartbeat with a snapshot of its live actors, so any node can list
//! the actors of every node.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::records::NodeRow;
use super::schema::nodes;
use super::StoreError;

/// Nodes whose last heartbeat is at or after `since`.
pub fn live_nodes(conn: &mut AnyConnection, since: chrono::NaiveDateTime) -> Result<Vec<NodeRow>, StoreError> {
    Ok(nodes::table
        .filter(nodes::heartbeat_at.ge(since))
        .order(nodes::node_id.asc())
        .select(NodeRow::as_select())
        .load(conn)?)
}

/// A node's heartbeat, replacing its previous one.
pub fn replace_node(conn: &mut AnyConnection, node: &NodeRow) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        diesel::delete(nodes::table.find(&node.node_id)).execute(conn)?;
        diesel::insert_into(nodes::table).values(node).execute(conn)?;
        Ok(())
    })
}
