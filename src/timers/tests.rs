//! The durable timers through the real pieces of a node on SQLite: the writer, the actors, the
//! postman and the timer component. A loan goes to an underwriter, who asks the applicant for
//! information with a deadline 1.5 s away and a reminder halfway; nobody answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{EscalationSweep, TimerComponent};
use crate::actors::{plan_input, plan_submission, ActorSystem};
use crate::domain::{LoanApplication, LoanId, RequestId, ReviewBand};
use crate::mailbox::Transport;
use crate::messages::{Envelope, EventBus, MessageBody};
use crate::persistence::timers::{self as stored_timers, After};
use crate::persistence::{queries, CommitOutcome, Database, LoanRecord, NewOutboxRow, UnitOfWork};
use crate::saga::{LoanStatus, NewInformationRequest, Reviewer, ReviewerRole, SagaInput};
use crate::settings::Settings;

fn application() -> LoanApplication {
    let json = serde_json::json!({
        "applicant": {"name": "Jane Doe", "email": "jane@example.com", "annual_income": 120000, "monthly_debts": 0},
        "property": {"address": "1 Canal St, Amsterdam", "declared_value": 400000},
        "amount": 200000, "term_months": 360
    });
    LoanApplication::parse(&json).unwrap()
}

async fn record(db: &Database, id: LoanId) -> LoanRecord {
    let row = db.read(move |c| queries::loan(c, id)).await.unwrap().unwrap();
    LoanRecord::from_row(row).unwrap()
}

/// Poll the loan until `done` holds (what the test waits for), at most 20 s.
async fn wait_for(db: &Database, id: LoanId, what: &str, done: impl Fn(&LoanRecord) -> bool) -> LoanRecord {
    let start = Instant::now();
    loop {
        let loan = record(db, id).await;
        if done(&loan) {
            return loan;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never {what}: {:?}", loan.saga);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node on a fresh SQLite database: the actors, the timer component and the escalation sweep.
struct Node {
    _dir: tempfile::TempDir,
    db: Database,
    actors: ActorSystem,
}

impl Node {
    async fn start(tweak: impl FnOnce(&mut Settings)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::load().unwrap();
        settings.database.url = dir.path().join("timers.db").to_string_lossy().into_owned();
        settings.actors.idle_timeout_ms = 100;
        tweak(&mut settings);
        let settings = Arc::new(settings);
        let db = Database::open(&settings.database, EventBus::local()).unwrap();
        let actors = ActorSystem::start(db.clone(), settings.clone(), Transport::InProcess);
        actors.resume_and_sweep().await.unwrap();
        let shared = &actors.shared;
        let (db2, postman) = (db.clone(), shared.postman.clone());
        TimerComponent { db: db2, postman, settings: settings.timers.clone(), metrics: shared.metrics.clone() }.start();
        let (db2, postman) = (db.clone(), shared.postman.clone());
        EscalationSweep { db: db2, postman, settings: settings.human.clone() }.start();
        Node { _dir: dir, db, actors }
    }

    /// A loan the rules send to an underwriter, once it is under review.
    async fn referred_loan(&self) -> LoanRecord {
        let (id, now) = (LoanId::generate(), Utc::now().naive_utc());
        let (unit, plan) = plan_submission(id, application(), now, None, ReviewBand::below(1_000), None);
        assert!(matches!(self.db.writer().commit(unit).await.unwrap(), CommitOutcome::Committed { .. }));
        self.actors.shared.postman.deliver_submission(plan.record, plan.emits);
        wait_for(&self.db, id, "under review", |l| l.saga.status == LoanStatus::UnderReview).await
    }
}

#[actix_rt::test]
async fn a_review_past_its_time_is_escalated_once() {
    let node = Node::start(|s| {
        s.human.review_escalate_after_seconds = 0;
        s.human.escalation_sweep_seconds = 1;
    })
    .await;
    let loan = node.referred_loan().await;
    let id = loan.id;
    let escalated = wait_for(&node.db, id, "escalated", |l| l.version > loan.version).await;
    assert_eq!(escalated.saga.status, LoanStatus::UnderReview, "escalated, still waiting on the underwriter");
    assert_eq!(escalated.saga.waiting_on(), Some("underwriter"));
    assert_eq!(escalated.waiting_since, loan.waiting_since, "the same step: waiting since the same time");
    // The sweep leaves it out from now on; two more sweeps change nothing.
    let far_future = Utc::now().naive_utc() + chrono::Duration::days(1);
    let label = MessageBody::Saga(SagaInput::ReviewOverdue).label();
    let candidates = node
        .db
        .read(move |c| stored_timers::waiting_unescalated(c, "underwriter", far_future, "ReviewEscalated", label, 10))
        .await
        .unwrap();
    assert!(!candidates.contains(&id.to_string()), "{candidates:?}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let events = node.db.read(move |c| queries::events_of(c, id)).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.event_type == "ReviewEscalated").count(), 1);
    assert_eq!(record(&node.db, id).await.version, escalated.version);
}

#[actix_rt::test]
async fn an_unanswered_request_expires_once_at_its_deadline_and_the_loan_is_cancelled() {
    let node = Node::start(|_| {}).await;
    let (db, shared) = (&node.db, &node.actors.shared);
    let referred = node.referred_loan().await;
    let id = referred.id;
    assert_eq!(referred.saga.waiting_on(), Some("underwriter"));

    let now = Utc::now().naive_utc();
    let due_at = now + chrono::Duration::milliseconds(1_500);
    let request = NewInformationRequest {
        request_id: RequestId::generate(),
        message: "Your latest payslip, please".into(),
        fields: vec!["payslip".into()],
        requested_at: now,
        due_at,
        remind_at: Some(now + chrono::Duration::milliseconds(750)),
    };
    let by = Reviewer { name: "uma".into(), role: ReviewerRole::Underwriter };
    let transition = referred.saga.handle(&referred.application, &SagaInput::RequestInformation { request, by });
    assert!(transition.applied);
    let (unit, plan) = plan_input(&referred, transition, None, now);
    let kinds: Vec<&str> = unit.timers().iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds, ["information_deadline", "information_reminder"], "both timers go with the unit");
    assert!(matches!(db.writer().commit(unit).await.unwrap(), CommitOutcome::Committed { .. }));
    shared.postman.deliver(plan.emits);
    let pending = db.read(|c| stored_timers::pending(c, After::Start, 10)).await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    let deadline = pending.iter().find(|t| t.kind == "information_deadline").unwrap().clone();

    let finished = wait_for(db, id, "notified", |l| l.notified_at.is_some()).await;
    assert_eq!(finished.saga.status, LoanStatus::Cancelled);
    assert!(finished.updated_at >= due_at, "nothing expired before the deadline");
    let events = db.read(move |c| queries::events_of(c, id)).await.unwrap();
    let count = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
    assert_eq!(count("InformationRequestExpired"), 1);
    assert_eq!(count("InformationReminderSent"), 1);
    assert_eq!(count("ApplicantNotified"), 1);
    let cancelled = events.iter().find(|e| e.event_type == "LoanCancelled").unwrap();
    assert!(cancelled.data.contains("information_not_provided"), "{}", cancelled.data);
    assert!(db.read(|c| stored_timers::pending(c, After::Start, 10)).await.unwrap().is_empty());

    // The deadline fired again (another node, a second delivery): nothing more happens.
    let fires = Envelope::from_json(&deadline.envelope).unwrap();
    assert!(matches!(fires.body, MessageBody::Saga(SagaInput::TimerFired { .. })));
    let again = UnitOfWork::Fire {
        loan_id: id,
        claims: Some(fires.message_id),
        emit: NewOutboxRow::new(&fires, Utc::now().naive_utc()),
    };
    assert_eq!(db.writer().commit(again).await.unwrap(), CommitOutcome::Duplicate);
    shared.postman.deliver([fires]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = db.read(move |c| queries::events_of(c, id)).await.unwrap();
    assert_eq!(after.len(), events.len(), "a second delivery of the deadline changes nothing");
    assert_eq!(record(db, id).await.version, finished.version);
}
