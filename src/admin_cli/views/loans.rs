//! A page of loans, one loan in full, and a cancellation's answer.

use serde_json::Value;
use uuid::Uuid;

use super::super::table::{cell, Table};
use super::items;

/// `GET /api/v1/loans`: one row per loan, then how to get the next page.
pub fn page(answer: &Value) -> String {
    let mut table = Table::new(&["ID", "STATUS", "WAITING ON", "AMOUNT", "TERM", "SUBMITTED"]);
    for loan in items(answer, "items") {
        table.row(vec![
            cell(&loan["id"]),
            cell(&loan["status"]),
            cell(&loan["waiting_on"]),
            cell(&loan["amount"]),
            cell(&loan["term_months"]),
            cell(&loan["submitted_at"]),
        ]);
    }
    let mut out = if table.is_empty() { "no loans\n".to_owned() } else { table.render() };
    if let Some(cursor) = answer["next_cursor"].as_str() {
        out.push_str(&format!("more: --cursor {cursor}\n"));
    }
    out
}

/// Shown first; the other fields follow by name.
const FIRST: [&str; 3] = ["id", "status", "waiting_on"];

/// `GET /api/v1/loans/{id}`: every field, nested ones with a dotted name, one per line.
pub fn loan(answer: &Value) -> String {
    let mut fields = Vec::new();
    flatten("", answer, &mut fields);
    fields.sort_by_key(|(name, _)| FIRST.iter().position(|first| first == name).unwrap_or(FIRST.len()));
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    fields.iter().map(|(name, value)| format!("{name:<width$}  {value}\n")).collect()
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (name, value) in fields {
                let name = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                flatten(&name, value, out);
            }
        }
        other => out.push((prefix.to_owned(), cell(other))),
    }
}

/// `POST /admin/loans/{id}/cancel`: what the node says of the loan now.
pub fn cancelled(id: Uuid, answer: &Value) -> String {
    match answer["status"].as_str() {
        Some(status) => format!("loan {id}: cancellation accepted (status now {status})\n"),
        None => format!("loan {id}: cancellation accepted\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_loan_shows_every_field_by_its_dotted_name() {
        let shown =
            loan(&json!({"applicant": {"name": "Ada"}, "status": "approved", "id": "l1", "credit_score": null}));
        assert_eq!(shown, "id              l1\nstatus          approved\napplicant.name  Ada\ncredit_score    -\n");
    }

    #[test]
    fn a_page_names_its_next_cursor() {
        let shown =
            page(&json!({"items": [{"id": "l1", "status": "approved", "amount": "1000.00"}], "next_cursor": "c"}));
        assert!(shown.starts_with("ID  STATUS    WAITING ON  AMOUNT   TERM  SUBMITTED\nl1  approved  -"), "{shown}");
        assert!(shown.ends_with("more: --cursor c\n"), "{shown}");
        assert_eq!(page(&json!({"items": [], "next_cursor": null})), "no loans\n");
    }
}
