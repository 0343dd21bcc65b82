//! The escalation sweep: a loan under review (waiting on an underwriter) for longer than
//! `human.review_escalate_after_seconds` gets `SagaInput::ReviewOverdue`, which the saga applies
//! once (event `ReviewEscalated`). The loans come from the `loans_waiting` index, oldest first,
//! leaving out those escalated already or with the message on its way; the message goes through
//! the outbox like a fired timer's.

use chrono::Utc;

use crate::domain::LoanId;
use crate::mailbox::Postman;
use crate::messages::{Envelope, MessageBody};
use crate::persistence::timers::waiting_unescalated;
use crate::persistence::{CommitOutcome, Database, NewOutboxRow, StoreError, UnitOfWork};
use crate::saga::SagaInput;
use crate::settings::HumanSettings;

/// The step a loan under review waits on, and the event that says it was escalated.
const UNDER_REVIEW: &str = "underwriter";
const ESCALATED: &str = "ReviewEscalated";

/// Loans escalated per round; a full round is followed by another at once.
const ROUND: i64 = 500;

pub struct EscalationSweep {
    pub db: Database,
    pub postman: Postman,
    pub settings: HumanSettings,
}

impl EscalationSweep {
    /// Sweep every `human.escalation_sweep_seconds` on the current actix system.
    pub fn start(self) {
        actix::spawn(async move {
            let mut ticker = tokio::time::interval(self.settings.escalation_sweep());
            loop {
                ticker.tick().await;
                loop {
                    match self.round().await {
                        Ok(n) if n as i64 == ROUND => continue,
                        Ok(0) => {}
                        Ok(n) => tracing::info!(loans = n, "loans under review too long escalated"),
                        Err(StoreError::ReadersGone | StoreError::WriterGone) => return,
                        Err(err) => tracing::debug!(error = %err, "escalation sweep failed; trying again later"),
                    }
                    break;
                }
            }
        });
    }

    /// One round: how many loans were sent the message.
    async fn round(&self) -> Result<usize, StoreError> {
        let after = chrono::Duration::from_std(self.settings.review_escalate_after()).unwrap_or(chrono::Duration::MAX);
        let since = Utc::now().naive_utc().checked_sub_signed(after).unwrap_or(chrono::NaiveDateTime::MIN);
        let kind = MessageBody::Saga(SagaInput::ReviewOverdue).label();
        let loans = self.db.read(move |c| waiting_unescalated(c, UNDER_REVIEW, since, ESCALATED, kind, ROUND)).await?;
        let mut sent = 0;
        for loan in loans {
            let Ok(loan_id) = LoanId::parse(&loan) else { continue };
            let envelope = Envelope::new(loan_id, None, MessageBody::Saga(SagaInput::ReviewOverdue));
            let emit = NewOutboxRow::new(&envelope, Utc::now().naive_utc());
            if let CommitOutcome::Committed { .. } =
                self.db.writer().commit(UnitOfWork::Fire { loan_id, claims: None, emit }).await?
            {
                self.postman.deliver([envelope]);
                sent += 1;
            }
        }
        Ok(sent)
    }
}
