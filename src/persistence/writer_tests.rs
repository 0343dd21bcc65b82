//! The group-commit writer on a real SQLite database: batches whose units must be skipped.

use chrono::Utc;

use super::*;
use crate::domain::{LoanId, MessageId};
use crate::messages::{Envelope, MessageBody};
use crate::persistence::connection::run_migrations;
use crate::persistence::records::LoanRow;
use crate::persistence::records::{NewEventRow, NewOutboxRow};
use crate::persistence::unit_of_work::{Effects, IdempotencyRecord, Step, StepChange, Submission};
use crate::persistence::{queries, timers, OutboxRow, TimerRow};

fn loan_row(id: LoanId, version: i64, status: &str) -> LoanRow {
    let now = Utc::now().naive_utc();
    LoanRow {
        id: id.to_string(),
        status: status.to_owned(),
        applicant_name: "Ada".into(),
        applicant_email: "ada@example.com".into(),
        annual_income_cents: 9_000_000,
        monthly_debts_cents: 0,
        property_address: "1 Main St".into(),
        declared_value_cents: 40_000_000,
        amount_cents: 20_000_000,
        term_months: 240,
        credit_score: None,
        appraised_value_cents: None,
        rate_bps: None,
        monthly_payment_cents: None,
        saga: "{}".into(),
        version,
        submitted_at: now,
        updated_at: now,
        decided_at: None,
        notified_at: None,
        waiting_on: Some("credit_check".into()),
        waiting_since: Some(now),
    }
}

/// A writer on a fresh SQLite database in `dir`.
fn sqlite_writer(dir: &tempfile::TempDir) -> WriterLoop {
    let backend = Backend::Sqlite(dir.path().join("w.db").to_string_lossy().into_owned());
    run_migrations(&mut backend.connect().unwrap()).unwrap();
    WriterLoop {
        backend,
        batch_max: 64,
        group_wait: Duration::ZERO,
        conn: None,
        bus: EventBus::local(),
        faults: Arc::new(FaultLog::new("commits")),
        timers: tokio::sync::broadcast::channel(16).0,
    }
}

/// Commit `units` as one batch, the way the writer thread does; their outcomes in order.
fn commit(writer: &mut WriterLoop, units: Vec<UnitOfWork>) -> Vec<Result<CommitOutcome, StoreError>> {
    let (jobs, answers): (Vec<_>, Vec<_>) = units
        .into_iter()
        .map(|unit| {
            let (reply, answer) = oneshot::channel();
            (Job { unit, reply }, answer)
        })
        .unzip();
    writer.commit_batch(jobs);
    answers.into_iter().map(|mut answer| answer.try_recv().expect("answered")).collect()
}

/// A new loan at version 1, status `submitted`, whose first message is a `VoidAppraisal`.
fn submission(id: LoanId) -> UnitOfWork {
    let now = Utc::now().naive_utc();
    let emit = NewOutboxRow::new(&Envelope::new(id, None, MessageBody::VoidAppraisal), now);
    let effects = Effects { emits: vec![emit], ..Effects::default() };
    UnitOfWork::Submission(Submission {
        loan_id: id,
        loan: Box::new(loan_row(id, 1, "submitted")),
        idempotency: None,
        effects,
    })
}

/// A step of loan `id` from `expected_version` to the next, consuming `consumes`.
fn step(id: LoanId, expected_version: i64, consumes: MessageId) -> UnitOfWork {
    let now = Utc::now().naive_utc();
    let emit = NewOutboxRow::new(&Envelope::new(id, None, MessageBody::ReleaseCreditCheck), now);
    UnitOfWork::Step(Step {
        loan_id: id,
        consumes,
        change: StepChange::Applied {
            row: Box::new(loan_row(id, expected_version + 1, "evaluating")),
            expected_version,
            effects: Effects { emits: vec![emit], ..Effects::default() },
        },
    })
}

/// The message each loan's submission emitted.
fn first_messages(writer: &mut WriterLoop, ids: &[LoanId]) -> Vec<MessageId> {
    let conn = writer.connection().unwrap();
    let pending: Vec<Envelope> = queries::outbox_after(conn, 0, 1000)
        .unwrap()
        .iter()
        .map(|row| Envelope::from_json(&row.envelope).unwrap())
        .collect();
    ids.iter().map(|id| pending.iter().find(|e| e.loan_id == *id).unwrap().message_id).collect()
}

#[test]
fn steps_on_stale_versions_are_left_out_and_the_rest_of_the_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = sqlite_writer(&dir);
    let ids: Vec<LoanId> = (0..8).map(|_| LoanId::generate()).collect();
    let outcomes = commit(&mut writer, ids.iter().map(|id| submission(*id)).collect());
    assert!(outcomes.iter().all(|o| matches!(o, Ok(CommitOutcome::Committed { .. }))), "{outcomes:?}");
    let messages = first_messages(&mut writer, &ids);
    // Loans 1, 3, 4, 5, 6 and 7 are stepped from a version they are not at: more than a batch
    // leaves out by running again, so the last ones go through savepoints.
    let stale = |i: usize| i != 0 && i != 2;
    let units = (0..8).map(|i| step(ids[i], if stale(i) { 5 } else { 1 }, messages[i])).collect();
    let outcomes = commit(&mut writer, units);
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(CommitOutcome::Committed { .. }) => assert!(!stale(i), "{i}: {outcomes:?}"),
            Ok(CommitOutcome::Conflict) => assert!(stale(i), "{i}: {outcomes:?}"),
            other => panic!("{i}: {other:?}"),
        }
    }
    let conn = writer.connection().unwrap();
    for (i, id) in ids.iter().enumerate() {
        let version = queries::loan(conn, *id).unwrap().unwrap().version;
        assert_eq!(version, if stale(i) { 1 } else { 2 }, "loan {i}");
    }
    let left = queries::outbox_after(conn, 0, 1000).unwrap();
    assert_eq!(left.len(), 8, "2 steps consumed their message and emitted one, 6 consumed nothing");
}

#[test]
fn a_unit_that_must_be_skipped_spoils_nothing_else_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = sqlite_writer(&dir);
    let (a, b) = (LoanId::generate(), LoanId::generate());
    let outcomes = commit(&mut writer, vec![submission(a), submission(b)]);
    assert!(outcomes.iter().all(|o| matches!(o, Ok(CommitOutcome::Committed { .. }))), "{outcomes:?}");

    // One good step, one on a stale version, one consuming a message that is gone.
    let conn = writer.connection().unwrap();
    let pending = queries::outbox_after(conn, 0, 10).unwrap();
    let envelopes = |rows: Vec<OutboxRow>| -> Vec<Envelope> {
        rows.iter().map(|row| Envelope::from_json(&row.envelope).unwrap()).collect()
    };
    let pending = envelopes(pending);
    let first_message_of = |id: LoanId| pending.iter().find(|e| e.loan_id == id).unwrap().message_id;
    let (first_a, first_b) = (first_message_of(a), first_message_of(b));
    let outcomes =
        commit(&mut writer, vec![step(a, 1, first_a), step(b, 7, first_b), step(b, 1, MessageId::generate())]);
    assert!(matches!(outcomes[0], Ok(CommitOutcome::Committed { .. })), "{outcomes:?}");
    assert!(matches!(outcomes[1], Ok(CommitOutcome::Conflict)), "{outcomes:?}");
    assert!(matches!(outcomes[2], Ok(CommitOutcome::Duplicate)), "{outcomes:?}");

    let conn = writer.connection().unwrap();
    let loan = |conn: &mut AnyConnection, id| queries::loan(conn, id).unwrap().unwrap();
    assert_eq!((loan(conn, a).version, loan(conn, a).status.as_str()), (2, "evaluating"));
    assert_eq!((loan(conn, b).version, loan(conn, b).status.as_str()), (1, "submitted"));
    let rows = envelopes(queries::outbox_after(conn, 0, 10).unwrap());
    let kinds: Vec<(LoanId, &str)> = rows.iter().map(|e| (e.loan_id, e.body.label())).collect();
    assert_eq!(kinds.len(), 2, "a's start consumed, a's step emitted, b untouched: {kinds:?}");
    assert!(kinds.contains(&(a, "release_credit_check")), "{kinds:?}");
    assert!(kinds.contains(&(b, "void_appraisal")), "{kinds:?}");
}

#[test]
fn submissions_share_one_insert_but_a_replayed_key_inserts_no_loan() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = sqlite_writer(&dir);
    let now = Utc::now().naive_utc();
    let submit = |id, key: &str| {
        let emit = NewOutboxRow::new(&Envelope::new(id, None, MessageBody::ReleaseCreditCheck), now);
        UnitOfWork::Submission(Submission {
            loan_id: id,
            loan: Box::new(loan_row(id, 1, "evaluating")),
            idempotency: Some(IdempotencyRecord {
                key: key.into(),
                request_hash: "h".into(),
                expired_before: chrono::NaiveDateTime::MIN,
            }),
            effects: Effects { emits: vec![emit], ..Effects::default() },
        })
    };
    let (first, second, replay, third) =
        (LoanId::generate(), LoanId::generate(), LoanId::generate(), LoanId::generate());
    let outcomes = commit(&mut writer, vec![submit(first, "k1"), submit(second, "k2")]);
    assert!(outcomes.iter().all(|o| matches!(o, Ok(CommitOutcome::Committed { .. }))), "{outcomes:?}");

    let outcomes = commit(&mut writer, vec![submit(replay, "k1"), submit(third, "k3")]);
    let replayed_loan = first.to_string();
    assert!(
        matches!(&outcomes[0], Ok(CommitOutcome::IdempotentReplay { loan_id, .. }) if *loan_id == replayed_loan),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[1], Ok(CommitOutcome::Committed { .. })), "{outcomes:?}");
    let conn = writer.connection().unwrap();
    for (id, stored) in [(first, true), (second, true), (replay, false), (third, true)] {
        assert_eq!(queries::loan(conn, id).unwrap().is_some(), stored, "loan {id}");
    }
    assert_eq!(queries::outbox_len(conn).unwrap(), 3, "the replay emitted nothing");
}

#[test]
fn a_unit_whose_event_happened_before_is_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = sqlite_writer(&dir);
    let now = Utc::now().naive_utc();
    let event = |id: LoanId, kind: &str| NewEventRow {
        loan_id: id.to_string(),
        event_type: kind.to_owned(),
        at: now,
        data: "{}".into(),
    };
    let submit = |id| {
        let emit = NewOutboxRow::new(&Envelope::new(id, None, MessageBody::VoidAppraisal), now);
        UnitOfWork::Submission(Submission {
            loan_id: id,
            loan: Box::new(loan_row(id, 1, "submitted")),
            idempotency: None,
            effects: Effects { events: vec![event(id, "LoanSubmitted")], emits: vec![emit], ..Effects::default() },
        })
    };
    let (a, b) = (LoanId::generate(), LoanId::generate());
    let outcomes = commit(&mut writer, vec![submit(a), submit(b)]);
    assert!(outcomes.iter().all(|o| matches!(o, Ok(CommitOutcome::Committed { .. }))), "{outcomes:?}");
    let pending = queries::outbox_after(writer.connection().unwrap(), 0, 10).unwrap();
    let message_of = |id: LoanId| {
        pending.iter().map(|row| Envelope::from_json(&row.envelope).unwrap()).find(|e| e.loan_id == id).unwrap()
    };
    // a's step records `LoanSubmitted` a second time (`loan_events_once` refuses it); b's is fine.
    let step = |id: LoanId, kind: &str| {
        UnitOfWork::Step(Step {
            loan_id: id,
            consumes: message_of(id).message_id,
            change: StepChange::Applied {
                row: Box::new(loan_row(id, 2, "evaluating")),
                expected_version: 1,
                effects: Effects { events: vec![event(id, kind)], ..Effects::default() },
            },
        })
    };
    let outcomes = commit(&mut writer, vec![step(a, "LoanSubmitted"), step(b, "CreditChecked")]);
    assert!(matches!(&outcomes[0], Err(err) if !err.is_transient()), "{outcomes:?}");
    assert!(matches!(&outcomes[1], Ok(CommitOutcome::Committed { event_ids }) if event_ids.len() == 1), "{outcomes:?}");
    let conn = writer.connection().unwrap();
    assert_eq!(queries::loan(conn, a).unwrap().unwrap().version, 1, "a's unit is rolled back whole");
    assert_eq!(queries::loan(conn, b).unwrap().unwrap().version, 2);
}

#[test]
fn a_fault_of_the_database_fails_the_batch_as_transient_until_a_commit_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = sqlite_writer(&dir);
    let submit = |id| {
        UnitOfWork::Submission(Submission {
            loan_id: id,
            loan: Box::new(loan_row(id, 1, "submitted")),
            idempotency: None,
            effects: Effects::default(),
        })
    };
    // The connection refuses every write, as a full disk or a read-only file would.
    writer.connection().unwrap().batch_execute("PRAGMA query_only = ON").unwrap();
    let outcomes = commit(&mut writer, vec![submit(LoanId::generate()), submit(LoanId::generate())]);
    assert!(outcomes.iter().all(|o| matches!(o, Err(err) if err.is_transient())), "{outcomes:?}");
    assert!(writer.faults.is_failing());
    // The failed connection is dropped; the next one writes.
    let outcomes = commit(&mut writer, vec![submit(LoanId::generate())]);
    assert!(matches!(outcomes[0], Ok(CommitOutcome::Committed { .. })), "{outcomes:?}");
    assert!(!writer.faults.is_failing());
}

#[test]
fn a_timer_committed_with_its_unit_fires_once_into_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = sqlite_writer(&dir);
    let mut watch = writer.timers.subscribe();
    let now = Utc::now().naive_utc();
    let id = LoanId::generate();
    let due_at = now + chrono::Duration::seconds(30);
    let fires = Envelope::new(id, None, MessageBody::VoidAppraisal);
    let timer = TimerRow::new(&fires, "information_deadline", "r-1".into(), due_at, now);
    let submission = UnitOfWork::Submission(Submission {
        loan_id: id,
        loan: Box::new(loan_row(id, 1, "submitted")),
        idempotency: None,
        effects: Effects { timers: vec![timer.clone()], ..Effects::default() },
    });
    let outcomes = commit(&mut writer, vec![submission]);
    assert!(matches!(outcomes[0], Ok(CommitOutcome::Committed { .. })), "{outcomes:?}");
    assert_eq!(watch.try_recv().unwrap(), vec![timer.clone()], "the committed timer is announced");
    let conn = writer.connection().unwrap();
    assert_eq!(timers::due_until(conn, timers::After::Start, due_at, 10).unwrap(), vec![timer.clone()]);
    assert!(timers::due_until(conn, timers::After::Start, now, 10).unwrap().is_empty(), "not due yet");
    assert_eq!(queries::outbox_len(conn).unwrap(), 0, "a timer is no message before it fires");

    // Two nodes fire it: the first moves it into the outbox, the second finds it gone.
    let fire =
        || UnitOfWork::Fire { loan_id: id, claims: Some(fires.message_id), emit: NewOutboxRow::new(&fires, now) };
    let outcomes = commit(&mut writer, vec![fire(), fire()]);
    assert!(matches!(outcomes[0], Ok(CommitOutcome::Committed { .. })), "{outcomes:?}");
    assert!(matches!(outcomes[1], Ok(CommitOutcome::Duplicate)), "{outcomes:?}");
    let outcomes = commit(&mut writer, vec![fire()]);
    assert!(matches!(outcomes[0], Ok(CommitOutcome::Duplicate)), "{outcomes:?}");
    let conn = writer.connection().unwrap();
    assert!(timers::pending(conn, timers::After::Start, 10).unwrap().is_empty(), "the row was taken");
    let rows = queries::outbox_after(conn, 0, 10).unwrap();
    let ids: Vec<&str> = rows.iter().map(|row| row.message_id.as_str()).collect();
    assert_eq!(ids, [fires.message_id.to_string()], "one message, the timer's own");
}
