//! Dead letters, and a replay's answer.

use serde_json::Value;

use super::super::table::{cell, Table};
use super::items;

/// `GET /admin/dead-letters`, newest first.
pub fn list(answer: &Value) -> String {
    let mut table = Table::new(&["MESSAGE ID", "LOAN", "DESTINATION", "KIND", "ATTEMPT", "FAILED AT", "REASON"]);
    for letter in items(answer, "items") {
        table.row(
            ["message_id", "loan_id", "destination", "kind", "attempt", "failed_at", "reason"]
                .iter()
                .map(|field| cell(&letter[*field]))
                .collect(),
        );
    }
    if table.is_empty() {
        return "no dead letters\n".to_owned();
    }
    table.render()
}

/// `POST /admin/dead-letters/{id}/replay`.
pub fn replayed(answer: &Value) -> String {
    format!(
        "dead letter {} of loan {}: {}\n",
        cell(&answer["message_id"]),
        cell(&answer["loan_id"]),
        cell(&answer["status"])
    )
}
