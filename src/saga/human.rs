//! The human side of the process: why a loan went to an underwriter, the underwriter's requests
//! for information with their deadlines and reminders, and the durable timers the saga asks for.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{CreditScore, Money, RequestId, ReviewBand, Timestamp};

/// What a durable timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// The request expires when it fires unanswered.
    InformationDeadline,
    /// The applicant is reminded when it fires unanswered.
    InformationReminder,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InformationDeadline => "information_deadline",
            Self::InformationReminder => "information_reminder",
        }
    }
}

/// A durable timer the saga asks for ([`super::SagaCommand::ScheduleTimer`]) and is fed back
/// when due ([`super::SagaInput::TimerFired`]). A timer that no longer fits (the request was
/// answered, extended, closed) is dropped ([`super::SagaCommand::DropTimers`]), and ignored
/// should it fire all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timer {
    pub kind: TimerKind,
    pub request_id: RequestId,
    /// Whole microseconds (see [`crate::domain::to_micros`]), so it compares equal after a
    /// round trip through the database.
    pub due_at: Timestamp,
}

/// A message to the applicant before the end: not the terminal notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// "The underwriter asks you for ...": event `InformationRequestSent` once confirmed.
    InformationRequest,
    /// "Your answer is due soon": event `InformationReminderSent` once confirmed.
    InformationReminder,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InformationRequest => "information_request",
            Self::InformationReminder => "information_reminder",
        }
    }
}

/// Why a loan went to an underwriter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralReason {
    /// Every rule passed, but the score is below `decision.review_below_score`.
    ScoreBelowReviewBand,
}

/// The referral with the figures the underwriter decides on (the rules' own figures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub reason: ReferralReason,
    pub credit_score: CreditScore,
    pub review_below_score: ReviewBand,
    pub rate_bps: u32,
    pub monthly_payment: Money,
    pub loan_to_value: Decimal,
    pub debt_to_income: Decimal,
}

/// Who acts for the lender, and so whether an underwriter's claim binds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewerRole {
    /// Bound by another underwriter's claim.
    Underwriter,
    /// May act on any loan, claimed or not.
    Operator,
}

/// A member of staff acting on a loan under review (their name, as their credential names them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewer {
    pub name: String,
    pub role: ReviewerRole,
}

/// The underwriter's verdict on a referred loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnderwriterDecision {
    Approve,
    Reject,
}

/// Recorded with `LoanApproved` / `LoanRejected` when an underwriter decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewNote {
    pub by: String,
    pub note: String,
}

/// A new request for information, as the shell judged it (fields validated, times computed from
/// its clock and the reminder setting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInformationRequest {
    pub request_id: RequestId,
    pub message: String,
    pub fields: Vec<String>,
    pub requested_at: Timestamp,
    pub due_at: Timestamp,
    /// When to remind the applicant; None: no reminder.
    pub remind_at: Option<Timestamp>,
}

/// The answers an applicant gives, by field name.
pub type Answers = BTreeMap<String, String>;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Open,
    Answered,
    Expired,
    /// The loan was withdrawn or cancelled while it was open.
    Closed,
}

/// The reminder of one request (at most one `InformationReminderSent` per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderState {
    /// No reminder for this request.
    None,
    /// A timer is armed for `remind_at`.
    Armed,
    /// The notice was asked of the notifier.
    Requested,
    /// The notifier confirmed it.
    Sent,
}

/// One request for information, kept after it closes (once-per-request events are judged
/// against it, and the history of a loan under review shows them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformationRequest {
    pub id: RequestId,
    pub message: String,
    pub fields: Vec<String>,
    pub requested_at: Timestamp,
    pub due_at: Timestamp,
    pub remind_at: Option<Timestamp>,
    pub state: RequestState,
    /// The notifier confirmed the request's notice (`InformationRequestSent`).
    pub notice_sent: bool,
    pub reminder: ReminderState,
}

/// A loan's time with the underwriter: why it was referred, who holds it, what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub referral: Referral,
    pub claimed_by: Option<String>,
    /// `ReviewEscalated` was recorded (once per loan).
    pub escalated: bool,
    pub requests: Vec<InformationRequest>,
}

impl Review {
    pub fn new(referral: Referral) -> Self {
        Self { referral, claimed_by: None, escalated: false, requests: Vec::new() }
    }

    /// The request the applicant is to answer, if any.
    pub fn open_request(&self) -> Option<&InformationRequest> {
        self.requests.last().filter(|r| r.state == RequestState::Open)
    }

    pub(super) fn open_request_mut(&mut self) -> Option<&mut InformationRequest> {
        self.requests.last_mut().filter(|r| r.state == RequestState::Open)
    }

    pub(super) fn request_mut(&mut self, id: RequestId) -> Option<&mut InformationRequest> {
        self.requests.iter_mut().find(|r| r.id == id)
    }

    /// Whether `by` may act on the loan: an underwriter's claim binds other underwriters only.
    pub fn allows(&self, by: &Reviewer) -> bool {
        match (&self.claimed_by, by.role) {
            (Some(holder), ReviewerRole::Underwriter) => *holder == by.name,
            _ => true,
        }
    }
}

/// How a loan is being ended early, from the commit that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum CancelCause {
    /// The applicant withdrew.
    Withdrawn,
    /// An operator cancelled.
    Operator { by: String },
    /// The open request was not answered by its deadline.
    InformationNotProvided { request_id: RequestId },
}

impl CancelCause {
    /// `LoanCancelled`'s `data.reason` (CONTRACT.md fixes how each starts).
    pub fn reason(&self) -> String {
        match self {
            Self::Withdrawn => "withdrawn by the applicant".to_owned(),
            Self::Operator { by } => format!("operator: cancelled by {by}"),
            Self::InformationNotProvided { request_id } => {
                format!("information_not_provided: request {request_id} was not answered by its deadline")
            }
        }
    }
}
