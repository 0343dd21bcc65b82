//! The timer component of a node: holds the timers due soon ([`Wheel`]) and, at each one's
//! due time, fires it: one unit moves its row into the outbox (claiming it, so it fires once
//! however many nodes hold it), then the postman delivers the message to the loan, whose step
//! consumes it like any other. It reads the table in pages by due time (only timers due within
//! `timers.horizon_seconds` are in memory), takes the timers this node commits from the writer
//! as they commit, and asks every `timers.catch_up_ms` for due timers it does not hold (committed
//! on a node that runs no timers). Timers due while no node ran are due at once on the next start.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use futures_util::future::join_all;
use tokio::sync::broadcast;

use super::wheel::Wheel;
use crate::mailbox::Postman;
use crate::messages::{Envelope, MessageBody};
use crate::metrics::Metrics;
use crate::persistence::timers::{self, After};
use crate::persistence::{CommitOutcome, Database, NewOutboxRow, StoreError, TimerRow, UnitOfWork};
use crate::saga::SagaInput;
use crate::settings::TimerSettings;

/// Rows read per page.
const PAGE: usize = 1_000;

/// After a failed read or firing, wait this long before trying again (the database is away).
const PAUSE: Duration = Duration::from_secs(1);

/// What the timer component needs.
pub struct TimerComponent {
    pub db: Database,
    pub postman: Postman,
    pub settings: TimerSettings,
    pub metrics: Arc<Metrics>,
}

impl TimerComponent {
    /// Run on the current actix system until the database closes.
    pub fn start(self) {
        let notices = self.db.writer().watch_timers();
        actix::spawn(self.run(notices));
    }

    async fn run(self, mut notices: broadcast::Receiver<Vec<TimerRow>>) {
        let horizon = chrono::Duration::from_std(self.settings.horizon()).unwrap_or(chrono::Duration::seconds(60));
        let catch_up = self.settings.catch_up();
        let mut wheel = Wheel::new(self.settings.max_held);
        let mut next_catch_up = tokio::time::Instant::now();
        let mut paused_until = tokio::time::Instant::now();
        loop {
            let now = Utc::now().naive_utc();
            if tokio::time::Instant::now() >= paused_until {
                let read = self.read(&mut wheel, now, horizon, &mut next_catch_up, catch_up).await;
                let fired = match read {
                    Ok(()) => self.fire(&mut wheel, now).await,
                    Err(err) => Err(err),
                };
                match fired {
                    Ok(()) => {}
                    Err(StoreError::ReadersGone | StoreError::WriterGone) => return,
                    Err(err) => {
                        tracing::debug!(error = %err, "timers: the database is away; trying again shortly");
                        paused_until = tokio::time::Instant::now() + PAUSE;
                    }
                }
            }
            let wait = self.wait(&wheel, next_catch_up.min(paused_until.max(tokio::time::Instant::now())));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                notice = notices.recv() => match notice {
                    Ok(rows) => rows.into_iter().for_each(|row| wheel.offer(row)),
                    // Missed some: the pages and the catch-up find them.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// The next page when the held timers reach less than half the horizon ahead, and the due
    /// timers nobody fired when the catch-up is due.
    async fn read(
        &self,
        wheel: &mut Wheel,
        now: NaiveDateTime,
        horizon: chrono::Duration,
        next_catch_up: &mut tokio::time::Instant,
        catch_up: Duration,
    ) -> Result<(), StoreError> {
        if wheel.reaches_before(now + horizon / 2) {
            let (after, until, limit) = (wheel.next_page(), now + horizon, wheel.room().min(PAGE));
            let rows = self.db.read(move |c| timers::due_until(c, after, until, limit as i64)).await?;
            wheel.loaded(rows, until, limit);
        }
        if tokio::time::Instant::now() >= *next_catch_up {
            let rows = self.db.read(move |c| timers::due_until(c, After::Start, now, PAGE as i64)).await?;
            wheel.overdue(rows);
            *next_catch_up = tokio::time::Instant::now() + catch_up;
        }
        Ok(())
    }

    /// Until the next held timer is due, the next catch-up, or the next page, whichever first.
    fn wait(&self, wheel: &Wheel, next_catch_up: tokio::time::Instant) -> Duration {
        let now = Utc::now().naive_utc();
        let until_due = wheel.next_due().map_or(Duration::MAX, |due| (due - now).to_std().unwrap_or(Duration::ZERO));
        let until_catch_up = next_catch_up.saturating_duration_since(tokio::time::Instant::now());
        until_due.min(until_catch_up).min(self.settings.horizon() / 4)
    }

    /// Fire every held timer due at `now`, together (the writer commits them in few batches).
    async fn fire(&self, wheel: &mut Wheel, now: NaiveDateTime) -> Result<(), StoreError> {
        let due = wheel.take_due(now);
        if due.is_empty() {
            return Ok(());
        }
        let outcomes = join_all(due.into_iter().map(|row| self.fire_one(row))).await;
        let mut failure = None;
        for (row, outcome) in outcomes {
            match outcome {
                Ok(()) => wheel.settled(&row.id),
                Err(FireError::Unreadable(reason)) => {
                    // Kept out of the wheel (not settled): it would fail again every catch-up.
                    tracing::error!(timer = %row.id, loan_id = %row.loan_id, %reason, "unreadable timer left in place");
                }
                Err(FireError::Store(err)) => {
                    wheel.retry(row);
                    failure = Some(err);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Move one timer into the outbox and deliver its message; a timer another node fired
    /// already is settled too.
    async fn fire_one(&self, row: TimerRow) -> (TimerRow, Result<(), FireError>) {
        let envelope = match Envelope::from_json(&row.envelope) {
            Ok(envelope) => envelope,
            Err(err) => return (row, Err(FireError::Unreadable(err.to_string()))),
        };
        let now = Utc::now().naive_utc();
        let envelope = stamped(envelope, now);
        let unit = UnitOfWork::Fire {
            loan_id: envelope.loan_id,
            claims: Some(envelope.message_id),
            emit: NewOutboxRow::new(&envelope, now),
        };
        let outcome = match self.db.writer().commit(unit).await {
            Ok(CommitOutcome::Committed { .. }) => {
                let late = (now - row.due_at).to_std().unwrap_or(Duration::ZERO);
                self.metrics.timer_fired(&row.kind, late.as_secs_f64());
                self.postman.deliver([envelope]);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(err) => Err(FireError::Store(err)),
        };
        (row, outcome)
    }
}

/// The timer's message as it fires: the saga learns when (a reminder firing past its deadline,
/// after a node was down, is not sent).
fn stamped(mut envelope: Envelope, now: NaiveDateTime) -> Envelope {
    if let MessageBody::Saga(SagaInput::TimerFired { fired_at, .. }) = &mut envelope.body {
        *fired_at = Some(now);
    }
    envelope
}

enum FireError {
    Unreadable(String),
    Store(StoreError),
}
