//! The HTTP side of the load generator: submitting at a fixed concurrency or rate (with a
//! follow-up, such as a human play, started as each submission is answered), waiting on the
//! stats until every loan is terminal, then reading each loan once.
//!
//! Everything runs as futures on the caller's task (no spawned tasks, no extra threads), so on
//! a current-thread runtime the load generator uses at most one core.

use std::future::Future;
use std::time::Duration;

use futures_util::stream::{self, FuturesUnordered};
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Url};
use serde::Deserialize;
use tokio::time::{sleep, sleep_until, Instant};

use super::check::LoanBody;
use super::generate::Expected;
use super::human::EventBody;

/// How submissions are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Closed loop: this many requests in flight, a new one as soon as one answers.
    Closed(usize),
    /// Open loop: this many requests per second, whatever the answers do.
    Open(f64),
}

/// How often the stats are polled while loans are in flight.
const STATS_POLL: Duration = Duration::from_millis(200);
/// How often a loan that is terminal but not yet notified is read again.
const LOAN_POLL: Duration = Duration::from_millis(50);

/// The result of the submissions, indexed like the bodies.
pub struct Submissions {
    /// The loan id, or `None` when the submission failed.
    pub ids: Vec<Option<String>>,
    pub latencies_ms: Vec<f64>,
    pub first_error: Option<String>,
}

impl Submissions {
    pub fn errors(&self) -> usize {
        self.ids.iter().filter(|id| id.is_none()).count()
    }
}

/// The 201 of a submission.
#[derive(Deserialize)]
pub struct Created {
    pub id: String,
    /// The applicant's credential for this loan.
    #[serde(default)]
    pub access_token: Option<String>,
}

/// Submit every body once (no retry: a retried POST without an idempotency key could create a
/// loan twice). `follow_up` is called with each answered submission; the futures it returns run
/// beside the submissions (not counted in a closed loop's concurrency) and their outputs are
/// returned, in the order they finished.
pub async fn submit_all<F, Fut>(
    client: &Client,
    base: &str,
    bodies: Vec<Vec<u8>>,
    pace: Pace,
    mut follow_up: F,
) -> anyhow::Result<(Submissions, Vec<Fut::Output>)>
where
    F: FnMut(usize, &Created) -> Option<Fut>,
    Fut: Future,
{
    let endpoint = Url::parse(&format!("{base}/api/v1/loans"))?;
    let n = bodies.len();
    let mut result = Submissions { ids: vec![None; n], latencies_ms: Vec::with_capacity(n), first_error: None };
    let mut following = FuturesUnordered::new();
    let mut followed = Vec::new();
    let start = Instant::now();
    let due_at = |k: usize, rate: f64| start + Duration::from_secs_f64(k as f64 / rate);
    let mut pending = bodies.into_iter().enumerate().peekable();
    let mut in_flight = FuturesUnordered::new();
    loop {
        while let Some(&(k, _)) = pending.peek() {
            let scheduled = match pace {
                Pace::Closed(c) if in_flight.len() < c => Instant::now(),
                Pace::Open(rate) if due_at(k, rate) <= Instant::now() => due_at(k, rate),
                _ => break,
            };
            let (index, body) = pending.next().expect("peeked");
            in_flight.push(submit_one(client, endpoint.clone(), index, body, scheduled));
        }
        let wake = match (pace, pending.peek()) {
            (Pace::Open(rate), Some(&(k, _))) => Some(due_at(k, rate)),
            _ => None,
        };
        if in_flight.is_empty() && wake.is_none() && following.is_empty() {
            break;
        }
        tokio::select! {
            Some((index, latency, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                result.latencies_ms.push(latency);
                match outcome {
                    Ok(created) => {
                        following.extend(follow_up(index, &created));
                        result.ids[index] = Some(created.id);
                    }
                    Err(err) => { result.first_error.get_or_insert(err); }
                }
            }
            Some(output) = following.next(), if !following.is_empty() => followed.push(output),
            _ = sleep_until(wake.unwrap_or(start)), if wake.is_some() => {}
        }
    }
    Ok((result, followed))
}

async fn submit_one(
    client: &Client,
    endpoint: Url,
    index: usize,
    body: Vec<u8>,
    scheduled: Instant,
) -> (usize, f64, Result<Created, String>) {
    let outcome = async {
        let response = client
            .post(endpoint)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if status.as_u16() != 201 && status.as_u16() != 202 {
            let text = String::from_utf8_lossy(&bytes);
            return Err(format!("POST answered {status}: {}", text.chars().take(300).collect::<String>()));
        }
        serde_json::from_slice::<Created>(&bytes).map_err(|e| format!("POST answer without an id: {e}"))
    }
    .await;
    (index, scheduled.elapsed().as_secs_f64() * 1e3, outcome)
}

#[derive(Deserialize)]
struct Stats {
    by_status: std::collections::HashMap<String, i64>,
}

/// Loans in a terminal status on the server (all of them, not only ours).
pub async fn terminal_count(client: &Client, base: &str) -> anyhow::Result<i64> {
    let stats: Stats =
        client.get(format!("{base}/api/v1/loans/stats")).send().await?.error_for_status()?.json().await?;
    Ok(["approved", "rejected", "cancelled"].iter().filter_map(|s| stats.by_status.get(*s)).sum())
}

/// Poll the stats until at least `target` loans are terminal; `false` at the deadline.
pub async fn wait_terminal(client: &Client, base: &str, target: i64, deadline: Instant) -> bool {
    loop {
        // A failed poll (the server is busy) is simply tried again.
        if terminal_count(client, base).await.is_ok_and(|n| n >= target) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(STATS_POLL).await;
    }
}

/// Read every loan, in order, `concurrency` at a time; a loan that is terminal but not yet
/// notified is read again until the deadline. `Err` when a loan could not be read at all.
pub async fn fetch_all(
    client: &Client,
    base: &str,
    ids: &[&str],
    expected: &[&Expected],
    concurrency: usize,
    deadline: Instant,
) -> Vec<Result<LoanBody, String>> {
    stream::iter(ids.iter().zip(expected))
        .map(|(id, expected)| fetch_settled(client, base, id, expected, deadline))
        .buffered(concurrency)
        .collect()
        .await
}

async fn fetch_settled(
    client: &Client,
    base: &str,
    id: &str,
    expected: &Expected,
    deadline: Instant,
) -> Result<LoanBody, String> {
    let url = format!("{base}/api/v1/loans/{id}");
    loop {
        let loan = fetch_loan(client, &url).await;
        match &loan {
            Ok(body) if body.is_settled(expected) => return loan,
            _ if Instant::now() >= deadline => return loan,
            _ => sleep(LOAN_POLL).await,
        }
    }
}

/// Read each loan's history, `concurrency` at a time, in order.
pub async fn fetch_histories(
    client: &Client,
    base: &str,
    ids: &[&str],
    concurrency: usize,
) -> Vec<Result<Vec<EventBody>, String>> {
    stream::iter(ids)
        .map(|id| fetch_json(client, format!("{base}/api/v1/loans/{id}/events")))
        .buffered(concurrency)
        .collect()
        .await
}

async fn fetch_loan(client: &Client, url: &str) -> Result<LoanBody, String> {
    fetch_json(client, url.to_owned()).await
}

async fn fetch_json<T: serde::de::DeserializeOwned>(client: &Client, url: String) -> Result<T, String> {
    let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}"));
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("GET {url}: unexpected body: {e}"))
}
