//! One referred loan's script, played over HTTP: the staff steps with the load generator's staff
//! token, the applicant's with the loan's own `access_token` from the 201.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Client;
use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

use super::{Decision, Play, WithdrawAt, LONGEST_DEADLINE_SECONDS};

/// The fields every request asks for (and every answer gives).
const FIELDS: [&str; 2] = ["employer", "net_monthly_salary"];
/// The first wait before trying a staff step again on a loan the rules have not referred yet.
const FIRST_RETRY: Duration = Duration::from_millis(20);
const LONGEST_RETRY: Duration = Duration::from_millis(500);

/// What became of playing one loan.
#[derive(Debug, Default)]
pub struct PlayOutcome {
    /// The index of the loan among the submissions.
    pub index: usize,
    /// The step that answered otherwise than the contract says, and how.
    pub error: Option<(&'static str, String)>,
    /// The deadline of the request asked for, as the 201 gave it.
    pub due_at: Option<DateTime<FixedOffset>>,
}

/// One loan and the two credentials that act on it.
struct Loan<'a> {
    client: &'a Client,
    base: &'a str,
    id: &'a str,
    applicant: String,
    deadline: Instant,
}

type Step = Result<Value, (&'static str, String)>;

/// Play `play` on the loan `id` (submission `index`), whose applicant holds `access_token`.
pub async fn play(
    client: &Client,
    base: &str,
    index: usize,
    id: &str,
    access_token: &str,
    play: Play,
    deadline: Instant,
) -> PlayOutcome {
    let loan = Loan { client, base, id, applicant: format!("Bearer {access_token}"), deadline };
    let mut outcome = PlayOutcome { index, ..PlayOutcome::default() };
    if let Err(error) = loan.run(play, &mut outcome).await {
        outcome.error = Some(error);
    }
    outcome
}

impl Loan<'_> {
    async fn run(&self, play: Play, outcome: &mut PlayOutcome) -> Result<(), (&'static str, String)> {
        match play {
            Play::Decide { decision, claim } => {
                if claim {
                    self.once_referred("play.claim", "claim", None, 200).await?;
                }
                self.decide(decision, !claim).await?;
            }
            Play::AskAnswerDecide(decision) => {
                let request = self.ask(3_600, outcome).await?;
                self.answer(&request).await?;
                self.decide(decision, false).await?;
            }
            Play::AskExpire { due_in_seconds } => {
                self.ask(due_in_seconds, outcome).await?;
            }
            Play::Withdraw(at) => {
                match at {
                    WithdrawAt::AtOnce => {}
                    WithdrawAt::UnderReview => self.wait_referred().await?,
                    WithdrawAt::AwaitingInformation => {
                        self.ask(3_600, outcome).await?;
                    }
                    WithdrawAt::AfterAnswer => {
                        let request = self.ask(3_600, outcome).await?;
                        self.answer(&request).await?;
                    }
                }
                self.post("play.withdraw", "withdraw", None, true, 202).await?;
            }
            Play::Hold => {
                self.ask(LONGEST_DEADLINE_SECONDS, outcome).await?;
            }
        }
        Ok(())
    }

    /// Ask for the fields; the request's id.
    async fn ask(&self, due_in_seconds: u32, outcome: &mut PlayOutcome) -> Result<String, (&'static str, String)> {
        let body = json!({"message": "Please name your employer and your net monthly salary.",
            "fields": FIELDS, "due_in_seconds": due_in_seconds});
        let created = self.once_referred("play.ask", "information-requests", Some(body), 201).await?;
        outcome.due_at = created["due_at"].as_str().and_then(|at| DateTime::parse_from_rfc3339(at).ok());
        created["request_id"].as_str().map(str::to_owned).ok_or(("play.ask", format!("no request_id in {created}")))
    }

    async fn answer(&self, request_id: &str) -> Step {
        let answers: serde_json::Map<String, Value> =
            FIELDS.iter().map(|field| ((*field).to_owned(), json!(format!("the {field}")))).collect();
        let body = json!({"request_id": request_id, "answers": answers});
        self.post("play.answer", "information", Some(body), true, 200).await
    }

    /// The decision; `first` when it is the first staff step (the loan may not be referred yet).
    async fn decide(&self, decision: Decision, first: bool) -> Step {
        let body = json!({"decision": decision.as_str(), "note": "decided by loanflow loadgen"});
        if first {
            self.once_referred("play.decide", "decision", Some(body), 200).await
        } else {
            self.post("play.decide", "decision", Some(body), false, 200).await
        }
    }

    /// A staff step, tried again while the rules have not referred the loan yet (a 409 that
    /// names `submitted` or `evaluating`), with a growing pause.
    async fn once_referred(&self, step: &'static str, route: &str, body: Option<Value>, status: u16) -> Step {
        let mut pause = FIRST_RETRY;
        loop {
            let (answered, value) = self.send(step, route, body.clone(), false).await?;
            let not_yet = answered == 409 && matches!(value["loan_status"].as_str(), Some("submitted" | "evaluating"));
            if !not_yet || Instant::now() >= self.deadline {
                return expect(step, route, (answered, value), status);
            }
            sleep(pause).await;
            pause = (pause * 2).min(LONGEST_RETRY);
        }
    }

    /// Read the loan as its applicant until the rules have referred it.
    async fn wait_referred(&self) -> Result<(), (&'static str, String)> {
        let url = format!("{}/api/v1/loans/{}", self.base, self.id);
        let mut pause = FIRST_RETRY;
        loop {
            let read = self.client.get(&url).header(AUTHORIZATION, &self.applicant).send().await;
            let body: Value = match read {
                Ok(response) => response.json().await.unwrap_or(Value::Null),
                Err(err) => return Err(("play.read", err.to_string())),
            };
            match body["status"].as_str() {
                Some("under_review") => return Ok(()),
                Some("submitted" | "evaluating") if Instant::now() < self.deadline => {
                    sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_RETRY);
                }
                _ => return Err(("play.read", format!("waiting for the referral, the loan read {body}"))),
            }
        }
    }

    /// `POST /api/v1/loans/{id}/{route}`, as the applicant or as staff; `Err` unless it answers
    /// `status`.
    async fn post(
        &self,
        step: &'static str,
        route: &str,
        body: Option<Value>,
        as_applicant: bool,
        status: u16,
    ) -> Step {
        let answer = self.send(step, route, body, as_applicant).await?;
        expect(step, route, answer, status)
    }

    /// `POST /api/v1/loans/{id}/{route}`: the status and the JSON body (null when not JSON).
    async fn send(
        &self,
        step: &'static str,
        route: &str,
        body: Option<Value>,
        as_applicant: bool,
    ) -> Result<(u16, Value), (&'static str, String)> {
        let url = format!("{}/api/v1/loans/{}/{route}", self.base, self.id);
        let mut request = self.client.post(url);
        if as_applicant {
            // Replaces the client's default staff credential for this request.
            request = request.header(AUTHORIZATION, &self.applicant);
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let response = request.send().await.map_err(|e| (step, e.to_string()))?;
        let answered = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| (step, e.to_string()))?;
        Ok((answered, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }
}

fn expect(step: &'static str, route: &str, (answered, value): (u16, Value), status: u16) -> Step {
    if answered == status {
        Ok(value)
    } else {
        Err((step, format!("{route} answered {answered}: {value}")))
    }
}
