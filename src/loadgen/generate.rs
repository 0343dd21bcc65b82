//! A seeded mix of applications, each aimed at an outcome (approval, each rejection reason alone,
//! all of them at once, a failed appraisal, a referral to an underwriter), with what CONTRACT.md
//! says becomes of it computed by `loanflow::domain`'s rules. Bodies are serialised here, once,
//! before any request is sent.

use std::ops::Range;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::domain::{self, Address, Email, LoanApplication, Money, RejectionReason, ReviewBand, TermMonths, Verdict};

/// What the contract says a finished loan reports (or, for a loan the server refers to an
/// underwriter, what it reports while it waits there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub status: &'static str,
    pub credit_score: u16,
    pub appraised_value: Option<Money>,
    pub rate_bps: Option<u32>,
    pub monthly_payment: Option<Money>,
    /// Sorted names; empty unless rejected.
    pub reasons: Vec<&'static str>,
    /// For a referred loan: the rules' figures, which an underwriter's decision reports.
    pub referral: Option<Figures>,
}

/// The rate and payment the rules computed for a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub rate_bps: u32,
    pub monthly_payment: Money,
}

/// Which shares of the applications are aimed at what.
#[derive(Debug, Clone, Copy)]
pub struct Shares {
    /// Of all applications: referred (they pass every rule with a score in the band).
    pub referred: f64,
    /// Of the rest: a failed appraisal.
    pub fail: f64,
}

/// The status of a referred loan: it waits for an underwriter, which the load generator is not.
pub const UNDER_REVIEW: &str = "under_review";

/// One application ready to send.
pub struct Generated {
    pub body: Vec<u8>,
    pub expected: Expected,
}

/// How many applications of each kind the mix holds (from the expectations, not the aims).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Mix {
    pub approved: usize,
    pub rejected: usize,
    pub cancelled: usize,
    /// Left by the rules to an underwriter.
    pub referred: usize,
    pub rejected_for_credit_score: usize,
    pub rejected_for_loan_to_value: usize,
    pub rejected_for_debt_to_income: usize,
}

impl Mix {
    pub fn of(apps: &[Generated]) -> Self {
        let mut mix = Mix::default();
        for app in apps {
            let e = &app.expected;
            match e.status {
                "approved" => mix.approved += 1,
                "rejected" => mix.rejected += 1,
                UNDER_REVIEW => mix.referred += 1,
                _ => mix.cancelled += 1,
            }
            for reason in &e.reasons {
                match *reason {
                    "credit_score_too_low" => mix.rejected_for_credit_score += 1,
                    "loan_to_value_too_high" => mix.rejected_for_loan_to_value += 1,
                    _ => mix.rejected_for_debt_to_income += 1,
                }
            }
        }
        mix
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    Approved,
    Referred,
    LowScore,
    HighLoanToValue,
    HighDebtToIncome,
    EveryReason,
    FailedAppraisal,
}

/// The aim of the `i`-th application: the referred share, then of the rest the failed appraisals'
/// share, then half approvals and half rejections spread over the reasons. Without referrals no
/// draw is made for them, so the default workload's applications stay what they were.
fn aim(rng: &mut StdRng, shares: Shares) -> Aim {
    if shares.referred > 0.0 && rng.random_bool(shares.referred.clamp(0.0, 1.0)) {
        return Aim::Referred;
    }
    if rng.random_bool(shares.fail.clamp(0.0, 1.0)) {
        return Aim::FailedAppraisal;
    }
    match rng.random_range(0..20) {
        0..=9 => Aim::Approved,
        10..=12 => Aim::LowScore,
        13..=15 => Aim::HighLoanToValue,
        16..=18 => Aim::HighDebtToIncome,
        _ => Aim::EveryReason,
    }
}

const FIRST_NAMES: [&str; 8] = ["Ada", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Tony", "Radia"];
const LAST_NAMES: [&str; 8] = ["Lovelace", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Hoare", "Perlman"];
const STREETS: [&str; 6] = ["Harbour Road", "Rua Augusta", "Kings Lane", "Canal Street", "Avenida Central", "Elm Row"];
const CITIES: [&str; 5] = ["Lisbon", "Porto", "Dublin", "Ghent", "Tallinn"];

/// `n` applications from `seed`; the same arguments always give the same bodies. With a
/// referred share, approvals score at or above the band and referrals inside it, so exactly the
/// referred aims are referred.
pub fn applications(seed: u64, n: usize, shares: Shares, band: ReviewBand) -> Vec<Generated> {
    let mut rng = StdRng::seed_from_u64(seed);
    let lowest_approval = if shares.referred > 0.0 { band.get().max(domain::MIN_CREDIT_SCORE) } else { 0 };
    (0..n)
        .map(|i| {
            let aim = aim(&mut rng, shares);
            let scores = match aim {
                Aim::LowScore | Aim::EveryReason => 0..domain::MIN_CREDIT_SCORE,
                Aim::Referred => domain::MIN_CREDIT_SCORE..band.get(),
                _ => lowest_approval.max(domain::MIN_CREDIT_SCORE)..u16::MAX,
            };
            one(&mut rng, seed, i, aim, scores, band)
        })
        .collect()
}

fn one(rng: &mut StdRng, seed: u64, serial: usize, aim: Aim, scores: Range<u16>, band: ReviewBand) -> Generated {
    let first = *FIRST_NAMES.choose(rng).expect("names");
    let last = *LAST_NAMES.choose(rng).expect("names");
    let email = email_with_score(seed, serial, first, last, &scores);

    let marker =
        if aim == Aim::FailedAppraisal { format!(" {}", Address::FAIL_APPRAISAL_MARKER) } else { String::new() };
    let street = *STREETS.choose(rng).expect("streets");
    let city = *CITIES.choose(rng).expect("cities");
    let address_text = format!("{} {street}, {city} (#{seed:x}.{serial}){marker}", rng.random_range(1..400));
    let address = Address::parse(&address_text).expect("a generated address is valid");
    let declared = rng.random_range(8_000_000_i64..=250_000_000);
    let appraised = domain::appraised_value(&address, Money::from_cents(declared)).cents();

    // Loan to value: under 0.85 to pass; from 0.92 up to the declared value (the API refuses
    // more) to fail. 0.92 * 1.05 < 1, so the failing range is never empty.
    let amount = if matches!(aim, Aim::HighLoanToValue | Aim::EveryReason) {
        rng.random_range(appraised * 92 / 100 + 1..=declared)
    } else {
        rng.random_range(appraised * 30 / 100..=appraised * 85 / 100)
    };
    let term = if rng.random_bool(0.5) {
        *[120, 180, 240, 300, 360].choose(rng).expect("terms")
    } else {
        rng.random_range(12..=480)
    };
    let score = domain::credit_score(&Email::parse(&email).expect("a generated e-mail is valid"));
    let term_months = TermMonths::parse(term).expect("a generated term is valid");
    let payment = domain::monthly_payment(Money::from_cents(amount), domain::rate_bps(score), term_months).cents();

    // Debt to income: obligations / monthly income under 0.40 to pass, over 0.50 to fail.
    let debts = if rng.random_bool(0.2) { 0 } else { rng.random_range(1..=300_000_i64) };
    let yearly_obligations = i128::from(debts + payment) * 12;
    let ratio_percent = if matches!(aim, Aim::HighDebtToIncome | Aim::EveryReason) {
        rng.random_range(50..=150)
    } else {
        rng.random_range(5..=40)
    };
    let income = i64::try_from(yearly_obligations * 100 / ratio_percent + 1).unwrap_or(i64::MAX / 4).max(100);

    let body = json!({
        "applicant": {
            "name": format!("{first} {last}"),
            "email": email,
            "annual_income": Money::from_cents(income),
            "monthly_debts": Money::from_cents(debts),
        },
        "property": {"address": address_text, "declared_value": Money::from_cents(declared)},
        "amount": Money::from_cents(amount),
        "term_months": term,
    });
    let app = LoanApplication::parse(&body).expect("a generated application is valid");
    Generated { body: serde_json::to_vec(&body).expect("JSON serialises"), expected: expect(&app, band) }
}

/// An e-mail whose credit score is in `scores` (not empty: the caller checks the band).
fn email_with_score(seed: u64, serial: usize, first: &str, last: &str, scores: &Range<u16>) -> String {
    for attempt in 0.. {
        let email = format!("{first}.{last}.{seed:x}.{serial}.{attempt}@example.com").to_lowercase();
        let score = domain::credit_score(&Email::parse(&email).expect("a generated e-mail is valid"));
        if scores.contains(&score.get()) {
            return email;
        }
    }
    unreachable!("the attempts never run out")
}

/// The contract's verdict on an application, from the domain rules, on a server that refers
/// loans below `band` (`decision.review_below_score`): those stay `under_review`, undecided.
pub fn expect(app: &LoanApplication, band: ReviewBand) -> Expected {
    let score = domain::credit_score(&app.applicant.email);
    if app.property.address.fails_appraisal() {
        return Expected::cancelled(score.get());
    }
    let appraised = domain::appraised_value(&app.property.address, app.property.declared_value);
    let decision = domain::decide(app, score, appraised);
    let (status, mut reasons) = match &decision.verdict {
        Verdict::Approved if band.refers(score) => {
            return Expected {
                status: UNDER_REVIEW,
                credit_score: score.get(),
                appraised_value: Some(appraised),
                rate_bps: None,
                monthly_payment: None,
                reasons: Vec::new(),
                referral: Some(Figures { rate_bps: decision.rate_bps, monthly_payment: decision.monthly_payment }),
            }
        }
        Verdict::Approved => ("approved", Vec::new()),
        Verdict::Rejected(reasons) => ("rejected", reasons.iter().map(RejectionReason::as_str).collect()),
    };
    reasons.sort_unstable();
    Expected {
        status,
        credit_score: score.get(),
        appraised_value: Some(appraised),
        rate_bps: Some(decision.rate_bps),
        monthly_payment: Some(decision.monthly_payment),
        reasons,
        referral: None,
    }
}

impl Expected {
    /// A cancelled loan: no figures; its credit score, if set, is this one.
    pub fn cancelled(credit_score: u16) -> Self {
        Expected {
            status: "cancelled",
            credit_score,
            appraised_value: None,
            rate_bps: None,
            monthly_payment: None,
            reasons: Vec::new(),
            referral: None,
        }
    }

    /// Terminal, by the contract's definition (and so notified in the end).
    pub fn is_terminal(&self) -> bool {
        matches!(self.status, "approved" | "rejected" | "cancelled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Shares = Shares { referred: 0.0, fail: 0.1 };

    #[test]
    fn the_same_seed_gives_the_same_bodies() {
        let a = applications(7, 50, PLAIN, ReviewBand::NEVER);
        let b = applications(7, 50, PLAIN, ReviewBand::NEVER);
        assert!(a.iter().zip(&b).all(|(x, y)| x.body == y.body && x.expected == y.expected));
    }

    #[test]
    fn the_mix_covers_every_outcome_and_reason() {
        let mix = Mix::of(&applications(42, 2_000, PLAIN, ReviewBand::NEVER));
        assert!(mix.approved > 700 && mix.cancelled > 100, "{mix:?}");
        assert!(mix.rejected_for_credit_score > 100, "{mix:?}");
        assert!(mix.rejected_for_loan_to_value > 100, "{mix:?}");
        assert!(mix.rejected_for_debt_to_income > 100, "{mix:?}");
    }

    #[test]
    fn a_band_turns_the_approvals_below_it_into_referrals_and_nothing_else() {
        let plain = applications(42, 500, PLAIN, ReviewBand::NEVER);
        let banded = applications(42, 500, PLAIN, ReviewBand::DEFAULT);
        let referred = banded.iter().filter(|g| g.expected.status == UNDER_REVIEW).count();
        assert!(referred > 10, "{referred} referred");
        for (p, b) in plain.iter().zip(&banded) {
            if b.expected.status == UNDER_REVIEW {
                assert_eq!(p.expected.status, "approved");
                assert!(b.expected.credit_score < 660 && b.expected.rate_bps.is_none());
            } else {
                assert_eq!(p.expected, b.expected);
            }
        }
    }

    #[test]
    fn a_referred_share_refers_that_share_and_no_other_approval() {
        let band = ReviewBand::DEFAULT;
        let apps = applications(3, 2_000, Shares { referred: 0.1, fail: 0.1 }, band);
        let referred: Vec<&Expected> = apps.iter().map(|g| &g.expected).filter(|e| e.status == UNDER_REVIEW).collect();
        assert!((150..=250).contains(&referred.len()), "{} of 2,000 referred", referred.len());
        assert!(referred.iter().all(|e| (620..660).contains(&e.credit_score) && e.referral.is_some()));
        let approved = apps.iter().filter(|g| g.expected.status == "approved");
        assert!(approved.clone().count() > 600);
        assert!(approved.into_iter().all(|g| g.expected.credit_score >= 660));
    }
}
