//! The simulated outside world: the credit bureau, the appraiser and the notifier, by the
//! deterministic rules of CONTRACT.md, with configurable latency (a timer, never a blocked
//! mailbox) and transient failures retried with exponential backoff and jitter.

use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;

use super::service::{Service, Work};
use super::supervision::backoff;
use crate::domain::{appraised_value, credit_score, Address, Email};
use crate::mailbox::{ActorKind, Envelope, MessageBody};
use crate::persistence::{Consume, NotificationRow, UnitOfWork};
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

/// The unit for a reply to the loan: consume the request, emit the reply.
fn reply(envelope: &Envelope, consume: Consume, input: SagaInput) -> (UnitOfWork, Vec<Envelope>) {
    let mut unit = UnitOfWork::new(envelope.loan_id, Utc::now().naive_utc(), Some(consume));
    let answer = Envelope::new(envelope.loan_id, Some(envelope.message_id), MessageBody::Saga(input));
    unit.emits = vec![answer.clone()];
    (unit, vec![answer])
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

    fn handle(&self, envelope: Envelope, consume: Consume) -> Work {
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
                    Ok(reply(&envelope, consume, input))
                }
                .boxed()
            }
            MessageBody::ReleaseCreditCheck => {
                async move { Ok(reply(&envelope, consume, SagaInput::CreditCheckReleased)) }.boxed()
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

    fn handle(&self, envelope: Envelope, consume: Consume) -> Work {
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
                    Ok(reply(&envelope, consume, input))
                }
                .boxed()
            }
            MessageBody::VoidAppraisal => {
                async move { Ok(reply(&envelope, consume, SagaInput::AppraisalVoided)) }.boxed()
            }
            _ => unexpected(&envelope),
        }
    }
}

/// Records the one notification of a terminal loan (the unique constraint on `loan_id` backs
/// "exactly once"), then tells the loan.
pub struct Notifier;

pub const NOTIFICATION_CHANNEL: &str = "email";

impl Service for Notifier {
    const KIND: ActorKind = ActorKind::Notifier;

    fn handle(&self, envelope: Envelope, consume: Consume) -> Work {
        let MessageBody::NotifyApplicant { status, email, .. } = &envelope.body else {
            return unexpected(&envelope);
        };
        let (status, recipient) = (*status, Email::parse(email).map(|e| e.masked()));
        async move {
            let recipient = recipient?;
            let (mut unit, emits) =
                reply(&envelope, consume, SagaInput::ApplicantNotified { channel: NOTIFICATION_CHANNEL.to_owned() });
            unit.notification = Some(NotificationRow {
                id: uuid::Uuid::now_v7().to_string(),
                loan_id: envelope.loan_id.to_string(),
                channel: NOTIFICATION_CHANNEL.to_owned(),
                recipient,
                status: status.as_str().to_owned(),
                sent_at: unit.now,
            });
            Ok((unit, emits))
        }
        .boxed()
    }
}
