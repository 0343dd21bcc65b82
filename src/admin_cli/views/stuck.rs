//! Unfinished loans with the step each waits on, and a retry's answer.

use serde_json::Value;

use super::super::table::{age, cell, Table};
use super::items;

/// `GET /admin/loans?stuck=true`: one row per loan, its pending messages in the last column as
/// `destination/kind#attempt`.
pub fn stuck(answer: &Value) -> String {
    let mut table = Table::new(&["ID", "STATUS", "WAITING ON", "UNFINISHED FOR", "PENDING MESSAGES"]);
    for loan in items(answer, "loans") {
        let pending: Vec<String> = items(loan, "pending_messages")
            .iter()
            .map(|m| format!("{}/{}#{}", cell(&m["destination"]), cell(&m["kind"]), cell(&m["attempt"])))
            .collect();
        table.row(vec![
            cell(&loan["id"]),
            cell(&loan["status"]),
            cell(&loan["waiting_on"]),
            age(&loan["unfinished_for_seconds"]),
            if pending.is_empty() { "-".to_owned() } else { pending.join(", ") },
        ]);
    }
    if table.is_empty() {
        return format!("no unfinished loans older than {} s\n", cell(&answer["older_than_seconds"]));
    }
    table.render()
}

/// `POST /admin/loans/{id}/retry`.
pub fn retried(answer: &Value) -> String {
    let ids: Vec<String> = items(answer, "message_ids").iter().map(cell).collect();
    let mut out = format!("loan {}: {} pending message(s) delivered again\n", cell(&answer["loan_id"]), ids.len());
    for id in ids {
        out.push_str(&format!("  {id}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stuck_loan_shows_what_it_waits_for() {
        let answer = json!({"older_than_seconds": 60, "loans": [{"id": "l1", "status": "evaluating",
            "waiting_on": "credit_check", "unfinished_for_seconds": 125.2,
            "pending_messages": [{"destination": "credit", "kind": "check_credit", "attempt": 2}]}]});
        let shown = stuck(&answer);
        assert!(shown.ends_with("l1  evaluating  credit_check  2m              credit/check_credit#2\n"), "{shown}");
        assert_eq!(stuck(&json!({"older_than_seconds": 60, "loans": []})), "no unfinished loans older than 60 s\n");
    }
}
