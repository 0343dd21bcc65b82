//! The human transitions: referral, claim, the underwriter's decision, requests for information
//! with their notices, reminders, deadlines and extensions, escalation, and ending a loan early
//! (withdrawal, operator cancellation, expiry). Pure, like the rest of the saga.

use super::human::{
    Answers, CancelCause, InformationRequest, NewInformationRequest, NoticeKind, Referral, ReferralReason,
    ReminderState, RequestState, Review, ReviewNote, Reviewer, Timer, TimerKind, UnderwriterDecision,
};
use super::machine::{Output, SagaCommand};
use super::state::{DecisionSummary, LoanSaga, LoanStatus};
use super::LoanEvent;
use crate::domain::rules::Decision;
use crate::domain::{to_micros, CreditScore, LoanApplication, RejectionReason, RequestId, Timestamp};

impl LoanSaga {
    /// The rules approved the loan with `decision`: refer it when its score is below the band.
    /// Returns whether it was referred.
    pub(super) fn refer_if_in_band(&mut self, score: CreditScore, decision: &Decision, out: &mut Output) -> bool {
        if !self.review_band.refers(score) {
            return false;
        }
        let referral = Referral {
            reason: ReferralReason::ScoreBelowReviewBand,
            credit_score: score,
            review_below_score: self.review_band,
            rate_bps: decision.rate_bps,
            monthly_payment: decision.monthly_payment,
            loan_to_value: decision.loan_to_value,
            debt_to_income: decision.debt_to_income,
        };
        out.events.push(Self::referred_event(&referral));
        self.status = LoanStatus::UnderReview;
        self.review = Some(Review::new(referral));
        true
    }

    /// The event a referral records.
    fn referred_event(referral: &Referral) -> LoanEvent {
        LoanEvent::LoanReferred {
            reason: referral.reason,
            credit_score: referral.credit_score,
            review_below_score: referral.review_below_score,
            rate_bps: referral.rate_bps,
            monthly_payment: referral.monthly_payment,
            loan_to_value: referral.loan_to_value,
            debt_to_income: referral.debt_to_income,
        }
    }

    pub(super) fn claim(&mut self, by: &Reviewer, out: &mut Output) -> bool {
        if !self.in_review() {
            return false;
        }
        let Some(review) = self.review.as_mut() else { return false };
        if review.claimed_by.as_deref() == Some(by.name.as_str()) || !review.allows(by) {
            return false;
        }
        review.claimed_by = Some(by.name.clone());
        out.events.push(LoanEvent::ReviewClaimed { by: by.name.clone() });
        true
    }

    pub(super) fn underwriter_decides(
        &mut self,
        decision: UnderwriterDecision,
        note: &str,
        by: &Reviewer,
        out: &mut Output,
    ) -> bool {
        if self.status != LoanStatus::UnderReview || self.cancellation.is_some() {
            return false;
        }
        let Some(review) = self.review.as_ref().filter(|r| r.allows(by)) else { return false };
        let r = &review.referral;
        let (approved, reasons) = match decision {
            UnderwriterDecision::Approve => (true, vec![]),
            UnderwriterDecision::Reject => (false, vec![RejectionReason::UnderwriterDeclined]),
        };
        let summary = DecisionSummary {
            approved,
            reasons,
            rate_bps: r.rate_bps,
            monthly_payment: r.monthly_payment,
            loan_to_value: r.loan_to_value,
            debt_to_income: r.debt_to_income,
        };
        self.conclude(summary, Some(ReviewNote { by: by.name.clone(), note: note.to_owned() }), out);
        true
    }

    pub(super) fn request_information(
        &mut self,
        request: &NewInformationRequest,
        by: &Reviewer,
        out: &mut Output,
    ) -> bool {
        if self.status != LoanStatus::UnderReview || self.cancellation.is_some() {
            return false;
        }
        let (requested_at, due_at) = (to_micros(request.requested_at), to_micros(request.due_at));
        let remind_at = request.remind_at.map(to_micros).filter(|at| *at < due_at);
        let Some(review) = self.review.as_mut().filter(|r| r.allows(by)) else { return false };
        if due_at <= requested_at || review.requests.iter().any(|r| r.id == request.request_id) {
            return false;
        }
        let id = request.request_id;
        review.requests.push(InformationRequest {
            id,
            message: request.message.clone(),
            fields: request.fields.clone(),
            requested_at,
            due_at,
            remind_at,
            state: RequestState::Open,
            notice_sent: false,
            reminder: if remind_at.is_some() { ReminderState::Armed } else { ReminderState::None },
        });
        self.status = LoanStatus::AwaitingInformation;
        out.events.push(LoanEvent::InformationRequested {
            request_id: id,
            message: request.message.clone(),
            fields: request.fields.clone(),
            due_at,
            by: by.name.clone(),
        });
        out.commands.push(SagaCommand::SendNotice { request_id: id, notice: NoticeKind::InformationRequest });
        arm(out, TimerKind::InformationDeadline, id, due_at);
        if let Some(at) = remind_at {
            arm(out, TimerKind::InformationReminder, id, at);
        }
        true
    }

    pub(super) fn provide_information(&mut self, request_id: RequestId, answers: &Answers, out: &mut Output) -> bool {
        if self.status != LoanStatus::AwaitingInformation || self.cancellation.is_some() {
            return false;
        }
        let Some(open) = self.review.as_mut().and_then(Review::open_request_mut) else { return false };
        if open.id != request_id || !answers_fit(&open.fields, answers) {
            return false;
        }
        open.state = RequestState::Answered;
        self.status = LoanStatus::UnderReview;
        out.events.push(LoanEvent::InformationProvided { request_id, answers: answers.clone() });
        drop_timers(out, request_id);
        true
    }

    pub(super) fn extend_deadline(
        &mut self,
        request_id: RequestId,
        due_at: Timestamp,
        remind_at: Option<Timestamp>,
        by: &Reviewer,
        out: &mut Output,
    ) -> bool {
        if self.status != LoanStatus::AwaitingInformation || self.cancellation.is_some() {
            return false;
        }
        let Some(review) = self.review.as_mut().filter(|r| r.allows(by)) else { return false };
        let Some(open) = review.open_request_mut() else { return false };
        let due_at = to_micros(due_at);
        if open.id != request_id || due_at == open.due_at || due_at <= open.requested_at {
            return false;
        }
        open.due_at = due_at;
        out.events.push(LoanEvent::InformationDeadlineExtended { request_id, due_at, by: by.name.clone() });
        // The old deadline's row (and an unsent reminder's) goes; the unit arms the new ones after.
        drop_timers(out, request_id);
        arm(out, TimerKind::InformationDeadline, request_id, due_at);
        // A reminder already sent (or on its way) is not sent again: once per request.
        if matches!(open.reminder, ReminderState::None | ReminderState::Armed) {
            let remind_at = remind_at.map(to_micros).filter(|at| *at < due_at);
            open.remind_at = remind_at;
            open.reminder = if remind_at.is_some() { ReminderState::Armed } else { ReminderState::None };
            if let Some(at) = remind_at {
                arm(out, TimerKind::InformationReminder, request_id, at);
            }
        }
        true
    }

    /// A timer applies only while its request is open and it is the request's current deadline
    /// or reminder time: a stale one (extended, answered, closed) or a second delivery is not.
    /// Nor is a reminder that fires (`fired_at`) at or past its request's deadline: after a
    /// node was down both are overdue, and the applicant would be reminded of an expired request.
    pub(super) fn timer_fired(
        &mut self,
        app: &LoanApplication,
        timer: &Timer,
        fired_at: Option<Timestamp>,
        out: &mut Output,
    ) -> bool {
        if self.status != LoanStatus::AwaitingInformation || self.cancellation.is_some() {
            return false;
        }
        let Some(open) = self.review.as_mut().and_then(Review::open_request_mut) else { return false };
        if open.id != timer.request_id {
            return false;
        }
        match timer.kind {
            TimerKind::InformationReminder => {
                if open.reminder != ReminderState::Armed || open.remind_at != Some(timer.due_at) {
                    return false;
                }
                if fired_at.is_some_and(|at| to_micros(at) >= open.due_at) {
                    return false;
                }
                open.reminder = ReminderState::Requested;
                out.commands
                    .push(SagaCommand::SendNotice { request_id: open.id, notice: NoticeKind::InformationReminder });
                true
            }
            TimerKind::InformationDeadline => {
                if open.due_at != timer.due_at {
                    return false;
                }
                open.state = RequestState::Expired;
                out.events.push(LoanEvent::InformationRequestExpired { request_id: open.id });
                // The deadline's own row went with the firing; an unsent reminder's goes now.
                drop_timers(out, open.id);
                let cause = CancelCause::InformationNotProvided { request_id: open.id };
                self.begin_cancellation(app, cause, out);
                true
            }
        }
    }

    /// The notifier confirmed a notice: recorded once per request, even when the request has
    /// closed since (the applicant did get it).
    pub(super) fn notice_sent(
        &mut self,
        request_id: RequestId,
        notice: NoticeKind,
        channel: &str,
        out: &mut Output,
    ) -> bool {
        let Some(request) = self.review.as_mut().and_then(|r| r.request_mut(request_id)) else { return false };
        match notice {
            NoticeKind::InformationRequest => {
                if request.notice_sent {
                    return false;
                }
                request.notice_sent = true;
                out.events.push(LoanEvent::InformationRequestSent { request_id, channel: channel.to_owned() });
            }
            NoticeKind::InformationReminder => {
                if request.reminder != ReminderState::Requested {
                    return false;
                }
                request.reminder = ReminderState::Sent;
                out.events.push(LoanEvent::InformationReminderSent { request_id, channel: channel.to_owned() });
            }
        }
        true
    }

    pub(super) fn review_overdue(&mut self, out: &mut Output) -> bool {
        if self.status != LoanStatus::UnderReview || self.cancellation.is_some() {
            return false;
        }
        let Some(review) = self.review.as_mut().filter(|r| !r.escalated) else { return false };
        review.escalated = true;
        out.events.push(LoanEvent::ReviewEscalated {});
        true
    }

    /// A withdrawal or an operator's cancellation, on any loan that is not terminal and not
    /// already being ended.
    pub(super) fn cancel_on_request(&mut self, app: &LoanApplication, cause: &CancelCause, out: &mut Output) -> bool {
        if self.status.is_terminal() || self.cancellation.is_some() || self.has_failed_step() {
            return false;
        }
        if matches!(cause, CancelCause::InformationNotProvided { .. }) {
            return false;
        }
        out.events.push(LoanEvent::CancellationRequested { reason: cause.reason() });
        self.begin_cancellation(app, cause.clone(), out);
        true
    }

    /// From here on the loan only compensates and ends: the open request (if any) closes, the
    /// status shows the automatic work, and `progress` waits for steps in flight first.
    fn begin_cancellation(&mut self, app: &LoanApplication, cause: CancelCause, out: &mut Output) {
        if let Some(open) = self.review.as_mut().and_then(Review::open_request_mut) {
            open.state = RequestState::Closed;
            drop_timers(out, open.id);
        }
        self.cancellation = Some(cause);
        if self.status != LoanStatus::Submitted {
            self.status = LoanStatus::Evaluating;
        }
        self.progress(app, out);
    }

    /// Under review or awaiting the applicant, and not being ended.
    fn in_review(&self) -> bool {
        matches!(self.status, LoanStatus::UnderReview | LoanStatus::AwaitingInformation) && self.cancellation.is_none()
    }

    /// The open request, for the view and for judging an answer.
    pub fn open_request(&self) -> Option<&InformationRequest> {
        self.review.as_ref().and_then(Review::open_request)
    }
}

fn arm(out: &mut Output, kind: TimerKind, request_id: RequestId, due_at: Timestamp) {
    out.commands.push(SagaCommand::ScheduleTimer { timer: Timer { kind, request_id, due_at } });
}

fn drop_timers(out: &mut Output, request_id: RequestId) {
    out.commands.push(SagaCommand::DropTimers { request_id });
}

/// Exactly the requested fields, each non-blank: the saga's own check (the HTTP layer explains a
/// misfit as a 422 before it gets here).
fn answers_fit(fields: &[String], answers: &Answers) -> bool {
    answers.len() == fields.len() && fields.iter().all(|f| answers.get(f).is_some_and(|a| !a.trim().is_empty()))
}
