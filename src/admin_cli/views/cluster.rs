//! The nodes and their live actors (`GET /admin/actors`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::super::table::{age, cell, Table};
use super::items;

/// One row per node: its roles (when the node reports them) and its live actors per kind.
pub fn nodes(answer: &Value) -> String {
    let nodes = items(answer, "nodes");
    let kinds: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n["counts"].as_object())
        .flat_map(|counts| counts.keys().map(String::as_str))
        .collect();
    let with_roles = nodes.iter().any(|n| n.get("roles").is_some());
    let mut headers = vec!["NODE".to_owned()];
    if with_roles {
        headers.push("ROLES".to_owned());
    }
    headers.extend(kinds.iter().map(|kind| kind.to_uppercase()));
    let mut table = Table::new(&headers.iter().map(String::as_str).collect::<Vec<_>>());
    for node in nodes {
        let mut row = vec![cell(&node["node_id"])];
        if with_roles {
            row.push(roles(&node["roles"]));
        }
        row.extend(kinds.iter().map(|kind| cell(&node["counts"][*kind])));
        table.row(row);
    }
    table.render()
}

fn roles(value: &Value) -> String {
    match value.as_array() {
        Some(roles) => roles.iter().map(cell).collect::<Vec<_>>().join(","),
        None => cell(value),
    }
}

/// One row per live actor, node by node.
pub fn actors(answer: &Value) -> String {
    let mut table = Table::new(&["NODE", "KIND", "ID", "STATE", "MAILBOX", "HANDLED", "RESTARTS", "AGE"]);
    for node in items(answer, "nodes") {
        for actor in items(node, "actors") {
            table.row(vec![
                cell(&node["node_id"]),
                cell(&actor["kind"]),
                cell(&actor["id"]),
                cell(&actor["state"]),
                cell(&actor["mailbox_depth"]),
                cell(&actor["messages_handled"]),
                cell(&actor["restarts"]),
                age(&actor["age_seconds"]),
            ]);
        }
    }
    if table.is_empty() {
        return "no live actors\n".to_owned();
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodes_show_their_roles_only_when_the_node_reports_them() {
        let plain = json!({"nodes": [{"node_id": "a", "counts": {"loan": 2, "credit": 1}}]});
        assert_eq!(nodes(&plain), "NODE  CREDIT  LOAN\na     1       2\n");
        let with_roles = json!({"nodes": [{"node_id": "a", "roles": ["api", "loans"], "counts": {"loan": 2}}]});
        assert_eq!(nodes(&with_roles), "NODE  ROLES      LOAN\na     api,loans  2\n");
    }
}
