//! A simulated world that runs the saga: it keeps the bag of commands the saga issued and not yet
//! answered, answers them in whatever order the test picks, re-delivers stray inputs, and checks
//! the invariants that must hold after every single transition.

use proptest::prelude::*;
use proptest::sample::Index;

use crate::domain::{appraised_value, credit_score, LoanApplication};
use crate::saga::state::StepState;
use crate::saga::{LoanEvent, LoanSaga, LoanStatus, SagaCommand, SagaInput, Transition};

/// How the two bureaus answer (a failure is permanent: retries happen before the saga sees it).
#[derive(Debug, Clone, Copy)]
pub(super) struct Outcomes {
    pub(super) credit_ok: bool,
    pub(super) appraisal_ok: bool,
}

/// One step of a run: optional noise first, then one outstanding command answered.
#[derive(Debug, Clone)]
pub(super) struct Step {
    /// Which outstanding command to answer next.
    pub(super) pick: Index,
    /// Re-deliver one of the inputs delivered so far.
    pub(super) duplicate: Option<Index>,
    /// Deliver this input unless it answers an outstanding command.
    pub(super) stray: Option<SagaInput>,
}

pub(super) struct World<'a> {
    pub(super) app: &'a LoanApplication,
    pub(super) outcomes: Outcomes,
    pub(super) state: LoanSaga,
    pub(super) outstanding: Vec<SagaCommand>,
    /// Every command the saga issued, in order.
    pub(super) issued: Vec<SagaCommand>,
    /// Every input the saga applied, in order.
    pub(super) delivered: Vec<SagaInput>,
    /// The loan's history.
    pub(super) events: Vec<LoanEvent>,
}

/// Whether anything answers `command` (dropping timers is done in the unit that asks for it).
pub(super) fn awaits_answer(command: &SagaCommand) -> bool {
    !matches!(command, SagaCommand::DropTimers { .. })
}

/// Whether `input` is the answer to `command`.
pub(super) fn answers(input: &SagaInput, command: &SagaCommand) -> bool {
    use {SagaCommand as C, SagaInput as I};
    matches!(
        (input, command),
        (I::CreditChecked { .. } | I::CreditCheckFailed { .. }, C::CheckCredit)
            | (I::PropertyAppraised { .. } | I::AppraisalFailed { .. }, C::AppraiseProperty)
            | (I::CreditCheckReleased, C::ReleaseCreditCheck)
            | (I::AppraisalVoided, C::VoidAppraisal)
            | (I::ScheduleGenerated { .. }, C::GenerateSchedule)
            | (I::ApplicantNotified { .. }, C::NotifyApplicant { .. })
            | (I::NoticeSent { .. }, C::SendNotice { .. })
            | (I::TimerFired { .. }, C::ScheduleTimer { .. })
    )
}

impl<'a> World<'a> {
    pub(super) fn new(app: &'a LoanApplication, outcomes: Outcomes) -> Self {
        let state = LoanSaga::new();
        Self { app, outcomes, state, outstanding: vec![], issued: vec![], delivered: vec![], events: vec![] }
    }

    /// Start, then the steps, then whatever is still outstanding in the order it was issued.
    pub(super) fn run(&mut self, prelude: &[SagaInput], steps: &[Step]) -> Result<(), TestCaseError> {
        for stray in prelude {
            self.deliver_stray(stray)?;
        }
        self.start()?;
        for step in steps {
            if let Some(index) = step.duplicate.filter(|_| !self.delivered.is_empty()) {
                self.deliver_stray(&self.delivered[index.index(self.delivered.len())].clone())?;
            }
            if let Some(stray) = &step.stray {
                if !self.outstanding.iter().any(|command| answers(stray, command)) {
                    self.deliver_stray(stray)?;
                }
            }
            if self.outstanding.is_empty() {
                continue;
            }
            let command = self.outstanding.remove(step.pick.index(self.outstanding.len()));
            self.deliver(self.answer(&command))?;
        }
        for _ in 0..10 {
            if self.outstanding.is_empty() {
                break;
            }
            let command = self.outstanding.remove(0);
            self.deliver(self.answer(&command))?;
        }
        prop_assert!(self.outstanding.is_empty(), "still outstanding: {:?}", self.outstanding);
        // At the end, every input once more: all duplicates now.
        for input in self.delivered.clone() {
            self.deliver_stray(&input)?;
        }
        Ok(())
    }

    /// What the other actors answer to `command`.
    fn answer(&self, command: &SagaCommand) -> SagaInput {
        let app = self.app;
        match command {
            SagaCommand::CheckCredit if self.outcomes.credit_ok => {
                SagaInput::CreditChecked { score: credit_score(&app.applicant.email) }
            }
            SagaCommand::CheckCredit => SagaInput::CreditCheckFailed { reason: "bureau declined".into(), attempts: 3 },
            SagaCommand::AppraiseProperty if self.outcomes.appraisal_ok => SagaInput::PropertyAppraised {
                value: appraised_value(&app.property.address, app.property.declared_value),
            },
            SagaCommand::AppraiseProperty => {
                SagaInput::AppraisalFailed { reason: "no such address".into(), attempts: 1 }
            }
            SagaCommand::ReleaseCreditCheck => SagaInput::CreditCheckReleased,
            SagaCommand::VoidAppraisal => SagaInput::AppraisalVoided,
            SagaCommand::GenerateSchedule => SagaInput::ScheduleGenerated { lines: app.term_months.get() },
            SagaCommand::NotifyApplicant { .. } => SagaInput::ApplicantNotified { channel: "email".into() },
            SagaCommand::SendNotice { request_id, notice } => {
                SagaInput::NoticeSent { request_id: *request_id, notice: *notice, channel: "email".into() }
            }
            SagaCommand::ScheduleTimer { timer } => SagaInput::TimerFired { timer: *timer, fired_at: None },
            SagaCommand::DropTimers { .. } => unreachable!("never outstanding: {command:?}"),
        }
    }

    /// An input that fits: it must be applied, and every transition invariant must hold.
    /// The submission's start; a second start is ignored.
    fn start(&mut self) -> Result<(), TestCaseError> {
        let t = self.state.start();
        prop_assert!(t.applied, "the start was not applied to {:?}", self.state);
        prop_assert!(!t.state.start().applied, "a second start was applied");
        check_commands_and_events(&t)?;
        self.outstanding.extend(t.commands.iter().filter(|c| awaits_answer(c)).cloned());
        self.issued.extend(t.commands);
        self.events.extend(t.events);
        self.state = t.state;
        Ok(())
    }

    fn deliver(&mut self, input: SagaInput) -> Result<(), TestCaseError> {
        let t = self.state.handle(self.app, &input);
        prop_assert_eq!(&t, &self.state.handle(self.app, &input), "handle is not deterministic");
        prop_assert!(t.applied, "the answer {:?} was not applied to {:?}", input, self.state);
        if self.state.status.is_terminal() {
            prop_assert_eq!(t.state.status, self.state.status, "a terminal status changed on {:?}", input);
        }
        check_commands_and_events(&t)?;
        self.outstanding.extend(t.commands.iter().filter(|c| awaits_answer(c)).cloned());
        let compensating = self
            .outstanding
            .iter()
            .filter(|c| matches!(c, SagaCommand::ReleaseCreditCheck | SagaCommand::VoidAppraisal))
            .count();
        prop_assert!(compensating <= 1, "compensations run one at a time: {:?}", self.outstanding);
        self.issued.extend(t.commands);
        self.events.extend(t.events);
        self.delivered.push(input);
        self.state = t.state;
        Ok(())
    }

    /// An input that does not fit: it must change nothing.
    fn deliver_stray(&mut self, input: &SagaInput) -> Result<(), TestCaseError> {
        let t = self.state.handle(self.app, input);
        prop_assert!(!t.applied, "stray {:?} was applied to {:?}", input, self.state);
        prop_assert!(t.events.is_empty() && t.commands.is_empty(), "stray {:?} gave {:?}", input, t);
        prop_assert_eq!(&t.state, &self.state, "stray {:?} changed the state", input);
        Ok(())
    }
}

/// What the commands and events of one applied transition must respect, given the state it left.
/// A loan waits on an automatic step exactly while it is `submitted` or `evaluating` (what the
/// `loans_waiting` index and the status index split between them).
pub(super) fn check_waiting_step(s: &LoanSaga) -> Result<(), TestCaseError> {
    if let Some(step) = s.waiting_on() {
        let in_flight = matches!(s.status, LoanStatus::Submitted | LoanStatus::Evaluating);
        prop_assert_eq!(crate::saga::IN_FLIGHT_STEPS.contains(&step), in_flight, "waiting on {} in {:?}", step, s);
    }
    Ok(())
}

fn check_commands_and_events(t: &Transition) -> Result<(), TestCaseError> {
    let s = &t.state;
    check_waiting_step(s)?;
    let running = matches!(s.credit, StepState::Running) || matches!(s.appraisal, StepState::Running);
    for command in &t.commands {
        match command {
            SagaCommand::ReleaseCreditCheck | SagaCommand::VoidAppraisal => {
                prop_assert!(!running, "{:?} while a step runs: {:?}", command, s);
            }
            SagaCommand::GenerateSchedule => prop_assert_eq!(s.status, LoanStatus::Approved),
            SagaCommand::NotifyApplicant { status } => {
                prop_assert!(status.is_terminal() && *status == s.status, "{:?} in {:?}", command, s);
            }
            SagaCommand::CheckCredit | SagaCommand::AppraiseProperty => {}
            SagaCommand::SendNotice { .. } | SagaCommand::ScheduleTimer { .. } | SagaCommand::DropTimers { .. } => {
                prop_assert!(s.review.is_some(), "{:?} on a loan never referred: {:?}", command, s);
            }
        }
    }
    for event in &t.events {
        match event {
            LoanEvent::LoanApproved { .. } | LoanEvent::LoanRejected { .. } => prop_assert!(
                matches!((&s.credit, &s.appraisal), (StepState::Completed { .. }, StepState::Completed { .. })),
                "decided before both steps completed: {:?}",
                s
            ),
            LoanEvent::LoanCancelled { .. } => prop_assert!(
                !s.credit.is_unsettled() && !s.appraisal.is_unsettled(),
                "cancelled before every step settled: {:?}",
                s
            ),
            _ => {}
        }
    }
    Ok(())
}
