//! A seeded mix of applications, each built to land on a chosen outcome (approval, each
//! rejection reason alone and combined, the exact limits, failed appraisals), then checked
//! against the oracle so that the mix really covers what its labels say.

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::oracle::{self, Application, Expected, Outcome, FAIL_APPRAISAL};

#[derive(Debug, Clone, Copy)]
enum Score {
    Pass,
    Fail,
    Exactly(u32),
}

/// Where a ratio lands relative to its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ratio {
    Under,
    /// Exactly at the limit (approved).
    AtLimit,
    /// One cent above the limit.
    JustOver,
    Over,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    label: &'static str,
    count: usize,
    score: Score,
    ltv: Ratio,
    dti: Ratio,
    fail_appraisal: bool,
    /// Declared value such that the appraisal lands exactly on a half cent before rounding.
    half_cent_appraisal: bool,
}

const fn plan(label: &'static str, count: usize, score: Score, ltv: Ratio, dti: Ratio) -> Plan {
    Plan { label, count, score, ltv, dti, fail_appraisal: false, half_cent_appraisal: false }
}

use Ratio::{AtLimit, JustOver, Over, Under};
use Score::{Exactly, Fail, Pass};

/// 485 approvals, 415 rejections, 100 cancellations.
const PLANS: [Plan; 19] = [
    plan("approved", 340, Pass, Under, Under),
    Plan { half_cent_appraisal: true, ..plan("approved, appraisal rounds a half cent", 30, Pass, Under, Under) },
    plan("approved, LTV exactly 0.90", 40, Pass, AtLimit, Under),
    plan("approved, DTI exactly 0.43", 40, Pass, Under, AtLimit),
    plan("approved, LTV and DTI exactly at their limits", 20, Pass, AtLimit, AtLimit),
    plan("approved, score exactly 620", 15, Exactly(620), Under, Under),
    plan("rejected: score", 70, Fail, Under, Under),
    plan("rejected: score exactly 619", 15, Exactly(619), Under, Under),
    plan("rejected: LTV", 60, Pass, Over, Under),
    plan("rejected: LTV one cent over", 25, Pass, JustOver, Under),
    plan("rejected: DTI", 60, Pass, Under, Over),
    plan("rejected: DTI one cent over", 25, Pass, Under, JustOver),
    plan("rejected: score + LTV", 40, Fail, Over, Under),
    plan("rejected: score + DTI", 40, Fail, Under, Over),
    plan("rejected: LTV + DTI", 40, Pass, Over, Over),
    plan("rejected: score + LTV + DTI", 40, Fail, Over, Over),
    Plan { fail_appraisal: true, ..plan("cancelled: appraisal fails", 50, Pass, Under, Under) },
    Plan { fail_appraisal: true, ..plan("cancelled: appraisal fails, low score", 25, Fail, Under, Under) },
    Plan { fail_appraisal: true, ..plan("cancelled: appraisal fails, would be rejected", 25, Fail, Over, Over) },
];

/// One application and what the contract says becomes of it.
#[derive(Debug, Clone)]
pub struct Case {
    pub label: &'static str,
    pub app: Application,
    pub expected: Expected,
}

/// `count` cases in a seeded, shuffled order. Panics if `count` is not the plans' total.
pub fn cases(seed: u64, count: usize) -> Vec<Case> {
    assert_eq!(PLANS.iter().map(|p| p.count).sum::<usize>(), count, "the plans must add up to {count}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cases = Vec::with_capacity(count);
    for plan in &PLANS {
        for _ in 0..plan.count {
            let serial = cases.len();
            cases.push(build(&mut rng, plan, serial));
        }
    }
    cases.shuffle(&mut rng);
    cases
}

fn build(rng: &mut StdRng, plan: &Plan, serial: usize) -> Case {
    let (name, email) = applicant(rng, plan.score, serial);
    let (address, declared_value) = property(rng, plan, serial);
    let appraised = oracle::appraised_value(&address, declared_value);
    let amount = amount(rng, plan.ltv, appraised, declared_value);
    let term_months =
        if rng.random_bool(0.5) { *[120, 180, 240, 300, 360].choose(rng).unwrap() } else { rng.random_range(12..=480) };
    let payment = oracle::monthly_payment(amount, oracle::rate_bps(oracle::credit_score(&email)), term_months);
    let (annual_income, monthly_debts) = income_and_debts(rng, plan.dti, payment);
    let app = Application { name, email, annual_income, monthly_debts, address, declared_value, amount, term_months };
    let expected = oracle::expected(&app);
    assert_lands_as_planned(plan, &expected, &app);
    Case { label: plan.label, app, expected }
}

/// The generator's own check: the oracle must agree that the case covers what its label says.
fn assert_lands_as_planned(plan: &Plan, expected: &Expected, app: &Application) {
    let outcome = if plan.fail_appraisal {
        Outcome::Cancelled
    } else if matches!(plan.score, Pass | Exactly(620))
        && [plan.ltv, plan.dti].iter().all(|r| matches!(r, Under | AtLimit))
    {
        Outcome::Approved
    } else {
        Outcome::Rejected
    };
    let mut reasons = Vec::new();
    if outcome == Outcome::Rejected {
        if matches!(plan.score, Fail | Exactly(619)) {
            reasons.push(oracle::CREDIT_SCORE_TOO_LOW);
        }
        if matches!(plan.ltv, JustOver | Over) {
            reasons.push(oracle::LOAN_TO_VALUE_TOO_HIGH);
        }
        if matches!(plan.dti, JustOver | Over) {
            reasons.push(oracle::DEBT_TO_INCOME_TOO_HIGH);
        }
        reasons.sort_unstable();
    }
    assert!(
        expected.outcome == outcome && expected.reasons == reasons,
        "generator bug: `{}` gives {expected:?} for {app:?}",
        plan.label
    );
}

const FIRST_NAMES: [&str; 8] = ["Ada", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Tony", "Radia"];
const LAST_NAMES: [&str; 8] = ["Lovelace", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Hoare", "Perlman"];
const DOMAINS: [&str; 4] = ["example.com", "Example.org", "mail.example.net", "EXAMPLE.EU"];

/// A name and an e-mail whose credit score meets the target; some addresses are mixed case,
/// which must not change the score.
fn applicant(rng: &mut StdRng, target: Score, serial: usize) -> (String, String) {
    let first = *FIRST_NAMES.choose(rng).unwrap();
    let last = *LAST_NAMES.choose(rng).unwrap();
    let domain = *DOMAINS.choose(rng).unwrap();
    let shout = rng.random_bool(0.25);
    for attempt in 0..200_000 {
        let local = format!("{first}.{last}.{serial}.{attempt}");
        let local = if shout { local.to_uppercase() } else { local.to_lowercase() };
        let email = format!("{local}@{domain}");
        let score = oracle::credit_score(&email);
        let hit = match target {
            Pass => score >= 620,
            Fail => score < 620,
            Exactly(wanted) => score == wanted,
        };
        if hit {
            return (format!("{first} {last}"), email);
        }
    }
    panic!("no e-mail found with a score {target:?}");
}

const STREETS: [&str; 6] = ["Harbour Road", "Rua Augusta", "Kings Lane", "Canal Street", "Avenida Central", "Elm Row"];
const CITIES: [&str; 5] = ["Lisbon", "Porto", "Dublin", "Ghent", "Tallinn"];

fn property(rng: &mut StdRng, plan: &Plan, serial: usize) -> (String, Decimal) {
    for attempt in 0..10_000 {
        let street = *STREETS.choose(rng).unwrap();
        let city = *CITIES.choose(rng).unwrap();
        let address = match (plan.fail_appraisal, rng.random_bool(0.5)) {
            (false, _) => format!("{} {street}, {city} (#{serial}.{attempt})", rng.random_range(1..400)),
            (true, true) => format!("{} {street}, {city} {FAIL_APPRAISAL}", rng.random_range(1..400)),
            (true, false) => format!("{} {street} {FAIL_APPRAISAL}, {city}", rng.random_range(1..400)),
        };
        let declared = if plan.ltv == AtLimit {
            // A multiple of 10 EUR: the appraisal is then a multiple of 10 cents, so 90% of it
            // is a whole number of cents and the amount can sit exactly on the limit.
            Decimal::from(10 * rng.random_range(8_000..=250_000))
        } else {
            // 80,000.00 to 2,500,000.00 EUR, in cents.
            Decimal::new(rng.random_range(8_000_000..=250_000_000), 2)
        };
        let percent = Decimal::from(oracle::appraisal_percent(&address));
        let exact_cents = declared * percent;
        if !plan.half_cent_appraisal || exact_cents.fract() == Decimal::new(5, 1) {
            return (address, declared);
        }
    }
    panic!("no property found for `{}`", plan.label);
}

fn cents_between(rng: &mut StdRng, low: Decimal, high: Decimal) -> Decimal {
    let to_cents = |d: Decimal| (d * Decimal::ONE_HUNDRED).trunc().to_i64().expect("cents fit an i64");
    Decimal::new(rng.random_range(to_cents(low)..=to_cents(high)), 2)
}

fn floor_cents(d: Decimal) -> Decimal {
    (d * Decimal::ONE_HUNDRED).floor() / Decimal::ONE_HUNDRED
}

/// The amount for a loan-to-value target; never above the declared value (the API refuses it).
fn amount(rng: &mut StdRng, ltv: Ratio, appraised: Decimal, declared: Decimal) -> Decimal {
    let limit = appraised * Decimal::new(90, 2);
    match ltv {
        Under => cents_between(rng, limit * Decimal::new(30, 2), floor_cents(limit)),
        AtLimit => {
            assert_eq!(limit, floor_cents(limit), "an at-limit amount needs a whole-cent limit");
            limit
        }
        JustOver => floor_cents(limit) + Decimal::new(1, 2),
        Over => cents_between(rng, floor_cents(limit) + Decimal::new(1, 2), declared),
    }
}

/// Income and debts for a debt-to-income target, given the monthly payment.
fn income_and_debts(rng: &mut StdRng, dti: Ratio, payment: Decimal) -> (Decimal, Decimal) {
    match dti {
        Under | Over => {
            let debts =
                if rng.random_bool(0.2) { Decimal::ZERO } else { Decimal::new(rng.random_range(1..=300_000), 2) };
            let yearly = (debts + payment) * Decimal::from(12);
            let income = if dti == Under {
                let ratio = Decimal::new(rng.random_range(5..=42), 2);
                (yearly / ratio * Decimal::ONE_HUNDRED).ceil() / Decimal::ONE_HUNDRED
            } else {
                let ratio = Decimal::new(rng.random_range(45..=150), 2);
                floor_cents(yearly / ratio)
            };
            (income, debts)
        }
        AtLimit | JustOver => {
            // An income of 12 * j EUR a year allows exactly 0.43 * j EUR of obligations a month.
            let least = (payment / Decimal::new(43, 2)).ceil();
            let j = least + Decimal::from(rng.random_range(0..=5_000));
            let debts = j * Decimal::new(43, 2) - payment;
            let debts = if dti == JustOver { debts + Decimal::new(1, 2) } else { debts };
            (j * Decimal::from(12), debts)
        }
    }
}
