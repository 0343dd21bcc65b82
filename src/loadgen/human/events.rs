//! A played loan's history, read from `GET /api/v1/loans/{id}/events`, held against its script:
//! the events the contract says it must hold, each at-most-once event at most once, exactly one
//! terminal notification and it last, the cancellation's reason; and how late its deadline fired.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use super::{Decision, Play, WithdrawAt};

/// The fields of an event the check looks at.
#[derive(Debug, Deserialize)]
pub struct EventBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What a played loan's history says.
#[derive(Debug, Default)]
pub struct Finding {
    /// The names of what disagrees with the contract (empty = it conforms).
    pub wrong: Vec<&'static str>,
    /// The outcome, as the report counts it.
    pub outcome: &'static str,
    /// Expiry: `InformationRequestExpired.at` - `due_at`, in milliseconds.
    pub lateness_ms: Option<f64>,
}

/// Events that happen at most once per loan (CONTRACT.md, "The human steps").
const AT_MOST_ONCE: [&str; 9] = [
    "LoanReferred",
    "InformationRequestExpired",
    "LoanApproved",
    "LoanRejected",
    "LoanCancelled",
    "ScheduleGenerated",
    "CreditChecked",
    "PropertyAppraised",
    "LoanSubmitted",
];

/// Hold `events` (oldest first) against `play`; `due_at` is the request's deadline from its 201.
pub fn check(play: Play, events: &[EventBody], due_at: Option<DateTime<FixedOffset>>) -> Finding {
    let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    let has = |kind: &str| count(kind) > 0;
    let mut finding = Finding { outcome: outcome(play, has("LoanReferred")), ..Finding::default() };
    let wrong = &mut finding.wrong;
    if AT_MOST_ONCE.iter().any(|kind| count(kind) > 1) {
        wrong.push("events.at_most_once");
    }
    let notified = if play == Play::Hold { 0 } else { 1 };
    if count("ApplicantNotified") != notified {
        wrong.push("events.ApplicantNotified");
    } else if notified == 1 && !notified_after_the_end(events) {
        wrong.push("events.ApplicantNotified_order");
    }
    for kind in required(play) {
        if !has(kind) {
            wrong.push(kind);
        }
    }
    let cancelled_for = match play {
        Play::AskExpire { .. } => Some("information_not_provided"),
        Play::Withdraw(_) => Some("withdrawn"),
        _ => None,
    };
    if let Some(prefix) = cancelled_for {
        let reason = events.iter().find(|e| e.kind == "LoanCancelled").and_then(|e| e.data["reason"].as_str());
        if !reason.is_some_and(|r| r.starts_with(prefix)) {
            wrong.push("events.LoanCancelled.reason");
        }
    }
    if let (Play::AskExpire { .. }, Some(due_at)) = (play, due_at) {
        let expired = events.iter().find(|e| e.kind == "InformationRequestExpired");
        finding.lateness_ms = expired
            .and_then(|e| DateTime::parse_from_rfc3339(&e.at).ok())
            .and_then(|at| (at - due_at).num_microseconds())
            .map(|us| us as f64 / 1e3);
    }
    finding
}

/// `ApplicantNotified` after the terminal event and, when approved, after `ScheduleGenerated`
/// (notices such as `InformationRequestSent` may be recorded later: the contract does not
/// order them).
fn notified_after_the_end(events: &[EventBody]) -> bool {
    let at = |kinds: &[&str]| events.iter().position(|e| kinds.contains(&e.kind.as_str()));
    let Some(notified) = at(&["ApplicantNotified"]) else { return false };
    let ended = at(&["LoanApproved", "LoanRejected", "LoanCancelled"]);
    ended.is_some_and(|ended| ended < notified) && at(&["ScheduleGenerated"]).is_none_or(|s| s < notified)
}

/// The events `play` must leave in the history.
fn required(play: Play) -> Vec<&'static str> {
    const ASKED: [&str; 3] = ["LoanReferred", "InformationRequested", "InformationRequestSent"];
    let decided = |decision| match decision {
        Decision::Approve => ["LoanApproved", "ScheduleGenerated"].as_slice(),
        Decision::Reject => ["LoanRejected"].as_slice(),
    };
    let mut kinds: Vec<&'static str> = Vec::new();
    match play {
        Play::Decide { decision, claim } => {
            kinds.push("LoanReferred");
            if claim {
                kinds.push("ReviewClaimed");
            }
            kinds.extend(decided(decision));
        }
        Play::AskAnswerDecide(decision) => {
            kinds.extend(ASKED);
            kinds.push("InformationProvided");
            kinds.extend(decided(decision));
        }
        Play::AskExpire { .. } => {
            kinds.extend(ASKED);
            kinds.extend(["InformationRequestExpired", "LoanCancelled"]);
        }
        Play::Withdraw(at) => {
            kinds.extend(match at {
                WithdrawAt::AtOnce => [].as_slice(),
                WithdrawAt::UnderReview => ["LoanReferred"].as_slice(),
                WithdrawAt::AwaitingInformation => ["LoanReferred", "InformationRequested"].as_slice(),
                WithdrawAt::AfterAnswer => ["LoanReferred", "InformationRequested", "InformationProvided"].as_slice(),
            });
            kinds.extend(["CancellationRequested", "LoanCancelled"]);
        }
        Play::Hold => kinds.extend(["LoanReferred", "InformationRequested"]),
    }
    kinds
}

/// The outcome's name in the report; a withdrawal at once counts as before the referral when the
/// history has none.
fn outcome(play: Play, referred: bool) -> &'static str {
    match play {
        Play::Decide { decision: Decision::Approve, .. } => "approved_by_underwriter",
        Play::Decide { decision: Decision::Reject, .. } => "rejected_by_underwriter",
        Play::AskAnswerDecide(Decision::Approve) => "answered_then_approved",
        Play::AskAnswerDecide(Decision::Reject) => "answered_then_rejected",
        Play::AskExpire { .. } => "expired",
        Play::Withdraw(WithdrawAt::AtOnce) if !referred => "withdrawn_before_referral",
        Play::Withdraw(WithdrawAt::AtOnce | WithdrawAt::UnderReview) => "withdrawn_under_review",
        Play::Withdraw(WithdrawAt::AwaitingInformation) => "withdrawn_awaiting_information",
        Play::Withdraw(WithdrawAt::AfterAnswer) => "withdrawn_after_answer",
        Play::Hold => "held_awaiting_information",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(kinds: &[&str]) -> Vec<EventBody> {
        kinds
            .iter()
            .map(|kind| EventBody {
                kind: (*kind).to_owned(),
                at: "2026-12-06T21:41:29.500000Z".to_owned(),
                data: if *kind == "LoanCancelled" {
                    serde_json::json!({"reason": "information_not_provided: request r was not answered by its deadline"})
                } else {
                    serde_json::Value::Null
                },
            })
            .collect()
    }

    const EXPIRED: [&str; 11] = [
        "LoanSubmitted",
        "CreditChecked",
        "PropertyAppraised",
        "LoanReferred",
        "InformationRequested",
        "InformationRequestSent",
        "InformationRequestExpired",
        "AppraisalVoided",
        "CreditCheckReleased",
        "LoanCancelled",
        "ApplicantNotified",
    ];

    #[test]
    fn an_expiry_as_the_contract_says_conforms_and_gives_its_lateness() {
        let due_at = DateTime::parse_from_rfc3339("2026-12-06T21:41:28.250000Z").ok();
        let finding = check(Play::AskExpire { due_in_seconds: 2 }, &history(&EXPIRED), due_at);
        assert!(finding.wrong.is_empty(), "{:?}", finding.wrong);
        assert_eq!(finding.outcome, "expired");
        assert_eq!(finding.lateness_ms, Some(1_250.0));
    }

    #[test]
    fn a_missing_event_a_second_notice_and_a_wrong_reason_are_named() {
        let mut twice = EXPIRED.to_vec();
        twice.push("ApplicantNotified");
        let finding = check(Play::AskExpire { due_in_seconds: 2 }, &history(&twice), None);
        assert_eq!(finding.wrong, ["events.ApplicantNotified"]);
        let mut early = EXPIRED.to_vec();
        early.swap(9, 10);
        let finding = check(Play::AskExpire { due_in_seconds: 2 }, &history(&early), None);
        assert_eq!(finding.wrong, ["events.ApplicantNotified_order"]);
        let withdrawn = check(Play::Withdraw(WithdrawAt::AfterAnswer), &history(&EXPIRED), None);
        assert_eq!(withdrawn.wrong, ["InformationProvided", "CancellationRequested", "events.LoanCancelled.reason"]);
        assert_eq!(withdrawn.outcome, "withdrawn_after_answer");
        let early = check(Play::Withdraw(WithdrawAt::AtOnce), &history(&["LoanSubmitted"]), None);
        assert_eq!(early.outcome, "withdrawn_before_referral");
    }
}
