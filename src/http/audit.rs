//! What staff do to a loan is part of its history: an event naming who did it (role, and token
//! name or subject), with the loan's status at the time, and a log line.

use serde_json::{json, Value};

use super::access::Credential;
use crate::domain::LoanId;
use crate::persistence::{NewEventRow, StaffRecord};

/// Event types of staff actions (repeatable, unlike the process's own events).
pub const MESSAGES_REDELIVERED: &str = "MessagesRedelivered";
pub const DEAD_LETTER_REPLAYED: &str = "DeadLetterReplayed";
pub const ACCESS_TOKEN_REVOKED: &str = "AccessTokenRevoked";
pub const PERSONAL_DATA_ERASED: &str = "PersonalDataErased";

/// Whether an event type records a staff action: its data carries the loan's status.
pub fn is_staff_action(event_type: &str) -> bool {
    [MESSAGES_REDELIVERED, DEAD_LETTER_REPLAYED, ACCESS_TOKEN_REVOKED, PERSONAL_DATA_ERASED].contains(&event_type)
}

/// The record of `caller` doing `event_type` to a loan in `status`, with `details`.
pub fn record(caller: &Credential, loan_id: LoanId, status: &str, event_type: &str, details: Value) -> StaffRecord {
    let (role, name) = match caller {
        Credential::Staff { role, name, .. } => (role.as_str(), name.as_str()),
        Credential::Applicant { .. } => ("applicant", ""),
    };
    tracing::info!(%loan_id, action = event_type, by.role = role, by.name = name, "staff action");
    let mut data = json!({ "by": { "role": role, "name": name }, "status": status });
    if let (Some(data), Value::Object(details)) = (data.as_object_mut(), details) {
        data.extend(details);
    }
    let now = chrono::Utc::now().naive_utc();
    let event = NewEventRow {
        loan_id: loan_id.to_string(),
        event_type: event_type.to_owned(),
        at: now,
        data: data.to_string(),
    };
    StaffRecord { event, status: status.to_owned() }
}
