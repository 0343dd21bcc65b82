//! Rows as diesel sees them, and their conversion to and from the domain.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{dead_letters, documents, loan_events, loans, nodes, notifications, outbox, timers};
use crate::domain::{Address, Applicant, ApplicantName, Email, LoanApplication, LoanId, Money, Property, TermMonths};
use crate::messages::Envelope;
use crate::saga::{LoanEvent, LoanSaga};

/// A loan as stored: the application, the saga's state, and the view columns derived from it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = loans)]
// None is NULL (not DEFAULT): SQLite takes several rows in one INSERT only without DEFAULT.
#[diesel(treat_none_as_default_value = false)]
pub struct LoanRow {
    pub id: String,
    pub status: String,
    pub applicant_name: String,
    pub applicant_email: String,
    pub annual_income_cents: i64,
    pub monthly_debts_cents: i64,
    pub property_address: String,
    pub declared_value_cents: i64,
    pub amount_cents: i64,
    pub term_months: i32,
    pub credit_score: Option<i32>,
    pub appraised_value_cents: Option<i64>,
    pub rate_bps: Option<i32>,
    pub monthly_payment_cents: Option<i64>,
    pub saga: String,
    pub version: i64,
    pub submitted_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub notified_at: Option<NaiveDateTime>,
    /// The step the loan waits on ([`LoanSaga::waiting_on`]); None once it waits on nothing.
    pub waiting_on: Option<String>,
    /// Since when it waits on that step.
    pub waiting_since: Option<NaiveDateTime>,
}

/// A loan in memory: what the loan actor works with.
#[derive(Debug, Clone, PartialEq)]
pub struct LoanRecord {
    pub id: LoanId,
    pub application: LoanApplication,
    pub saga: LoanSaga,
    pub version: i64,
    pub submitted_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub notified_at: Option<NaiveDateTime>,
    /// Since when the loan waits on the step its saga reports (None: on nothing).
    pub waiting_since: Option<NaiveDateTime>,
}

#[derive(Debug, thiserror::Error)]
#[error("stored loan {id} is unreadable: {reason}")]
pub struct CorruptRow {
    pub id: String,
    pub reason: String,
}

impl LoanRecord {
    pub fn to_row(&self) -> LoanRow {
        let app = &self.application;
        let saga = &self.saga;
        LoanRow {
            id: self.id.to_string(),
            status: saga.status.as_str().to_owned(),
            applicant_name: app.applicant.name.as_ref().to_owned(),
            applicant_email: app.applicant.email.as_ref().to_owned(),
            annual_income_cents: app.applicant.annual_income.cents(),
            monthly_debts_cents: app.applicant.monthly_debts.cents(),
            property_address: app.property.address.as_ref().to_owned(),
            declared_value_cents: app.property.declared_value.cents(),
            amount_cents: app.amount.cents(),
            term_months: i32::from(app.term_months.get()),
            credit_score: saga.credit_score().map(|s| i32::from(s.get())),
            appraised_value_cents: saga.appraised_value().map(|m| m.cents()),
            rate_bps: saga.rate_bps().map(|r| r as i32),
            monthly_payment_cents: saga.monthly_payment().map(|m| m.cents()),
            saga: serde_json::to_string(saga).expect("saga state always serialises"),
            version: self.version,
            submitted_at: self.submitted_at,
            updated_at: self.updated_at,
            decided_at: self.decided_at,
            notified_at: self.notified_at,
            waiting_on: saga.waiting_on().map(str::to_owned),
            waiting_since: self.waiting_since,
        }
    }

    /// The step this loan waited on, and since when, if `next` (its record after a transition)
    /// waits on another one: it left that step.
    pub fn left_step(&self, next: &LoanRecord) -> Option<(&'static str, NaiveDateTime)> {
        let step = self.saga.waiting_on()?;
        (next.saga.waiting_on() != Some(step)).then_some((step, self.waiting_since?))
    }

    /// Since when the loan waits once its saga is `next` at `now`: the same as before while the
    /// step stays the same, `now` when it changes, None once it waits on nothing.
    pub fn waiting_since_after(&self, next: &LoanSaga, now: NaiveDateTime) -> Option<NaiveDateTime> {
        match next.waiting_on() {
            None => None,
            step if step == self.saga.waiting_on() => self.waiting_since.or(Some(now)),
            Some(_) => Some(now),
        }
    }

    pub fn from_row(row: LoanRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow { id: row.id.clone(), reason };
        let application = LoanApplication {
            applicant: Applicant {
                name: ApplicantName::parse(&row.applicant_name).map_err(corrupt)?,
                email: Email::parse(&row.applicant_email).map_err(corrupt)?,
                annual_income: Money::from_cents(row.annual_income_cents),
                monthly_debts: Money::from_cents(row.monthly_debts_cents),
            },
            property: Property {
                address: Address::parse(&row.property_address).map_err(corrupt)?,
                declared_value: Money::from_cents(row.declared_value_cents),
            },
            amount: Money::from_cents(row.amount_cents),
            term_months: TermMonths::parse(i64::from(row.term_months)).map_err(corrupt)?,
        };
        Ok(Self {
            id: LoanId::parse(&row.id).map_err(|e| corrupt(e.to_string()))?,
            application,
            saga: serde_json::from_str(&row.saga).map_err(|e| corrupt(e.to_string()))?,
            version: row.version,
            submitted_at: row.submitted_at,
            updated_at: row.updated_at,
            decided_at: row.decided_at,
            notified_at: row.notified_at,
            waiting_since: row.waiting_since,
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = loan_events)]
pub struct NewEventRow {
    pub loan_id: String,
    pub event_type: String,
    pub at: NaiveDateTime,
    pub data: String,
}

impl NewEventRow {
    pub fn new(loan_id: LoanId, event: &LoanEvent, at: NaiveDateTime) -> Self {
        Self {
            loan_id: loan_id.to_string(),
            event_type: event.type_name().to_owned(),
            at,
            data: event.data().to_string(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = loan_events)]
pub struct EventRow {
    pub id: i64,
    pub loan_id: String,
    pub event_type: String,
    pub at: NaiveDateTime,
    pub data: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = documents)]
pub struct DocumentRow {
    pub id: String,
    pub loan_id: String,
    pub kind: String,
    pub content: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    pub id: String,
    pub loan_id: String,
    pub channel: String,
    pub recipient: String,
    pub status: String,
    pub sent_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutboxRow {
    pub message_id: String,
    pub loan_id: String,
    pub destination: String,
    pub kind: String,
    pub envelope: String,
    pub created_at: NaiveDateTime,
}

impl NewOutboxRow {
    pub fn new(envelope: &Envelope, created_at: NaiveDateTime) -> Self {
        Self {
            message_id: envelope.message_id.to_string(),
            loan_id: envelope.loan_id.to_string(),
            destination: envelope.destination.as_str().to_owned(),
            kind: envelope.body.label().to_owned(),
            envelope: envelope.to_json(),
            created_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub seq: i64,
    pub message_id: String,
    pub envelope: String,
    pub created_at: NaiveDateTime,
    pub published_at: Option<NaiveDateTime>,
}

/// A durable timer: at `due_at`, `envelope` (a message for the loan, with id `id`) goes into the
/// outbox. `kind` and `request_id` say what it is for (the admin listing).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = timers)]
pub struct TimerRow {
    pub id: String,
    pub loan_id: String,
    pub kind: String,
    pub request_id: String,
    pub due_at: NaiveDateTime,
    pub envelope: String,
    pub created_at: NaiveDateTime,
}

impl TimerRow {
    /// The timer that sends `envelope` (for its loan) at `due_at`.
    pub fn new(
        envelope: &Envelope,
        kind: &str,
        request_id: String,
        due_at: NaiveDateTime,
        created_at: NaiveDateTime,
    ) -> Self {
        Self {
            id: envelope.message_id.to_string(),
            loan_id: envelope.loan_id.to_string(),
            kind: kind.to_owned(),
            request_id,
            due_at,
            envelope: envelope.to_json(),
            created_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dead_letters)]
pub struct DeadLetterRow {
    pub message_id: String,
    pub loan_id: String,
    pub destination: String,
    pub envelope: String,
    pub reason: String,
    pub failed_at: NaiveDateTime,
}

/// A node's heartbeat with its live actors (cluster mode).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = nodes)]
pub struct NodeRow {
    pub node_id: String,
    pub started_at: NaiveDateTime,
    pub heartbeat_at: NaiveDateTime,
    pub snapshot: String,
}
