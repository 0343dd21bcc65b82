//! What the loans read back say, against what the contract says: finished, waiting as expected,
//! or disagreeing (a field, a history, a step of a play that answered otherwise).

use chrono::{DateTime, FixedOffset};

use super::check::{self, LoanBody};
use super::generate::Expected;
use super::human::{self, EventBody, Play, PlayOutcome};
use super::report::{Disagreement, HumanReport, Latency};

/// One submitted loan and everything known about it.
pub struct Loan<'a> {
    pub id: &'a str,
    pub expected: &'a Expected,
    pub read: &'a Result<LoanBody, String>,
    /// For a played loan: its script, what playing it gave, and its history.
    pub played: Option<Played<'a>>,
}

pub struct Played<'a> {
    pub play: Play,
    pub outcome: Option<&'a PlayOutcome>,
    /// `None` when not read (`--histories`).
    pub history: Option<&'a Result<Vec<EventBody>, String>>,
}

pub struct Verdict {
    /// Terminal and notified.
    pub finished: usize,
    /// Waiting on a person, as expected.
    pub waiting: usize,
    /// From the first `submitted_at` to the last `notified_at`.
    pub e2e_seconds: f64,
    pub e2e_ms: Vec<f64>,
    pub disagreements: Vec<Disagreement>,
    pub human: Option<HumanReport>,
}

impl Verdict {
    pub fn of(loans: &[Loan<'_>], human_workload: bool) -> Self {
        let mut verdict = Verdict {
            finished: 0,
            waiting: 0,
            e2e_seconds: 0.0,
            e2e_ms: Vec::with_capacity(loans.len()),
            disagreements: Vec::new(),
            human: human_workload.then(HumanReport::default),
        };
        let (mut first, mut last) = (None, None);
        let mut lateness = Vec::new();
        let mut due = Vec::new();
        for loan in loans {
            let body = match loan.read {
                Ok(body) => body,
                Err(_) => {
                    verdict.disagreements.push(Disagreement { id: loan.id.to_owned(), fields: vec!["unreadable"] });
                    continue;
                }
            };
            if body.is_finished() {
                verdict.finished += 1;
            } else if !loan.expected.is_terminal() && body.is_settled(loan.expected) {
                verdict.waiting += 1;
            }
            if let Some((submitted, notified)) = body.times() {
                verdict.e2e_ms.push((notified - submitted).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
                first = Some(first.map_or(submitted, |f: DateTime<FixedOffset>| f.min(submitted)));
                last = Some(last.map_or(notified, |l: DateTime<FixedOffset>| l.max(notified)));
            }
            let mut fields = check::disagreements(body, loan.expected);
            if body.id != loan.id {
                fields.push("id");
            }
            if let (Some(played), Some(report)) = (&loan.played, verdict.human.as_mut()) {
                fields.extend(judge_play(played, report, &mut lateness, &mut due));
            }
            if !fields.is_empty() {
                verdict.disagreements.push(Disagreement { id: loan.id.to_owned(), fields });
            }
        }
        if let (Some(first), Some(last)) = (first, last) {
            verdict.e2e_seconds = (last - first).num_microseconds().unwrap_or(0) as f64 / 1e6;
        }
        if let Some(report) = verdict.human.as_mut() {
            report.deadline_lateness_ms = Latency::of(&mut lateness);
            report.deadlines_due_per_second = due_rate(&mut due);
        }
        verdict
    }
}

/// Hold a played loan's steps and history against its script; counts its outcome.
fn judge_play(
    played: &Played<'_>,
    report: &mut HumanReport,
    lateness: &mut Vec<f64>,
    due: &mut Vec<DateTime<FixedOffset>>,
) -> Vec<&'static str> {
    report.played += 1;
    let mut fields = Vec::new();
    let due_at = played.outcome.and_then(|o| o.due_at);
    match played.outcome.map(|o| &o.error) {
        None => fields.push("play.unfinished"),
        Some(Some((step, detail))) => {
            report.play_errors += 1;
            report.first_play_error.get_or_insert_with(|| format!("{step}: {detail}"));
            fields.push(*step);
        }
        Some(None) => {}
    }
    match played.history {
        None => *report.outcomes.entry("history_not_read").or_default() += 1,
        Some(Ok(events)) => {
            let finding = human::check_events(played.play, events, due_at);
            *report.outcomes.entry(finding.outcome).or_default() += 1;
            fields.extend(finding.wrong);
            if let Some(ms) = finding.lateness_ms {
                lateness.push(ms);
                due.extend(due_at);
            }
        }
        Some(Err(_)) => fields.push("events.unreadable"),
    }
    fields
}

/// Deadlines per second over the span of their `due_at`s.
fn due_rate(due: &mut [DateTime<FixedOffset>]) -> Option<f64> {
    due.sort_unstable();
    let span = (*due.last()? - *due.first()?).num_microseconds()? as f64 / 1e6;
    (span > 0.0).then(|| due.len() as f64 / span)
}
