//! The transition function. Steps run in parallel; the decision waits for both; a permanent
//! failure waits for the other step to settle, then compensates completed steps one at a time in
//! reverse order of completion, then cancels. Every terminal loan is notified exactly once.

use serde::{Deserialize, Serialize};

use super::human::{CancelCause, NewInformationRequest, NoticeKind, ReviewNote, Reviewer, Timer, UnderwriterDecision};
use super::Answers;
use crate::domain::{decide, CreditScore, LoanApplication, Money, RequestId, Timestamp, Verdict};

use super::state::{DecisionSummary, LoanSaga, LoanStatus, NotificationState, StepKind, StepState};
use super::LoanEvent;

/// What the loan actor feeds the saga: results and confirmations from the other actors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum SagaInput {
    CreditChecked {
        score: CreditScore,
    },
    CreditCheckFailed {
        reason: String,
        attempts: u32,
    },
    PropertyAppraised {
        value: Money,
    },
    AppraisalFailed {
        reason: String,
        attempts: u32,
    },
    CreditCheckReleased,
    AppraisalVoided,
    ScheduleGenerated {
        lines: u16,
    },
    ApplicantNotified {
        channel: String,
    },
    /// The notifier delivered a notice of a request (not the terminal notification).
    NoticeSent {
        request_id: RequestId,
        notice: NoticeKind,
        channel: String,
    },
    /// A durable timer is due (possibly stale, possibly a second delivery). `fired_at`: when the
    /// timer component moved it into the outbox (absent in the row as armed).
    TimerFired {
        timer: Timer,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fired_at: Option<Timestamp>,
    },
    /// The escalation sweep: the loan has been under review longer than the setting allows.
    ReviewOverdue,
    /// An underwriter takes the loan under review.
    Claim {
        by: Reviewer,
    },
    /// An underwriter decides a loan under review.
    Decide {
        decision: UnderwriterDecision,
        note: String,
        by: Reviewer,
    },
    /// An underwriter asks the applicant for information.
    RequestInformation {
        request: NewInformationRequest,
        by: Reviewer,
    },
    /// The applicant answers the open request.
    ProvideInformation {
        request_id: RequestId,
        answers: Answers,
    },
    /// An underwriter moves the open request's deadline (and its reminder, if not yet sent).
    ExtendDeadline {
        request_id: RequestId,
        due_at: Timestamp,
        remind_at: Option<Timestamp>,
        by: Reviewer,
    },
    /// The applicant withdraws or an operator cancels: compensate, then cancel.
    Cancel {
        cause: CancelCause,
    },
}

/// What the saga asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SagaCommand {
    CheckCredit,
    AppraiseProperty,
    ReleaseCreditCheck,
    VoidAppraisal,
    /// Local to the loan actor: build and store the repayment schedule.
    GenerateSchedule,
    NotifyApplicant {
        status: LoanStatus,
    },
    /// Tell the applicant about a request (or remind them of it) through the notifier.
    SendNotice {
        request_id: RequestId,
        notice: NoticeKind,
    },
    /// Persist a durable timer in the same unit of work as this transition.
    ScheduleTimer {
        timer: Timer,
    },
    /// The request's timers are no longer needed (answered, extended, closed): delete their rows
    /// in the same unit, before the timers it arms. One that fires anyway (held in memory, or
    /// armed in the same write batch) is ignored as stale.
    DropTimers {
        request_id: RequestId,
    },
}

/// The result of one input. `applied == false` means the input did not fit the state (a
/// duplicate or a stale message): nothing changed and nothing is to be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: LoanSaga,
    pub events: Vec<LoanEvent>,
    pub commands: Vec<SagaCommand>,
    pub applied: bool,
}

impl LoanSaga {
    /// Start a submitted loan: both steps run at once. Pure, like `handle`; a loan that has
    /// started already ignores it.
    pub fn start(&self) -> Transition {
        let mut next = self.clone();
        let mut out = Output::default();
        let applied = next.begin(&mut out);
        if !applied {
            return Transition { state: self.clone(), events: vec![], commands: vec![], applied };
        }
        Transition { state: next, events: out.events, commands: out.commands, applied }
    }

    /// Apply one input. Pure: the same state and input always give the same transition.
    pub fn handle(&self, app: &LoanApplication, input: &SagaInput) -> Transition {
        let mut next = self.clone();
        let mut out = Output::default();
        let applied = next.apply(app, input, &mut out);
        if !applied {
            return Transition { state: self.clone(), events: vec![], commands: vec![], applied };
        }
        Transition { state: next, events: out.events, commands: out.commands, applied }
    }

    fn apply(&mut self, app: &LoanApplication, input: &SagaInput, out: &mut Output) -> bool {
        match input {
            SagaInput::CreditChecked { score } => {
                if self.credit != StepState::Running {
                    return false;
                }
                self.credit = StepState::Completed { value: *score };
                self.completed_order.push(StepKind::CreditCheck);
                out.events.push(LoanEvent::CreditChecked { credit_score: *score });
                self.progress(app, out);
                true
            }
            SagaInput::PropertyAppraised { value } => {
                if self.appraisal != StepState::Running {
                    return false;
                }
                self.appraisal = StepState::Completed { value: *value };
                self.completed_order.push(StepKind::Appraisal);
                out.events.push(LoanEvent::PropertyAppraised { appraised_value: *value });
                self.progress(app, out);
                true
            }
            SagaInput::CreditCheckFailed { reason, attempts } => {
                if self.credit != StepState::Running {
                    return false;
                }
                self.credit = StepState::Failed { reason: reason.clone() };
                out.events.push(LoanEvent::CreditCheckFailed { reason: reason.clone(), attempts: *attempts });
                self.progress(app, out);
                true
            }
            SagaInput::AppraisalFailed { reason, attempts } => {
                if self.appraisal != StepState::Running {
                    return false;
                }
                self.appraisal = StepState::Failed { reason: reason.clone() };
                out.events.push(LoanEvent::AppraisalFailed { reason: reason.clone(), attempts: *attempts });
                self.progress(app, out);
                true
            }
            SagaInput::CreditCheckReleased => {
                let StepState::Compensating { value } = self.credit else { return false };
                self.credit = StepState::Compensated { value };
                out.events.push(LoanEvent::CreditCheckReleased {});
                self.progress(app, out);
                true
            }
            SagaInput::AppraisalVoided => {
                let StepState::Compensating { value } = self.appraisal else { return false };
                self.appraisal = StepState::Compensated { value };
                out.events.push(LoanEvent::AppraisalVoided {});
                self.progress(app, out);
                true
            }
            SagaInput::ScheduleGenerated { lines } => {
                if self.status != LoanStatus::Approved || self.schedule_generated {
                    return false;
                }
                self.schedule_generated = true;
                out.events.push(LoanEvent::ScheduleGenerated { lines: *lines });
                self.request_notification(out);
                true
            }
            SagaInput::ApplicantNotified { channel } => {
                if self.notification != NotificationState::Requested {
                    return false;
                }
                self.notification = NotificationState::Done;
                out.events.push(LoanEvent::ApplicantNotified {
                    channel: channel.clone(),
                    status: self.status.as_str().to_owned(),
                });
                true
            }
            SagaInput::NoticeSent { request_id, notice, channel } => {
                self.notice_sent(*request_id, *notice, channel, out)
            }
            SagaInput::TimerFired { timer, fired_at } => self.timer_fired(app, timer, *fired_at, out),
            SagaInput::ReviewOverdue => self.review_overdue(out),
            SagaInput::Claim { by } => self.claim(by, out),
            SagaInput::Decide { decision, note, by } => self.underwriter_decides(*decision, note, by, out),
            SagaInput::RequestInformation { request, by } => self.request_information(request, by, out),
            SagaInput::ProvideInformation { request_id, answers } => {
                self.provide_information(*request_id, answers, out)
            }
            SagaInput::ExtendDeadline { request_id, due_at, remind_at, by } => {
                self.extend_deadline(*request_id, *due_at, *remind_at, by, out)
            }
            SagaInput::Cancel { cause } => self.cancel_on_request(app, cause, out),
        }
    }

    fn begin(&mut self, out: &mut Output) -> bool {
        if self.status != LoanStatus::Submitted {
            return false;
        }
        self.status = LoanStatus::Evaluating;
        self.credit = StepState::Running;
        self.appraisal = StepState::Running;
        out.commands.push(SagaCommand::CheckCredit);
        out.commands.push(SagaCommand::AppraiseProperty);
        true
    }

    pub(super) fn has_failed_step(&self) -> bool {
        matches!(self.credit, StepState::Failed { .. }) || matches!(self.appraisal, StepState::Failed { .. })
    }

    /// After any step settles: decide, compensate, or keep waiting. A loan being ended early
    /// (withdrawn, cancelled, expired) takes the failure path: no decision.
    pub(super) fn progress(&mut self, app: &LoanApplication, out: &mut Output) {
        let failed = self.has_failed_step() || self.cancellation.is_some();
        if !failed {
            if let (StepState::Completed { value: score }, StepState::Completed { value: appraised }) =
                (&self.credit, &self.appraisal)
            {
                let (score, appraised) = (*score, *appraised);
                self.decide(app, score, appraised, out);
            }
            return;
        }
        // A failure: wait until nothing is in flight, then compensate one step at a time.
        if self.credit.is_unsettled() || self.appraisal.is_unsettled() {
            return;
        }
        match self.next_to_compensate() {
            Some(StepKind::CreditCheck) => {
                if let StepState::Completed { value } = self.credit {
                    self.credit = StepState::Compensating { value };
                    out.commands.push(SagaCommand::ReleaseCreditCheck);
                }
            }
            Some(StepKind::Appraisal) => {
                if let StepState::Completed { value } = self.appraisal {
                    self.appraisal = StepState::Compensating { value };
                    out.commands.push(SagaCommand::VoidAppraisal);
                }
            }
            None => self.cancel(out),
        }
    }

    /// The most recently completed step that still stands uncompensated.
    fn next_to_compensate(&self) -> Option<StepKind> {
        self.completed_order.iter().rev().copied().find(|kind| match kind {
            StepKind::CreditCheck => matches!(self.credit, StepState::Completed { .. }),
            StepKind::Appraisal => matches!(self.appraisal, StepState::Completed { .. }),
        })
    }

    fn decide(&mut self, app: &LoanApplication, score: CreditScore, appraised: Money, out: &mut Output) {
        let decision = decide(app, score, appraised);
        let (approved, reasons) = match &decision.verdict {
            Verdict::Approved => (true, vec![]),
            Verdict::Rejected(reasons) => (false, reasons.clone()),
        };
        if approved && self.refer_if_in_band(score, &decision, out) {
            return;
        }
        let summary = DecisionSummary {
            approved,
            reasons,
            rate_bps: decision.rate_bps,
            monthly_payment: decision.monthly_payment,
            loan_to_value: decision.loan_to_value,
            debt_to_income: decision.debt_to_income,
        };
        self.conclude(summary, None, out);
    }

    /// End a loan with its decision (the rules', or an underwriter's with `review`): the event,
    /// then the schedule of an approved loan or the notification of a rejected one.
    pub(super) fn conclude(&mut self, summary: DecisionSummary, review: Option<ReviewNote>, out: &mut Output) {
        if summary.approved {
            self.status = LoanStatus::Approved;
            out.events.push(LoanEvent::LoanApproved {
                rate_bps: summary.rate_bps,
                monthly_payment: summary.monthly_payment,
                loan_to_value: summary.loan_to_value,
                debt_to_income: summary.debt_to_income,
                review,
            });
            out.commands.push(SagaCommand::GenerateSchedule);
        } else {
            self.status = LoanStatus::Rejected;
            out.events.push(LoanEvent::LoanRejected {
                reasons: summary.reasons.clone(),
                rate_bps: summary.rate_bps,
                monthly_payment: summary.monthly_payment,
                loan_to_value: summary.loan_to_value,
                debt_to_income: summary.debt_to_income,
                review,
            });
            self.request_notification(out);
        }
        self.decision = Some(summary);
    }

    fn cancel(&mut self, out: &mut Output) {
        let reason = match (&self.credit, &self.appraisal) {
            _ if self.cancellation.is_some() => self.cancellation.as_ref().map(CancelCause::reason).unwrap_or_default(),
            (StepState::Failed { reason }, _) => format!("credit check failed: {reason}"),
            (_, StepState::Failed { reason }) => format!("appraisal failed: {reason}"),
            _ => "step failed".to_owned(),
        };
        self.status = LoanStatus::Cancelled;
        out.events.push(LoanEvent::LoanCancelled { reason });
        self.request_notification(out);
    }

    pub(super) fn request_notification(&mut self, out: &mut Output) {
        if self.notification == NotificationState::NotRequested {
            self.notification = NotificationState::Requested;
            out.commands.push(SagaCommand::NotifyApplicant { status: self.status });
        }
    }
}

#[derive(Default)]
pub(super) struct Output {
    pub(super) events: Vec<LoanEvent>,
    pub(super) commands: Vec<SagaCommand>,
}
