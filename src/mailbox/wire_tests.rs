//! What this build stores and sends keeps its form: the `loans.saga` JSON, outbox envelopes
//! and AMQP bodies (single envelopes, envelope batches, event batches) are compared, byte for
//! byte, with fixtures written by an earlier build, and those fixtures must still parse.
//! `LOANFLOW_WRITE_WIRE_FIXTURES=1` rewrites the file (only for a deliberate format change).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::{CreditScore, LoanApplication, LoanId, MessageId, Money};
use crate::messages::{Envelope, LiveEvent, MessageBody};
use crate::persistence::NewOutboxRow;
use crate::saga::{LoanSaga, LoanStatus, SagaInput};

const FIXTURES: &str = "tests/fixtures/wire.json";

fn loan() -> LoanId {
    LoanId::parse("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap()
}

fn message(n: u8) -> MessageId {
    MessageId::parse(&format!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a{n:02x}")).unwrap()
}

fn envelope(n: u8, causation: Option<u8>, body: MessageBody) -> Envelope {
    Envelope { message_id: message(n), ..Envelope::new(loan(), causation.map(message), body) }
}

fn envelopes() -> Vec<(&'static str, Envelope)> {
    let saga = |input| MessageBody::Saga(input);
    let reply =
        |n, request: &Envelope, body| Envelope { message_id: message(n), ..Envelope::uncommitted_reply(request, body) };
    let check = envelope(1, None, MessageBody::CheckCredit { email: "jane@example.com".into() });
    let appraise = envelope(
        2,
        None,
        MessageBody::AppraiseProperty {
            address: "1 Canal St, Amsterdam".into(),
            declared_value: Money::from_cents(40_000_050),
        },
    );
    let score = CreditScore::new(712).unwrap();
    vec![
        ("credit_checked", reply(3, &check, saga(SagaInput::CreditChecked { score }))),
        (
            "property_appraised",
            reply(4, &appraise, saga(SagaInput::PropertyAppraised { value: Money::from_cents(41_000_000) })),
        ),
        ("check_credit", check.clone()),
        ("appraise_property", appraise.clone()),
        (
            "credit_check_failed",
            reply(
                5,
                &check,
                saga(SagaInput::CreditCheckFailed {
                    reason: "bureau unavailable after 3 attempts".into(),
                    attempts: 3,
                }),
            ),
        ),
        (
            "appraisal_failed",
            reply(
                6,
                &appraise,
                saga(SagaInput::AppraisalFailed { reason: "the property cannot be appraised".into(), attempts: 1 }),
            ),
        ),
        ("release_credit_check", envelope(7, Some(6), MessageBody::ReleaseCreditCheck)),
        ("void_appraisal", Envelope { attempt: 3, ..envelope(8, Some(5), MessageBody::VoidAppraisal) }),
        ("credit_check_released", envelope(9, Some(7), saga(SagaInput::CreditCheckReleased))),
        ("appraisal_voided", envelope(10, Some(8), saga(SagaInput::AppraisalVoided))),
        ("notify_applicant", envelope(11, Some(4), MessageBody::NotifyApplicant { status: LoanStatus::Approved })),
        ("applicant_notified", envelope(12, Some(11), saga(SagaInput::ApplicantNotified { channel: "email".into() }))),
    ]
}

fn application() -> LoanApplication {
    let json = serde_json::json!({
        "applicant": {"name": "Jane Doe", "email": "jane@example.com", "annual_income": 120000, "monthly_debts": 450.5},
        "property": {"address": "1 Canal St, Amsterdam", "declared_value": 400000},
        "amount": 200000, "term_months": 360
    });
    LoanApplication::parse(&json).unwrap()
}

/// The saga after each input of an approved loan, and of one whose appraisal failed.
fn sagas() -> Vec<(String, LoanSaga)> {
    let app = application();
    let score = CreditScore::new(712).unwrap();
    let approved: [SagaInput; 4] = [
        SagaInput::CreditChecked { score },
        SagaInput::PropertyAppraised { value: Money::from_cents(41_000_000) },
        SagaInput::ScheduleGenerated { lines: 360 },
        SagaInput::ApplicantNotified { channel: "email".into() },
    ];
    let cancelled: [SagaInput; 4] = [
        SagaInput::CreditChecked { score },
        SagaInput::AppraisalFailed { reason: "the property cannot be appraised".into(), attempts: 1 },
        SagaInput::CreditCheckReleased,
        SagaInput::ApplicantNotified { channel: "email".into() },
    ];
    let mut states = vec![("saga_new".to_owned(), LoanSaga::new())];
    for (path, inputs) in [("approved", approved), ("cancelled", cancelled)] {
        let mut saga = LoanSaga::new().start().state;
        states.push((format!("saga_{path}_0"), saga.clone()));
        for (i, input) in inputs.iter().enumerate() {
            let transition = saga.handle(&app, input);
            assert!(transition.applied, "{path} step {i}");
            saga = transition.state;
            states.push((format!("saga_{path}_{}", i + 1), saga.clone()));
        }
    }
    states
}

fn live_events() -> Vec<LiveEvent> {
    vec![
        LiveEvent {
            id: 41,
            kind: "CreditChecked".into(),
            loan_id: loan().to_string(),
            status: "evaluating".into(),
            at: "2026-11-29T14:22:01.123456Z".into(),
            data: serde_json::json!({"credit_score": 712}),
        },
        LiveEvent {
            id: 42,
            kind: "LoanApproved".into(),
            loan_id: loan().to_string(),
            status: "approved".into(),
            at: "2026-11-29T14:22:01.2Z".into(),
            data: serde_json::json!({"rate_bps": 450, "monthly_payment": "1013.37", "loan_to_value": 0.4878, "debt_to_income": 0.0917}),
        },
    ]
}

/// Every case: its name, the text this build produces, and a check that the fixture's text
/// still reads back as the same value.
type Reader = Box<dyn Fn(&str) -> Result<(), String>>;

fn case<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + 'static>(value: T) -> (String, Reader) {
    let text = serde_json::to_string(&value).unwrap();
    let reader: Reader = Box::new(move |stored: &str| match serde_json::from_str::<T>(stored) {
        Ok(read) if read == value => Ok(()),
        Ok(read) => Err(format!("reads back as {read:?}")),
        Err(err) => Err(format!("no longer parses: {err}")),
    });
    (text, reader)
}

fn cases() -> BTreeMap<String, (String, Reader)> {
    let mut cases = BTreeMap::new();
    let all = envelopes();
    for (name, envelope) in &all {
        cases.insert(format!("envelope_{name}"), case(envelope.clone()));
        let row = NewOutboxRow::new(envelope, chrono::NaiveDateTime::default());
        let columns = (row.message_id, row.loan_id, row.destination, row.kind, row.envelope);
        cases.insert(format!("outbox_row_{name}"), case(columns));
    }
    let batch: Vec<Envelope> = all.iter().take(3).map(|(_, e)| e.clone()).collect();
    cases.insert("amqp_envelope_batch".into(), case(batch));
    cases.insert("amqp_event_batch".into(), case(live_events()));
    for (name, saga) in sagas() {
        cases.insert(name, case(saga));
    }
    cases
}

#[test]
fn stored_and_sent_forms_match_the_fixtures_of_an_earlier_build() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
    let cases = cases();
    if std::env::var_os("LOANFLOW_WRITE_WIRE_FIXTURES").is_some() {
        let texts: BTreeMap<&String, &String> = cases.iter().map(|(name, (text, _))| (name, text)).collect();
        std::fs::write(&path, serde_json::to_string_pretty(&texts).unwrap() + "\n").unwrap();
    }
    let stored: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the fixtures are a JSON object");
    let mut problems = Vec::new();
    for (name, (text, read)) in &cases {
        match stored.get(name) {
            None => problems.push(format!("{name}: no fixture")),
            Some(fixture) => {
                if fixture != text {
                    problems.push(format!("{name}: written differently now\n  fixture: {fixture}\n  now:     {text}"));
                }
                if let Err(err) = read(fixture) {
                    problems.push(format!("{name}: the fixture {err}"));
                }
            }
        }
    }
    problems.extend(stored.keys().filter(|name| !cases.contains_key(*name)).map(|name| format!("{name}: no case")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Written by a build whose notification carried the applicant's name and email: it still
/// reads, as the notification of the same status (the notifier reads the address from the loan).
const OLDER_NOTIFICATION: &str = r#"{"message_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a0b","loan_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","causation_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a04","attempt":1,"destination":"notifier","body":{"kind":"notify_applicant","payload":{"status":"approved","name":"Jane Doe","email":"jane@example.com"}}}"#;

#[test]
fn an_older_notification_carrying_the_email_still_reads_and_is_written_without_it() {
    let read = Envelope::from_json(OLDER_NOTIFICATION).expect("an older notification still parses");
    assert_eq!(read.body, MessageBody::NotifyApplicant { status: LoanStatus::Approved });
    assert_eq!(read.message_id, message(11));
    assert!(!read.to_json().contains("jane"), "{}", read.to_json());
}
