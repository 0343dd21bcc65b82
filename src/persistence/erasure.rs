//! Erasing a finished loan's personal data on an operator's request: the applicant's name,
//! email and address give way to markers (which still parse, so the loan reads as before); the
//! figures, the decision and the history stay. The loan's notification record and dead letters
//! lose what they held of it too, and the applicant's answers to requests for information keep
//! their field names only.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{dead_letters, loan_events, loans, notifications};
use crate::domain::LoanId;
use crate::messages::Envelope;

/// What stands in for an erased name and address.
pub const ERASED: &str = "[erased]";
/// What stands in for an erased email (a valid address that no mail can reach: `.invalid`).
pub const ERASED_EMAIL: &str = "erased@erased.invalid";

/// Whether a stored email is the erasure marker.
pub fn is_erased(email: &str) -> bool {
    email == ERASED_EMAIL
}

/// Erase loan `loan_id`'s personal data if it is finished (notified) and not erased yet; false
/// otherwise. Its version moves on, so a copy of the loan held in memory cannot write the data
/// back.
pub(super) fn erase(conn: &mut AnyConnection, loan_id: LoanId, now: chrono::NaiveDateTime) -> QueryResult<bool> {
    let id = loan_id.to_string();
    let updated = diesel::update(
        loans::table
            .filter(loans::id.eq(&id))
            .filter(loans::notified_at.is_not_null())
            .filter(loans::applicant_email.ne(ERASED_EMAIL)),
    )
    .set((
        loans::applicant_name.eq(ERASED),
        loans::applicant_email.eq(ERASED_EMAIL),
        loans::property_address.eq(ERASED),
        loans::version.eq(loans::version + 1),
        loans::updated_at.eq(now),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(false);
    }
    diesel::update(notifications::table.filter(notifications::loan_id.eq(&id)))
        .set(notifications::recipient.eq(ERASED))
        .execute(conn)?;
    let letters: Vec<(String, String)> = dead_letters::table
        .filter(dead_letters::loan_id.eq(&id))
        .select((dead_letters::message_id, dead_letters::envelope))
        .load(conn)?;
    for (message_id, stored) in letters {
        let Ok(envelope) = Envelope::from_json(&stored) else { continue };
        let redacted = Envelope { body: envelope.body.redacted(), ..envelope };
        diesel::update(dead_letters::table.find(message_id))
            .set(dead_letters::envelope.eq(redacted.to_json()))
            .execute(conn)?;
    }
    erase_answers(conn, &id)?;
    Ok(true)
}

/// The answers in the loan's `InformationProvided` events give way to the marker, field by field.
fn erase_answers(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    let answered: Vec<(i64, String)> = loan_events::table
        .filter(loan_events::loan_id.eq(id))
        .filter(loan_events::event_type.eq("InformationProvided"))
        .select((loan_events::id, loan_events::data))
        .load(conn)?;
    for (event_id, data) in answered {
        let Ok(mut data) = serde_json::from_str::<serde_json::Value>(&data) else { continue };
        let Some(answers) = data.get_mut("answers").and_then(serde_json::Value::as_object_mut) else { continue };
        answers.values_mut().for_each(|answer| *answer = serde_json::Value::from(ERASED));
        diesel::update(loan_events::table.find(event_id)).set(loan_events::data.eq(data.to_string())).execute(conn)?;
    }
    Ok(())
}
