//! Property tests of the human steps: bureau replies, compensations, notices and timer firings
//! answered in any order, interleaved with decisions, requests, answers (fitting or not),
//! extensions, escalations, claims, withdrawals and cancellations, stale and duplicate inputs.

use proptest::prelude::*;
use proptest::sample::Index;

use super::human::{at, underwriter};
use super::properties::application;
use super::world::{awaits_answer, check_waiting_step, Outcomes};
use crate::domain::{appraised_value, credit_score, decide, LoanApplication, RequestId, ReviewBand};
use crate::saga::state::StepKind;
use crate::saga::{
    Answers, CancelCause, LoanEvent, LoanSaga, LoanStatus, NewInformationRequest, Reviewer, ReviewerRole, SagaCommand,
    SagaInput, Timer, UnderwriterDecision,
};

const CASES: u32 = 1000;

/// What happens next in a run.
#[derive(Debug, Clone)]
enum Act {
    /// One outstanding command is answered (a timer: it fires).
    Answer(Index),
    Decide {
        approve: bool,
        by: u8,
    },
    Ask {
        due_in: i64,
        remind: bool,
    },
    /// The applicant answers the open request (`fits`) or sends something that does not fit.
    Reply {
        fits: bool,
    },
    Extend {
        due_in: i64,
    },
    Withdraw,
    OperatorCancel,
    Overdue,
    Claim {
        by: u8,
    },
    /// A timer that fired before fires again (or an old one after an extension).
    Refire(Index),
    /// An input delivered before comes again.
    Duplicate(Index),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => any::<Index>().prop_map(Act::Answer),
        1 => (any::<bool>(), 0u8..3).prop_map(|(approve, by)| Act::Decide { approve, by }),
        2 => (1i64..5000, any::<bool>()).prop_map(|(due_in, remind)| Act::Ask { due_in, remind }),
        2 => any::<bool>().prop_map(|fits| Act::Reply { fits }),
        1 => (1i64..5000).prop_map(|due_in| Act::Extend { due_in }),
        1 => Just(Act::Withdraw),
        1 => Just(Act::OperatorCancel),
        1 => Just(Act::Overdue),
        1 => (0u8..3).prop_map(|by| Act::Claim { by }),
        1 => any::<Index>().prop_map(Act::Refire),
        1 => any::<Index>().prop_map(Act::Duplicate),
    ]
}

/// Underwriters 0 and 1, and an operator (2).
fn reviewer(n: u8) -> Reviewer {
    match n {
        0 => underwriter("ann"),
        1 => underwriter("bob"),
        _ => Reviewer { name: "ops".into(), role: ReviewerRole::Operator },
    }
}

struct HumanWorld<'a> {
    app: &'a LoanApplication,
    outcomes: Outcomes,
    state: LoanSaga,
    outstanding: Vec<SagaCommand>,
    issued: Vec<SagaCommand>,
    fired: Vec<Timer>,
    delivered: Vec<SagaInput>,
    events: Vec<LoanEvent>,
    /// Seconds on the world's clock: each act moves it on.
    clock: i64,
    requests: u128,
}

impl<'a> HumanWorld<'a> {
    fn new(app: &'a LoanApplication, outcomes: Outcomes, band: ReviewBand) -> Self {
        Self {
            app,
            outcomes,
            state: LoanSaga::with_review_band(band),
            outstanding: vec![],
            issued: vec![],
            fired: vec![],
            delivered: vec![],
            events: vec![],
            clock: 0,
            requests: 0,
        }
    }

    fn run(&mut self, acts: &[Act]) -> Result<(), TestCaseError> {
        let t = self.state.start();
        self.take(t);
        for a in acts {
            self.clock += 10;
            self.act(a)?;
        }
        // Then the people finish what they started: whatever is outstanding is answered, an
        // underwriter approves what is under review, the applicant answers what is asked.
        for _ in 0..60 {
            if !self.outstanding.is_empty() {
                let command = self.outstanding.remove(0);
                self.answer(&command)?;
            } else if self.state.status == LoanStatus::UnderReview {
                self.human(SagaInput::Decide {
                    decision: UnderwriterDecision::Approve,
                    note: "ok".into(),
                    by: reviewer(2),
                })?;
            } else if self.state.status == LoanStatus::AwaitingInformation {
                self.act(&Act::Reply { fits: true })?;
            } else {
                break;
            }
        }
        prop_assert!(self.outstanding.is_empty(), "still outstanding: {:?}", self.outstanding);
        for input in self.delivered.clone() {
            let t = self.state.handle(self.app, &input);
            prop_assert!(!t.applied, "a duplicate {:?} was applied at the end", input);
        }
        Ok(())
    }

    fn act(&mut self, a: &Act) -> Result<(), TestCaseError> {
        match a {
            Act::Answer(pick) => {
                if !self.outstanding.is_empty() {
                    let command = self.outstanding.remove(pick.index(self.outstanding.len()));
                    self.answer(&command)?;
                }
            }
            Act::Decide { approve, by } => {
                let decision = if *approve { UnderwriterDecision::Approve } else { UnderwriterDecision::Reject };
                self.human(SagaInput::Decide { decision, note: "n".into(), by: reviewer(*by) })?;
            }
            Act::Ask { due_in, remind } => {
                self.requests += 1;
                let request = NewInformationRequest {
                    request_id: RequestId::from_uuid(uuid::Uuid::from_u128(self.requests)),
                    message: "m".into(),
                    fields: vec!["a".into(), "b".into()],
                    requested_at: at(self.clock),
                    due_at: at(self.clock + due_in),
                    remind_at: remind.then(|| at(self.clock + due_in / 2)),
                };
                self.human(SagaInput::RequestInformation { request, by: reviewer(0) })?;
            }
            Act::Reply { fits } => {
                let Some(open) = self.state.open_request() else {
                    let request_id = RequestId::from_uuid(uuid::Uuid::from_u128(self.requests));
                    return self.human(SagaInput::ProvideInformation { request_id, answers: Answers::new() });
                };
                let mut answers: Answers = open.fields.iter().map(|f| (f.clone(), "x".into())).collect();
                if !fits {
                    answers.insert("extra".into(), "y".into());
                }
                let input = SagaInput::ProvideInformation { request_id: open.id, answers };
                let before = self.delivered.len();
                self.human(input)?;
                prop_assert_eq!(
                    self.delivered.len() > before,
                    *fits,
                    "an answer that fits is taken, one that does not is not"
                );
            }
            Act::Extend { due_in } => {
                let request_id = self
                    .state
                    .open_request()
                    .map_or_else(|| RequestId::from_uuid(uuid::Uuid::from_u128(self.requests)), |open| open.id);
                let (due_at, remind_at) = (at(self.clock + due_in), Some(at(self.clock + due_in / 2)));
                self.human(SagaInput::ExtendDeadline { request_id, due_at, remind_at, by: reviewer(2) })?;
            }
            Act::Withdraw | Act::OperatorCancel => {
                let cause = match a {
                    Act::Withdraw => CancelCause::Withdrawn,
                    _ => CancelCause::Operator { by: "ops".into() },
                };
                let may = !self.state.status.is_terminal()
                    && self.state.cancellation.is_none()
                    && !self.state.has_failed_step();
                let (before, state) = (self.delivered.len(), self.state.clone());
                self.human(SagaInput::Cancel { cause })?;
                prop_assert_eq!(self.delivered.len() > before, may, "withdrawal on {:?}", state);
            }
            Act::Overdue => self.human(SagaInput::ReviewOverdue)?,
            Act::Claim { by } => self.human(SagaInput::Claim { by: reviewer(*by) })?,
            Act::Refire(pick) => {
                if !self.fired.is_empty() {
                    let timer = self.fired[pick.index(self.fired.len())];
                    let t = self.state.handle(self.app, &SagaInput::TimerFired { timer, fired_at: None });
                    prop_assert!(!t.applied, "timer {:?} fired twice", timer);
                }
            }
            Act::Duplicate(pick) => {
                if !self.delivered.is_empty() {
                    let input = self.delivered[pick.index(self.delivered.len())].clone();
                    let t = self.state.handle(self.app, &input);
                    prop_assert!(!t.applied, "a duplicate {:?} was applied", input);
                }
            }
        }
        Ok(())
    }

    /// A person's input: applied or not, as the state allows; not applied changes nothing.
    fn human(&mut self, input: SagaInput) -> Result<(), TestCaseError> {
        let t = self.state.handle(self.app, &input);
        if !t.applied {
            prop_assert!(t.events.is_empty() && t.commands.is_empty() && t.state == self.state);
            return Ok(());
        }
        check_waiting_step(&t.state)?;
        self.delivered.push(input);
        self.take(t);
        Ok(())
    }

    /// What the other actors (and the timer store) answer to `command`.
    fn answer(&mut self, command: &SagaCommand) -> Result<(), TestCaseError> {
        let app = self.app;
        let input = match command {
            SagaCommand::CheckCredit if self.outcomes.credit_ok => {
                SagaInput::CreditChecked { score: credit_score(&app.applicant.email) }
            }
            SagaCommand::CheckCredit => SagaInput::CreditCheckFailed { reason: "declined".into(), attempts: 3 },
            SagaCommand::AppraiseProperty if self.outcomes.appraisal_ok => SagaInput::PropertyAppraised {
                value: appraised_value(&app.property.address, app.property.declared_value),
            },
            SagaCommand::AppraiseProperty => SagaInput::AppraisalFailed { reason: "no".into(), attempts: 1 },
            SagaCommand::ReleaseCreditCheck => SagaInput::CreditCheckReleased,
            SagaCommand::VoidAppraisal => SagaInput::AppraisalVoided,
            SagaCommand::GenerateSchedule => SagaInput::ScheduleGenerated { lines: app.term_months.get() },
            SagaCommand::NotifyApplicant { .. } => SagaInput::ApplicantNotified { channel: "email".into() },
            SagaCommand::SendNotice { request_id, notice } => {
                SagaInput::NoticeSent { request_id: *request_id, notice: *notice, channel: "email".into() }
            }
            SagaCommand::DropTimers { .. } => unreachable!("never outstanding: {command:?}"),
            SagaCommand::ScheduleTimer { timer } => {
                // A timer fires when due; whether it still applies is the saga's to judge.
                self.fired.push(*timer);
                return self.human(SagaInput::TimerFired { timer: *timer, fired_at: None });
            }
        };
        let t = self.state.handle(self.app, &input);
        prop_assert!(t.applied, "the answer {:?} was not applied to {:?}", input, self.state);
        check_waiting_step(&t.state)?;
        self.delivered.push(input);
        self.take(t);
        Ok(())
    }

    fn take(&mut self, t: crate::saga::Transition) {
        self.outstanding.extend(t.commands.iter().filter(|c| awaits_answer(c)).cloned());
        self.issued.extend(t.commands);
        self.events.extend(t.events);
        self.state = t.state;
    }
}

fn count(events: &[LoanEvent], type_name: &str) -> usize {
    events.iter().filter(|e| e.type_name() == type_name).count()
}

/// Events a loan may record more than once (per request, or per extension or claim).
const REPEATABLE: [&str; 6] = [
    "InformationRequested",
    "InformationRequestSent",
    "InformationReminderSent",
    "InformationProvided",
    "InformationDeadlineExtended",
    "ReviewClaimed",
];

fn check(w: &HumanWorld, band: ReviewBand) -> Result<(), TestCaseError> {
    let (s, events, issued) = (&w.state, &w.events, &w.issued);
    prop_assert!(s.is_finished() && s.waiting_on().is_none(), "not finished: {:?}", s);
    prop_assert_eq!(issued.iter().filter(|c| matches!(c, SagaCommand::NotifyApplicant { .. })).count(), 1);
    prop_assert_eq!(count(events, "ApplicantNotified"), 1);
    let notified = events.iter().position(|e| e.type_name() == "ApplicantNotified").unwrap_or_default();
    for late in &events[notified + 1..] {
        prop_assert!(
            matches!(late, LoanEvent::InformationRequestSent { .. } | LoanEvent::InformationReminderSent { .. }),
            "{:?} after the terminal notification",
            late
        );
    }
    for event in events {
        if !REPEATABLE.contains(&event.type_name()) {
            prop_assert_eq!(count(events, event.type_name()), 1, "twice: {:?}", events);
        }
    }
    prop_assert_eq!(count(events, "LoanApproved") + count(events, "LoanRejected") + count(events, "LoanCancelled"), 1);

    // Once per request: asked once, sent once, reminded, answered and expired at most once.
    let asked: Vec<RequestId> = events
        .iter()
        .filter_map(|e| match e {
            LoanEvent::InformationRequested { request_id, .. } => Some(*request_id),
            _ => None,
        })
        .collect();
    for id in &asked {
        let of = |pred: &dyn Fn(&LoanEvent) -> bool| events.iter().filter(|e| pred(e)).count();
        let asked = of(&|e| matches!(e, LoanEvent::InformationRequested { request_id, .. } if request_id == id));
        let sent = of(&|e| matches!(e, LoanEvent::InformationRequestSent { request_id, .. } if request_id == id));
        let reminded = of(&|e| matches!(e, LoanEvent::InformationReminderSent { request_id, .. } if request_id == id));
        let answered = of(&|e| matches!(e, LoanEvent::InformationProvided { request_id, .. } if request_id == id));
        prop_assert_eq!((asked, sent), (1, 1), "request {}", id);
        prop_assert!(reminded <= 1 && answered <= 1, "request {}: {} reminders, {} answers", id, reminded, answered);
    }

    // Compensation: exactly the completed steps, latest first, and only for a cancelled loan.
    let completed: Vec<StepKind> = events
        .iter()
        .filter_map(|e| match e {
            LoanEvent::CreditChecked { .. } => Some(StepKind::CreditCheck),
            LoanEvent::PropertyAppraised { .. } => Some(StepKind::Appraisal),
            _ => None,
        })
        .collect();
    let compensated: Vec<StepKind> = issued
        .iter()
        .filter_map(|c| match c {
            SagaCommand::ReleaseCreditCheck => Some(StepKind::CreditCheck),
            SagaCommand::VoidAppraisal => Some(StepKind::Appraisal),
            _ => None,
        })
        .collect();
    let cancelled = s.status == LoanStatus::Cancelled;
    let expected: Vec<StepKind> = if cancelled { completed.iter().rev().copied().collect() } else { vec![] };
    prop_assert_eq!(&compensated, &expected);

    let reason = events.iter().find_map(|e| match e {
        LoanEvent::LoanCancelled { reason } => Some(reason.clone()),
        _ => None,
    });
    let requested = events.iter().find_map(|e| match e {
        LoanEvent::CancellationRequested { reason } => Some(reason.clone()),
        _ => None,
    });
    if let Some(reason) = &reason {
        if let Some(requested) = &requested {
            prop_assert_eq!(reason, requested);
            prop_assert!(reason.starts_with("withdrawn") || reason.starts_with("operator"), "{}", reason);
        } else if count(events, "InformationRequestExpired") == 1 {
            prop_assert!(reason.starts_with("information_not_provided"), "{}", reason);
        } else {
            prop_assert!(reason.contains("failed"), "{}", reason);
        }
    }

    // Referred exactly when the rules approve below the band (unless ended before deciding).
    let app = w.app;
    let score = credit_score(&app.applicant.email);
    let rules_approve =
        decide(app, score, appraised_value(&app.property.address, app.property.declared_value)).verdict.is_approved();
    let referred = count(events, "LoanReferred") == 1;
    if referred {
        prop_assert!(rules_approve && band.refers(score));
    }
    let by_underwriter = events.iter().any(|e| match e {
        LoanEvent::LoanApproved { review, .. } | LoanEvent::LoanRejected { review, .. } => review.is_some(),
        _ => false,
    });
    prop_assert_eq!(by_underwriter, referred && !cancelled);
    if s.status == LoanStatus::Approved && !referred {
        prop_assert!(!band.refers(score), "approved by the rules within the band");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_interleaving_of_people_and_machines_ends_finished_and_notified_once(
        app in application(),
        outcomes in (prop::bool::weighted(0.85), prop::bool::weighted(0.85))
            .prop_map(|(credit_ok, appraisal_ok)| Outcomes { credit_ok, appraisal_ok }),
        band in prop::sample::select(vec![0u16, 660, 851]).prop_map(ReviewBand::below),
        acts in prop::collection::vec(act(), 4..40),
    ) {
        let mut world = HumanWorld::new(&app, outcomes, band);
        world.run(&acts)?;
        check(&world, band)?;
    }
}
