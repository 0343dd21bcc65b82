//! The saga's state: what each step has done, which order steps completed in, the decision.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::human::{CancelCause, Review};
use crate::domain::{CreditScore, Money, RejectionReason, ReviewBand};

/// The API's status of a loan. Terminal = approved | rejected | cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoanStatus {
    /// Accepted; no step started yet.
    Submitted,
    /// A step has started (or a cancellation is compensating).
    Evaluating,
    /// Referred: waiting for an underwriter.
    UnderReview,
    /// Waiting for the applicant to answer a request for information.
    AwaitingInformation,
    Approved,
    Rejected,
    Cancelled,
}

impl LoanStatus {
    pub const ALL: [LoanStatus; 7] = [
        LoanStatus::Submitted,
        LoanStatus::Evaluating,
        LoanStatus::UnderReview,
        LoanStatus::AwaitingInformation,
        LoanStatus::Approved,
        LoanStatus::Rejected,
        LoanStatus::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Approved | Self::Rejected | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Evaluating => "evaluating",
            Self::UnderReview => "under_review",
            Self::AwaitingInformation => "awaiting_information",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for LoanStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two parallel steps of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    CreditCheck,
    Appraisal,
}

/// Lifecycle of one step. The value of a completed step is kept through compensation so that
/// the history (and e.g. a cancelled loan's credit score) stays explainable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState<T> {
    NotStarted,
    Running,
    Completed { value: T },
    Failed { reason: String },
    Compensating { value: T },
    Compensated { value: T },
}

impl<T: Clone> StepState<T> {
    /// Still waiting for the step's outcome or for its compensation to be confirmed.
    pub fn is_unsettled(&self) -> bool {
        matches!(self, Self::Running | Self::Compensating { .. })
    }

    pub fn value(&self) -> Option<T> {
        match self {
            Self::Completed { value } | Self::Compensating { value } | Self::Compensated { value } => {
                Some(value.clone())
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    NotRequested,
    Requested,
    Done,
}

/// What the decision said; kept for the API view (`rate_bps`, `monthly_payment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionSummary {
    pub approved: bool,
    pub reasons: Vec<RejectionReason>,
    pub rate_bps: u32,
    pub monthly_payment: Money,
    pub loan_to_value: Decimal,
    pub debt_to_income: Decimal,
}

/// The whole state of one loan's process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanSaga {
    pub status: LoanStatus,
    pub credit: StepState<CreditScore>,
    pub appraisal: StepState<Money>,
    /// Steps in the order they completed: compensation runs in the reverse order.
    pub completed_order: Vec<StepKind>,
    pub decision: Option<DecisionSummary>,
    pub schedule_generated: bool,
    pub notification: NotificationState,
    /// The referral band the loan is decided with, fixed at submission and kept with the loan:
    /// every node (and a replay after a restart with other settings) decides the loan alike.
    /// Loans stored before the band existed read as "never".
    #[serde(default, skip_serializing_if = "ReviewBand::is_never")]
    pub review_band: ReviewBand,
    /// Set once the loan is referred, and kept (the view shows why it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Set from the commit of a withdrawal, a cancellation or an expiry: the loan compensates
    /// and ends cancelled; no human input applies any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancelCause>,
}

impl Default for LoanSaga {
    fn default() -> Self {
        Self::new()
    }
}

impl LoanSaga {
    /// A freshly submitted loan that is never referred.
    pub fn new() -> Self {
        Self::with_review_band(ReviewBand::NEVER)
    }

    /// A freshly submitted loan, referred to an underwriter when it passes with a score below
    /// `band`.
    pub fn with_review_band(band: ReviewBand) -> Self {
        Self {
            status: LoanStatus::Submitted,
            credit: StepState::NotStarted,
            appraisal: StepState::NotStarted,
            completed_order: Vec::new(),
            decision: None,
            schedule_generated: false,
            notification: NotificationState::NotRequested,
            review_band: band,
            review: None,
            cancellation: None,
        }
    }

    /// Terminal and notified: nothing more will ever happen to this loan.
    #[cfg(test)]
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal() && self.notification == NotificationState::Done
    }

    /// The credit score to report (a cancelled loan may still show it).
    pub fn credit_score(&self) -> Option<CreditScore> {
        self.credit.value()
    }

    /// The appraised value to report: never for a cancelled loan.
    pub fn appraised_value(&self) -> Option<Money> {
        match self.status {
            LoanStatus::Cancelled => None,
            _ => self.appraisal.value(),
        }
    }

    pub fn rate_bps(&self) -> Option<u32> {
        self.decision.as_ref().map(|d| d.rate_bps)
    }

    pub fn monthly_payment(&self) -> Option<Money> {
        self.decision.as_ref().map(|d| d.monthly_payment)
    }

    /// The step the loan currently waits on, for operators ("stuck" loans).
    pub fn waiting_on(&self) -> Option<&'static str> {
        if self.status == LoanStatus::Submitted {
            return Some("start");
        }
        if self.credit.is_unsettled() {
            return Some(if matches!(self.credit, StepState::Running) { "credit_check" } else { "credit_release" });
        }
        if self.appraisal.is_unsettled() {
            return Some(if matches!(self.appraisal, StepState::Running) { "appraisal" } else { "appraisal_void" });
        }
        match self.status {
            LoanStatus::UnderReview => return Some("underwriter"),
            LoanStatus::AwaitingInformation => return Some("applicant"),
            _ => {}
        }
        if self.status == LoanStatus::Approved && !self.schedule_generated {
            return Some("schedule");
        }
        if self.status.is_terminal() && self.notification != NotificationState::Done {
            return Some("notification");
        }
        None
    }
}
