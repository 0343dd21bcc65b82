//! `GET /admin/timers`: durable deadlines and reminders. The table takes its columns from the
//! answer itself (the first list in it, each item's plain fields), so it shows what the node
//! reports.

use serde_json::Value;

use super::super::table::{cell, Table};

pub fn timers(answer: &Value) -> String {
    let timers = match answer {
        Value::Array(items) => items.as_slice(),
        other => {
            other.as_object().and_then(|o| o.values().find_map(Value::as_array)).map(Vec::as_slice).unwrap_or_default()
        }
    };
    let mut columns: Vec<&str> = Vec::new();
    for field in timers.iter().filter_map(Value::as_object).flat_map(|timer| timer.iter()) {
        if !field.1.is_object() && !field.1.is_array() && !columns.contains(&field.0.as_str()) {
            columns.push(field.0);
        }
    }
    if columns.is_empty() {
        return "no timers\n".to_owned();
    }
    let headers: Vec<String> = columns.iter().map(|c| c.replace('_', " ").to_uppercase()).collect();
    let mut table = Table::new(&headers.iter().map(String::as_str).collect::<Vec<_>>());
    for timer in timers {
        table.row(columns.iter().map(|c| cell(&timer[*c])).collect());
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_columns_are_the_timers_own_fields() {
        let answer = json!({"timers": [{"loan_id": "l1", "kind": "information_deadline", "due_at": "2026-12-06T20:00:00Z"},
            {"loan_id": "l2", "kind": "information_reminder", "due_at": "2026-12-06T19:00:00Z", "extra": {"x": 1}}]});
        let shown = timers(&answer);
        let first = shown.lines().next().unwrap();
        for header in ["LOAN ID", "KIND", "DUE AT"] {
            assert!(first.contains(header), "{shown}");
        }
        assert!(!first.contains("EXTRA"), "{shown}");
        assert_eq!(shown.lines().count(), 3, "{shown}");
        assert_eq!(timers(&json!({"timers": []})), "no timers\n");
    }
}
