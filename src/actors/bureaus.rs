//! The simulated outside world: the credit bureau, the appraiser and the notifier, by the
//! deterministic rules of CONTRACT.md, with configurable latency (a timer, never a blocked
//! mailbox) and transient failures retried with exponential backoff and jitter.

use std::time::Duration;

use futures_util::FutureExt;

use super::service::{Service, Work};
use super::supervision::backoff;
use crate::domain::{appraised_value, credit_score, Address, Email};
use crate::mailbox::{ActorKind, Envelope, MessageBody};
use crate::saga::SagaInput;
use crate::settings::BureauSettings;

/// Call a simulated bureau: wait its latency, maybe fail transiently (then back off and try
/// again), up to `max_attempts`. `Err` carries the permanent failure's reason.
async fn call_bureau<T>(
    settings: &BureauSettings,
    latency: Duration,
    answer: impl Fn() -> Result<T, String>,
) -> Result<(T, u32), (String, u32)> {
    let base = Duration::from_millis(settings.retry_base_ms);
    let max = Duration::from_millis(settings.retry_max_ms);
    for attempt in 1..=settings.max_attempts {
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if settings.failure_rate > 0.0 && rand::random::<f64>() < settings.failure_rate {
            tracing::debug!(attempt, "bureau failed transiently");
            if attempt < settings.max_attempts {
                tokio::time::sleep(backoff(attempt, base, max)).await;
            }
            continue;
        }
        return answer().map(|value| (value, attempt)).map_err(|reason| (reason, attempt));
    }
    Err((format!("bureau unavailable after {} attempts", settings.max_attempts), settings.max_attempts))
}

/// The reply to the loan, sent without a commit of its own: the loan's unit consumes the
/// request when it applies the reply.
fn reply(request: &Envelope, input: SagaInput) -> Envelope {
    Envelope::uncommitted_reply(request, MessageBody::Saga(input))
}

fn unexpected(envelope: &Envelope) -> Work {
    let label = envelope.body.label();
    async move { Err(format!("unexpected message {label}")) }.boxed()
}

pub struct CreditBureau {
    pub settings: BureauSettings,
}

impl Service for CreditBureau {
    const KIND: ActorKind = ActorKind::Credit;

    fn handle(&self, envelope: Envelope) -> Work {
        let settings = self.settings.clone();
        match &envelope.body {
            MessageBody::CheckCredit { email } => {
                let email = email.clone();
                async move {
                    let outcome = call_bureau(&settings, settings.credit_latency(), || {
                        Email::parse(&email).map(|e| credit_score(&e))
                    })
                    .await;
                    let input = match outcome {
                        Ok((score, _)) => SagaInput::CreditChecked { score },
                        Err((reason, attempts)) => SagaInput::CreditCheckFailed { reason, attempts },
                    };
                    Ok(reply(&envelope, input))
                }
                .boxed()
            }
            MessageBody::ReleaseCreditCheck => {
                async move { Ok(reply(&envelope, SagaInput::CreditCheckReleased)) }.boxed()
            }
            _ => unexpected(&envelope),
        }
    }
}

pub struct Appraiser {
    pub settings: BureauSettings,
}

impl Service for Appraiser {
    const KIND: ActorKind = ActorKind::Appraisal;

    fn handle(&self, envelope: Envelope) -> Work {
        let settings = self.settings.clone();
        match &envelope.body {
            MessageBody::AppraiseProperty { address, declared_value } => {
                let (address, declared) = (address.clone(), *declared_value);
                async move {
                    let outcome = call_bureau(&settings, settings.appraisal_latency(), || {
                        let address = Address::parse(&address)?;
                        if address.fails_appraisal() {
                            return Err("the property cannot be appraised".to_owned());
                        }
                        Ok(appraised_value(&address, declared))
                    })
                    .await;
                    let input = match outcome {
                        Ok((value, _)) => SagaInput::PropertyAppraised { value },
                        Err((reason, attempts)) => SagaInput::AppraisalFailed { reason, attempts },
                    };
                    Ok(reply(&envelope, input))
                }
                .boxed()
            }
            MessageBody::VoidAppraisal => async move { Ok(reply(&envelope, SagaInput::AppraisalVoided)) }.boxed(),
            _ => unexpected(&envelope),
        }
    }
}

/// Sends the one notification of a terminal loan (simulated) and tells the loan, whose unit
/// records it: the loan's version check and the unique constraint on `loan_id` make it exactly
/// once.
pub struct Notifier;

pub const NOTIFICATION_CHANNEL: &str = "email";

impl Service for Notifier {
    const KIND: ActorKind = ActorKind::Notifier;

    fn handle(&self, envelope: Envelope) -> Work {
        let MessageBody::NotifyApplicant { email, .. } = &envelope.body else {
            return unexpected(&envelope);
        };
        let deliverable = Email::parse(email).map(|_| ());
        async move {
            deliverable?;
            Ok(reply(&envelope, SagaInput::ApplicantNotified { channel: NOTIFICATION_CHANNEL.to_owned() }))
        }
        .boxed()
    }
}
