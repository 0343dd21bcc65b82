//! Expected figures below were computed independently with Python (`hashlib` for the hashes,
//! `decimal` at 80 digits with ROUND_HALF_UP for the money), not with this code.

use std::str::FromStr;

use proptest::prelude::*;

use super::super::application::{Applicant, ApplicantName, Property};
use super::*;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn money(s: &str) -> Money {
    Money::from_decimal_rounded(dec(s))
}

fn term(months: i64) -> TermMonths {
    TermMonths::parse(months).unwrap()
}

fn score(value: u16) -> CreditScore {
    CreditScore::new(value).unwrap()
}

fn application(amount: &str, income: &str, debts: &str, term_months: i64) -> LoanApplication {
    LoanApplication {
        applicant: Applicant {
            name: ApplicantName::parse("Jane Doe").unwrap(),
            email: Email::parse("jane@example.com").unwrap(),
            annual_income: money(income),
            monthly_debts: money(debts),
        },
        property: Property {
            address: Address::parse("1 Canal St, Amsterdam").unwrap(),
            declared_value: money("400000"),
        },
        amount: money(amount),
        term_months: term(term_months),
    }
}

fn rejected(reasons: &[RejectionReason]) -> Verdict {
    Verdict::Rejected(reasons.to_vec())
}

#[test]
fn credit_scores_match_the_contract_hash() {
    let cases = [
        ("Jane.Doe@Example.com", 766),
        ("jane.doe@example.com", 766),
        ("john@example.com", 533),
        ("alice@example.org", 762),
        ("bob@test.io", 383),
        ("a@b.co", 668),
    ];
    for (email, expected) in cases {
        let email = Email::parse(email).unwrap();
        assert_eq!(credit_score(&email).get(), expected, "{email:?}");
    }
}

#[test]
fn credit_score_range_and_serde() {
    assert!(CreditScore::new(299).is_none());
    assert!(CreditScore::new(851).is_none());
    assert_eq!(CreditScore::new(300).unwrap().get(), 300);
    assert_eq!(serde_json::to_string(&score(766)).unwrap(), "766");
    assert_eq!(serde_json::from_str::<CreditScore>("850").unwrap(), score(850));
    assert!(serde_json::from_str::<CreditScore>("900").is_err());
}

#[test]
fn appraisals_match_the_contract_hash() {
    let cases = [
        // (address, declared, appraised); factors 105, 90, 90 (half-cent rounds up), 102.
        ("1 Canal St, Amsterdam", "400000", "420000.00"),
        ("221B Baker Street, London", "500000", "450000.00"),
        ("221B Baker Street, London", "1000.05", "900.05"),
        ("10 Downing St", "333333.33", "340000.00"),
    ];
    for (address, declared, expected) in cases {
        let address = Address::parse(address).unwrap();
        assert_eq!(appraised_value(&address, money(declared)), money(expected), "{address:?}");
    }
}

#[test]
fn rate_follows_the_score() {
    assert_eq!(rate_bps(score(850)), 300);
    assert_eq!(rate_bps(score(766)), 384);
    assert_eq!(rate_bps(score(620)), 530);
    assert_eq!(rate_bps(score(300)), 850);
    assert_eq!(monthly_rate(1200), dec("0.01"));
}

#[test]
fn monthly_payments_match_an_exact_computation() {
    let cases = [
        ("300000", 550, 360, "1703.37"),
        ("300000", 300, 360, "1264.81"),
        ("300000", 384, 360, "1404.71"),
        ("300000", 530, 360, "1665.91"),
        ("300000", 531, 360, "1667.78"),
        ("300000", 384, 12, "25523.05"),
        ("360000", 384, 360, "1685.65"),
        ("390000", 650, 360, "2465.07"),
        ("250000.00", 850, 240, "2169.56"),
        ("100000", 463, 120, "1042.66"),
        ("10000000", 850, 480, "73309.41"),
        ("150000", 725, 12, "12996.31"),
        ("0.01", 300, 12, "0.00"),
    ];
    for (amount, bps, months, expected) in cases {
        let payment = monthly_payment(money(amount), bps, term(months));
        assert_eq!(payment, money(expected), "{amount} at {bps} bps over {months}");
    }
}

#[test]
fn monthly_payment_edge_rates() {
    assert_eq!(monthly_payment(money("1200"), 0, term(12)), money("100"));
    // f overflows: the payment is the interest alone, amount * r.
    let huge = monthly_payment(money("1000"), u32::MAX, term(480));
    assert_eq!(huge, Money::from_decimal_rounded(dec("1000") * monthly_rate(u32::MAX)));
}

#[test]
fn approves_a_comfortable_application() {
    let decision = decide(&application("300000", "120000", "500", 360), score(766), money("400000"));
    assert_eq!(decision.verdict, Verdict::Approved);
    assert!(decision.verdict.is_approved());
    assert_eq!(decision.rate_bps, 384);
    assert_eq!(decision.monthly_payment, money("1404.71"));
    assert_eq!(decision.loan_to_value, dec("0.7500"));
    assert_eq!(decision.debt_to_income, dec("0.1905"));
}

#[test]
fn credit_score_threshold_is_620() {
    let app = application("300000", "120000", "500", 360);
    assert_eq!(decide(&app, score(620), money("400000")).verdict, Verdict::Approved);
    let low = decide(&app, score(619), money("400000"));
    assert_eq!(low.verdict, rejected(&[RejectionReason::CreditScoreTooLow]));
    assert_eq!(low.rate_bps, 531);
    assert_eq!(low.monthly_payment, money("1667.78"));
}

#[test]
fn loan_to_value_of_exactly_090_is_approved() {
    let at_limit = decide(&application("360000", "120000", "500", 360), score(766), money("400000"));
    assert_eq!(at_limit.verdict, Verdict::Approved);
    assert_eq!(at_limit.loan_to_value, dec("0.9000"));
    let over = decide(&application("360000.01", "120000", "500", 360), score(766), money("400000"));
    assert_eq!(over.verdict, rejected(&[RejectionReason::LoanToValueTooHigh]));
    // Rounded for display, still rejected: the comparison is exact.
    assert_eq!(over.loan_to_value, dec("0.9000"));
}

#[test]
fn debt_to_income_of_exactly_043_is_approved() {
    // 1685.65 + 2614.35 = 4300.00 per month = 0.43 * 120000 / 12.
    let app = application("360000", "120000", "2614.35", 360);
    let at_limit = decide(&app, score(766), money("400000"));
    assert_eq!(at_limit.monthly_payment, money("1685.65"));
    assert_eq!(at_limit.verdict, Verdict::Approved);
    assert_eq!(at_limit.debt_to_income, dec("0.4300"));
    let over = decide(&application("360000", "120000", "2614.36", 360), score(766), money("400000"));
    assert_eq!(over.verdict, rejected(&[RejectionReason::DebtToIncomeTooHigh]));
}

#[test]
fn every_applicable_reason_is_listed_in_rule_order() {
    let app = application("390000", "60000", "3000", 360);
    let decision = decide(&app, score(500), money("400000"));
    assert_eq!(
        decision.verdict,
        rejected(&[
            RejectionReason::CreditScoreTooLow,
            RejectionReason::LoanToValueTooHigh,
            RejectionReason::DebtToIncomeTooHigh,
        ])
    );
    assert_eq!(decision.rate_bps, 650);
    assert_eq!(decision.monthly_payment, money("2465.07"));
    assert_eq!(decision.loan_to_value, dec("0.9750"));
    assert_eq!(decision.debt_to_income, dec("1.0930"));
}

#[test]
fn rejection_reasons_serialise_in_snake_case() {
    let json = serde_json::to_string(&RejectionReason::LoanToValueTooHigh).unwrap();
    assert_eq!(json, "\"loan_to_value_too_high\"");
    for reason in
        [RejectionReason::CreditScoreTooLow, RejectionReason::LoanToValueTooHigh, RejectionReason::DebtToIncomeTooHigh]
    {
        let json = serde_json::to_value(reason).unwrap();
        assert_eq!(json.as_str(), Some(reason.as_str()));
    }
}

proptest! {
    #[test]
    fn credit_score_is_always_in_range(
        local in "[a-zA-Z0-9._]{1,30}",
        domain in "[a-z]{1,15}\\.[a-z]{2,6}",
    ) {
        let email = Email::parse(&format!("{local}@{domain}")).unwrap();
        let score = credit_score(&email).get();
        prop_assert!((300..=850).contains(&score));
        let lower = Email::parse(&email.normalized()).unwrap();
        prop_assert_eq!(credit_score(&lower).get(), score);
    }

    #[test]
    fn appraisal_is_a_whole_percentage_between_90_and_105(
        address in "[ -~]{1,80}",
        declared_cents in 1i64..=100_000_000_000_000,
    ) {
        prop_assume!(!address.trim().is_empty());
        let address = Address::parse(&address).unwrap();
        let appraised = appraised_value(&address, Money::from_cents(declared_cents)).cents();
        let exact_in_ten_thousandths =
            |percent: i64| i128::from(declared_cents) * i128::from(percent);
        prop_assert!(i128::from(appraised) * 100 >= exact_in_ten_thousandths(90) - 50);
        prop_assert!(i128::from(appraised) * 100 <= exact_in_ten_thousandths(105) + 50);
        let matches_a_percent = (90..=105).any(|p| {
            let scaled = exact_in_ten_thousandths(p);
            (scaled + 50) / 100 == i128::from(appraised)
        });
        prop_assert!(matches_a_percent);
    }

    #[test]
    fn decide_is_consistent_with_the_rules(
        score_value in 300u16..=850,
        amount in 1i64..=1_000_000_000,
        appraised in 1i64..=1_500_000_000,
        income in 1i64..=100_000_000,
        debts in 0i64..=10_000_000,
        months in 12i64..=480,
    ) {
        let mut app = application("1", "1", "0", months);
        app.amount = Money::from_cents(amount);
        app.applicant.annual_income = Money::from_cents(income);
        app.applicant.monthly_debts = Money::from_cents(debts);
        let score = score(score_value);
        let decision = decide(&app, score, Money::from_cents(appraised));

        prop_assert_eq!(decision.rate_bps, rate_bps(score));
        let payment = monthly_payment(app.amount, decision.rate_bps, app.term_months);
        prop_assert_eq!(decision.monthly_payment, payment);
        // Integer cents, independent of the Decimal code path.
        let mut expected = Vec::new();
        if score_value < 620 {
            expected.push(RejectionReason::CreditScoreTooLow);
        }
        if i128::from(amount) * 100 > i128::from(appraised) * 90 {
            expected.push(RejectionReason::LoanToValueTooHigh);
        }
        if i128::from(debts + payment.cents()) * 1200 > i128::from(income) * 43 {
            expected.push(RejectionReason::DebtToIncomeTooHigh);
        }
        let expected = if expected.is_empty() {
            Verdict::Approved
        } else {
            Verdict::Rejected(expected)
        };
        prop_assert_eq!(decision.verdict, expected);
    }
}
