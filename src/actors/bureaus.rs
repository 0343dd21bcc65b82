//! The simulated outside world: the credit bureau, the appraiser and the notifier, by the
//! deterministic rules of CONTRACT.md, with configurable latency (waited in the service actor's
//! timer queue, never in a blocked mailbox) and transient failures retried with exponential
//! backoff and jitter.

use std::time::Duration;

use super::mail::{idempotency_key, MailProvider};
use super::service::{Attempt, Recipient, Service};
use crate::domain::{appraised_value, credit_score, Address, Email};
use crate::messages::{backoff, ActorKind, Envelope, MessageBody};
use crate::saga::SagaInput;
use crate::settings::BureauSettings;

/// What one attempt at a simulated bureau call came to.
enum BureauOutcome<T> {
    Answered(T),
    /// For good, with the reason.
    Failed(String),
    /// Transiently: back off this long, then try again.
    RetryAfter(Duration),
}

/// One attempt at a simulated bureau call, its latency already waited: it may fail
/// transiently, up to `max_attempts`; then it answers, or fails for good with a reason.
fn call_bureau<T>(
    settings: &BureauSettings,
    attempt: u32,
    answer: impl FnOnce() -> Result<T, String>,
) -> BureauOutcome<T> {
    if settings.failure_rate > 0.0 && rand::random::<f64>() < settings.failure_rate {
        if attempt < settings.max_attempts {
            let (base, max) =
                (Duration::from_millis(settings.retry_base_ms), Duration::from_millis(settings.retry_max_ms));
            return BureauOutcome::RetryAfter(backoff(attempt, base, max));
        }
        return BureauOutcome::Failed(format!("bureau unavailable after {} attempts", settings.max_attempts));
    }
    match answer() {
        Ok(value) => BureauOutcome::Answered(value),
        Err(reason) => BureauOutcome::Failed(reason),
    }
}

/// The reply to the loan, sent without a commit of its own: the loan's unit consumes the
/// request when it applies the reply.
fn reply(request: &Envelope, input: SagaInput) -> Attempt {
    Attempt::Reply(Envelope::uncommitted_reply(request, MessageBody::Saga(input)))
}

fn unexpected(envelope: &Envelope) -> Attempt {
    Attempt::DeadLetter(format!("unexpected message {}", envelope.body.label()))
}

pub struct CreditBureau {
    pub settings: BureauSettings,
}

impl Service for CreditBureau {
    const KIND: ActorKind = ActorKind::Credit;

    fn latency(&self, body: &MessageBody) -> Duration {
        match body {
            MessageBody::CheckCredit { .. } => self.settings.credit_latency(),
            _ => Duration::ZERO,
        }
    }

    fn attempt(&self, envelope: &Envelope, attempt: u32) -> Attempt {
        match &envelope.body {
            MessageBody::CheckCredit { email } => {
                match call_bureau(&self.settings, attempt, || Email::parse(email).map(|e| credit_score(&e))) {
                    BureauOutcome::RetryAfter(wait) => Attempt::RetryAfter(wait),
                    BureauOutcome::Answered(score) => reply(envelope, SagaInput::CreditChecked { score }),
                    BureauOutcome::Failed(reason) => {
                        reply(envelope, SagaInput::CreditCheckFailed { reason, attempts: attempt })
                    }
                }
            }
            MessageBody::ReleaseCreditCheck => reply(envelope, SagaInput::CreditCheckReleased),
            _ => unexpected(envelope),
        }
    }
}

pub struct Appraiser {
    pub settings: BureauSettings,
}

impl Service for Appraiser {
    const KIND: ActorKind = ActorKind::Appraisal;

    fn latency(&self, body: &MessageBody) -> Duration {
        match body {
            MessageBody::AppraiseProperty { .. } => self.settings.appraisal_latency(),
            _ => Duration::ZERO,
        }
    }

    fn attempt(&self, envelope: &Envelope, attempt: u32) -> Attempt {
        match &envelope.body {
            MessageBody::AppraiseProperty { address, declared_value } => {
                let appraise = || {
                    let address = Address::parse(address)?;
                    if address.fails_appraisal() {
                        return Err("the property cannot be appraised".to_owned());
                    }
                    Ok(appraised_value(&address, *declared_value))
                };
                match call_bureau(&self.settings, attempt, appraise) {
                    BureauOutcome::RetryAfter(wait) => Attempt::RetryAfter(wait),
                    BureauOutcome::Answered(value) => reply(envelope, SagaInput::PropertyAppraised { value }),
                    BureauOutcome::Failed(reason) => {
                        reply(envelope, SagaInput::AppraisalFailed { reason, attempts: attempt })
                    }
                }
            }
            MessageBody::VoidAppraisal => reply(envelope, SagaInput::AppraisalVoided),
            _ => unexpected(envelope),
        }
    }
}

/// Sends the one notification of a terminal loan (through the simulated mail provider) and
/// tells the loan, whose unit records it: the loan's version check and the unique constraint on
/// `loan_id` make the record exactly once. No message carries the address: the loan actor of
/// this process hands it over in memory, or it is read from the loan's row at send time
/// ([`super::handoff`]); the send carries an idempotency key so that a second delivery of the
/// message reaches the applicant once (see [`super::mail`]).
pub struct Notifier {
    pub provider: MailProvider,
}

pub const NOTIFICATION_CHANNEL: &str = "email";
/// The notice of a loan's end (approved, rejected, cancelled): one per loan.
pub const TERMINAL_NOTICE: &str = "terminal";

impl Service for Notifier {
    const KIND: ActorKind = ActorKind::Notifier;

    fn latency(&self, _body: &MessageBody) -> Duration {
        Duration::ZERO
    }

    fn reads_recipient(&self, body: &MessageBody) -> bool {
        matches!(body, MessageBody::NotifyApplicant { .. } | MessageBody::SendNotice { .. })
    }

    fn attempt(&self, envelope: &Envelope, _attempt: u32) -> Attempt {
        unexpected(envelope)
    }

    fn attempt_for(&self, envelope: &Envelope, _attempt: u32, recipient: &Recipient) -> Attempt {
        // The provider's key names the notice, so a second delivery of one is not mailed again.
        let (key, sent) = match &envelope.body {
            MessageBody::NotifyApplicant { .. } => (
                idempotency_key(envelope.loan_id, TERMINAL_NOTICE),
                SagaInput::ApplicantNotified { channel: NOTIFICATION_CHANNEL.to_owned() },
            ),
            MessageBody::SendNotice { request_id, notice } => (
                idempotency_key(envelope.loan_id, &format!("{}/{request_id}", notice.as_str())),
                SagaInput::NoticeSent {
                    request_id: *request_id,
                    notice: *notice,
                    channel: NOTIFICATION_CHANNEL.to_owned(),
                },
            ),
            _ => return unexpected(envelope),
        };
        match recipient {
            Recipient::Address(address) => match Email::parse(address) {
                Ok(email) => {
                    self.provider.send(&key, &email);
                    reply(envelope, sent)
                }
                Err(reason) => Attempt::DeadLetter(format!("the loan's email {reason}")),
            },
            // Erased only once notified: this is a late copy, which the loan ignores.
            Recipient::Erased => reply(envelope, sent),
            Recipient::NoLoan => Attempt::DeadLetter("no such loan".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::mail::Sent;
    use crate::domain::LoanId;
    use crate::metrics::Metrics;
    use crate::saga::LoanStatus;

    fn settings(failure_rate: f64) -> BureauSettings {
        BureauSettings {
            credit_latency_ms: 40,
            appraisal_latency_ms: 0,
            failure_rate,
            max_attempts: 3,
            retry_base_ms: 20,
            retry_max_ms: 2_000,
        }
    }

    fn check_credit() -> Envelope {
        Envelope::new(LoanId::generate(), None, MessageBody::CheckCredit { email: "Ada@Example.com".into() })
    }

    #[test]
    fn a_bureau_that_answers_replies_uncommitted_with_the_contract_score() {
        let bureau = CreditBureau { settings: settings(0.0) };
        let request = check_credit();
        assert_eq!(bureau.latency(&request.body), Duration::from_millis(40));
        assert_eq!(bureau.latency(&MessageBody::ReleaseCreditCheck), Duration::ZERO);
        let Attempt::Reply(reply) = bureau.attempt(&request, 1) else { panic!("expected a reply") };
        assert!(reply.is_uncommitted());
        assert_eq!(reply.outbox_row(), request.message_id, "the loan's unit consumes the request");
        let expected = credit_score(&Email::parse("ada@example.com").unwrap());
        assert_eq!(reply.body, MessageBody::Saga(SagaInput::CreditChecked { score: expected }));
    }

    #[test]
    fn a_bureau_that_keeps_failing_backs_off_then_reports_the_failure() {
        let bureau = CreditBureau { settings: settings(1.0) };
        let request = check_credit();
        for attempt in 1..3 {
            match bureau.attempt(&request, attempt) {
                Attempt::RetryAfter(wait) => assert!(wait <= Duration::from_millis(20 << (attempt - 1))),
                other => panic!("attempt {attempt}: expected a retry, got {other:?}"),
            }
        }
        let Attempt::Reply(reply) = bureau.attempt(&request, 3) else { panic!("expected the failure reply") };
        match reply.body {
            MessageBody::Saga(SagaInput::CreditCheckFailed { attempts, reason }) => {
                assert_eq!(attempts, 3);
                assert!(reason.contains("after 3 attempts"), "{reason}");
            }
            other => panic!("expected CreditCheckFailed, got {other:?}"),
        }
    }

    #[test]
    fn a_message_of_the_wrong_kind_is_dead_lettered() {
        let appraiser = Appraiser { settings: settings(0.0) };
        assert!(matches!(appraiser.attempt(&check_credit(), 1), Attempt::DeadLetter(_)));
        let notifier = notifier();
        assert!(matches!(notifier.attempt(&check_credit(), 1), Attempt::DeadLetter(_)));
        let address = Recipient::Address("jane@example.com".into());
        assert!(matches!(notifier.attempt_for(&check_credit(), 1, &address), Attempt::DeadLetter(_)));
    }

    fn notifier() -> Notifier {
        Notifier { provider: MailProvider::new(std::sync::Arc::new(Metrics::new(&[]))) }
    }

    #[test]
    fn a_notification_delivered_twice_reaches_the_applicant_once_and_is_acknowledged_both_times() {
        let metrics = std::sync::Arc::new(Metrics::new(&[]));
        let notifier = Notifier { provider: MailProvider::new(metrics.clone()) };
        let notify =
            Envelope::new(LoanId::generate(), None, MessageBody::NotifyApplicant { status: LoanStatus::Approved });
        assert!(notifier.reads_recipient(&notify.body));
        let address = Recipient::Address("jane@example.com".into());
        for _ in 0..2 {
            let Attempt::Reply(reply) = notifier.attempt_for(&notify, 1, &address) else { panic!("expected a reply") };
            assert_eq!(reply.body, MessageBody::Saga(SagaInput::ApplicantNotified { channel: "email".into() }));
        }
        let key = idempotency_key(notify.loan_id, TERMINAL_NOTICE);
        assert_eq!(notifier.provider.send(&key, &Email::parse("jane@example.com").unwrap()), Sent::Duplicate);
        let sent = metrics.render(0).unwrap();
        assert!(sent.contains("loanflow_notifications_sent_total{outcome=\"delivered\"} 1"), "{sent}");
        assert!(sent.contains("loanflow_notifications_sent_total{outcome=\"duplicate\"} 2"), "{sent}");
        assert!(matches!(notifier.attempt_for(&notify, 1, &Recipient::NoLoan), Attempt::DeadLetter(_)));
        assert!(matches!(notifier.attempt_for(&notify, 1, &Recipient::Erased), Attempt::Reply(_)));
    }
}
