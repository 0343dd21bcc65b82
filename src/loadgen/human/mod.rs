//! The human workload: the load generator plays underwriter and applicant on every referred loan,
//! each along a script chosen from the seed (approve, reject, ask then answer, ask then let the
//! deadline pass, withdraw at some point), and knows from the script what CONTRACT.md says the
//! loan ends as and which events its history must hold.

mod events;
mod play;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::generate::Expected;

pub use events::{check as check_events, EventBody};
pub use play::{play, PlayOutcome};

/// The longest deadline the contract allows, for requests left open on purpose.
pub const LONGEST_DEADLINE_SECONDS: u32 = 7_776_000;
/// The status of a loan waiting for its applicant.
pub const AWAITING_INFORMATION: &str = "awaiting_information";

/// The scripts `--plays` chooses among.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlayKind {
    /// The underwriter approves (claiming the loan first, or not).
    Approve,
    /// The underwriter rejects (claiming the loan first, or not).
    Reject,
    /// The underwriter asks, the applicant answers, the underwriter approves or rejects.
    AskAnswer,
    /// The underwriter asks with a short deadline that nobody meets.
    Expire,
    /// The applicant withdraws: at once, under review, while asked, or after answering.
    Withdraw,
    /// The underwriter asks with the longest deadline and the loan is left waiting (for the
    /// memory benchmark; not in the default mix).
    Hold,
}

/// The default `--plays`: every script that ends the loan.
pub const ENDING_PLAYS: [PlayKind; 5] =
    [PlayKind::Approve, PlayKind::Reject, PlayKind::AskAnswer, PlayKind::Expire, PlayKind::Withdraw];

/// The underwriter's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

/// When the applicant withdraws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawAt {
    /// As soon as the submission is answered: before or after the referral, whichever the race
    /// gives.
    AtOnce,
    UnderReview,
    AwaitingInformation,
    AfterAnswer,
}

/// What the load generator does with one referred loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Play {
    Decide { decision: Decision, claim: bool },
    AskAnswerDecide(Decision),
    AskExpire { due_in_seconds: u32 },
    Withdraw(WithdrawAt),
    Hold,
}

/// Chooses the scripts of the referred loans, from the seed alone.
pub struct Director {
    rng: StdRng,
    kinds: Vec<PlayKind>,
    expire_in_seconds: Option<u32>,
}

impl Director {
    pub fn new(seed: u64, kinds: &[PlayKind], expire_in_seconds: Option<u32>) -> Self {
        // Its own stream, so the applications are the same with and without plays.
        let rng = StdRng::seed_from_u64(seed ^ 0x6875_6d61_6e73);
        let kinds = if kinds.is_empty() { ENDING_PLAYS.to_vec() } else { kinds.to_vec() };
        Self { rng, kinds, expire_in_seconds }
    }

    pub fn choose(&mut self) -> Play {
        let rng = &mut self.rng;
        let decision = if rng.random_bool(0.5) { Decision::Approve } else { Decision::Reject };
        match *self.kinds.choose(rng).expect("at least one kind") {
            PlayKind::Approve => Play::Decide { decision: Decision::Approve, claim: rng.random_bool(0.5) },
            PlayKind::Reject => Play::Decide { decision: Decision::Reject, claim: rng.random_bool(0.5) },
            PlayKind::AskAnswer => Play::AskAnswerDecide(decision),
            PlayKind::Expire => {
                Play::AskExpire { due_in_seconds: self.expire_in_seconds.unwrap_or_else(|| rng.random_range(1..=3)) }
            }
            PlayKind::Withdraw => Play::Withdraw(
                *[
                    WithdrawAt::AtOnce,
                    WithdrawAt::UnderReview,
                    WithdrawAt::AwaitingInformation,
                    WithdrawAt::AfterAnswer,
                ]
                .choose(rng)
                .expect("points"),
            ),
            PlayKind::Hold => Play::Hold,
        }
    }
}

/// What CONTRACT.md says a referred loan (`referred`, as the rules left it) ends as after `play`.
pub fn expected(referred: &Expected, play: Play) -> Expected {
    let figures = referred.referral.expect("a referred loan carries the rules' figures");
    let decided = |status, reasons: Vec<&'static str>| Expected {
        status,
        credit_score: referred.credit_score,
        appraised_value: referred.appraised_value,
        rate_bps: Some(figures.rate_bps),
        monthly_payment: Some(figures.monthly_payment),
        reasons,
        referral: None,
    };
    match play {
        Play::Decide { decision, .. } | Play::AskAnswerDecide(decision) => match decision {
            Decision::Approve => decided("approved", Vec::new()),
            Decision::Reject => decided("rejected", vec!["underwriter_declined"]),
        },
        Play::AskExpire { .. } | Play::Withdraw(_) => Expected::cancelled(referred.credit_score),
        Play::Hold => Expected { status: AWAITING_INFORMATION, ..referred.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::super::generate::Figures;
    use super::*;

    #[test]
    fn the_same_seed_chooses_the_same_plays_and_every_kind_comes_up() {
        let plays = |seed| {
            let mut director = Director::new(seed, &[], None);
            (0..200).map(|_| director.choose()).collect::<Vec<_>>()
        };
        let chosen = plays(9);
        assert_eq!(chosen, plays(9));
        assert!(chosen.contains(&Play::Withdraw(WithdrawAt::AtOnce)));
        assert!(chosen.contains(&Play::Withdraw(WithdrawAt::AfterAnswer)));
        assert!(chosen.iter().any(|p| matches!(p, Play::AskExpire { due_in_seconds: 1..=3 })));
        assert!(chosen.iter().any(|p| matches!(p, Play::Decide { claim: true, .. })));
        assert!(chosen.iter().any(|p| matches!(p, Play::AskAnswerDecide(Decision::Reject))));
        assert!(!chosen.contains(&Play::Hold));
    }

    #[test]
    fn a_play_decides_what_the_loan_ends_as() {
        let figures = Figures { rate_bps: 505, monthly_payment: crate::domain::Money::from_cents(117_501) };
        let referred = Expected {
            status: super::super::generate::UNDER_REVIEW,
            credit_score: 645,
            appraised_value: Some(crate::domain::Money::from_cents(40_000_000)),
            rate_bps: None,
            monthly_payment: None,
            reasons: Vec::new(),
            referral: Some(figures),
        };
        let rejected = expected(&referred, Play::AskAnswerDecide(Decision::Reject));
        assert_eq!((rejected.status, rejected.rate_bps), ("rejected", Some(505)));
        assert_eq!(rejected.reasons, ["underwriter_declined"]);
        let approved = expected(&referred, Play::Decide { decision: Decision::Approve, claim: true });
        assert_eq!((approved.status, approved.monthly_payment), ("approved", Some(figures.monthly_payment)));
        let expired = expected(&referred, Play::AskExpire { due_in_seconds: 1 });
        assert_eq!((expired.status, expired.appraised_value), ("cancelled", None));
        assert_eq!(expected(&referred, Play::Hold).status, AWAITING_INFORMATION);
    }
}
