//! `loanflow loadgen`: the end-to-end load generator of issue 5.
//!
//! Generates N varied applications from a seed, submits them to a running loanflow at a fixed
//! concurrency (closed loop) or rate (open loop), waits until every loan is terminal and notified,
//! then reports throughput, latency, CPU per loan of the stack's processes, the server's peak RSS
//! and how many loans disagree with CONTRACT.md (which must be none).
//!
//! Its own CPU counts against the machine, so it stays lean: one HTTP client, bodies serialised
//! before the clock starts, all requests as futures of one task, one cheap stats poll at a time
//! while loans are in flight, and each loan read once at the end.

mod check;
mod drive;
mod generate;
mod procfs;
mod report;

use std::time::Duration;

use crate::domain::ReviewBand;
use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use reqwest::{Client, Url};
use tokio::time::Instant;

pub use generate::{applications, Expected, Generated, Mix};
pub use report::{Latency, Report};

use drive::Pace;
use procfs::{CpuSnapshot, Processes};
use report::{Cpu, CpuUse, Disagreement, RunConfig};

/// Loans read at a time when checking them at the end.
const FETCH_CONCURRENCY: usize = 32;
/// Disagreeing loans listed in the report.
const EXAMPLES: usize = 10;

/// Options of `loanflow loadgen`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Base URL of the loanflow node under test.
    #[arg(long, env = "LOADGEN_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Number of applications to submit.
    #[arg(long, default_value_t = 1_000)]
    pub n: usize,
    /// Closed loop: submissions in flight at once (the default mode, with 64).
    #[arg(long, conflicts_with = "rate")]
    pub concurrency: Option<usize>,
    /// Open loop: submissions per second, whatever the latency.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed of the generated applications (the same seed gives the same applications).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of applications whose address contains `#fail-appraisal` (ending `cancelled`).
    #[arg(long, default_value_t = 0.1)]
    pub fail_share: f64,
    /// Longest wait, after the last submission, for every loan to finish.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Print the report as JSON on stdout (the summary line then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// A staff token (the operator's, or a viewer's) to read the loans with; the submissions
    /// need none.
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Server processes to account CPU and RSS to (comma-separated); by default the `loanflow`
    /// process listening on the URL's port.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// The server's `decision.review_below_score`: the loans it refers wait `under_review` for an
    /// underwriter, which this workload does not play, and are checked as such. 0 (the default
    /// workload): the server decides every loan itself (run it with
    /// `LOANFLOW__DECISION__REVIEW_BELOW_SCORE=0`).
    #[arg(long, default_value_t = 0)]
    pub review_below_score: u16,
}

impl Options {
    fn pace(&self) -> anyhow::Result<Pace> {
        match (self.concurrency, self.rate) {
            (_, Some(rate)) if rate > 0.0 && rate.is_finite() => Ok(Pace::Open(rate)),
            (_, Some(rate)) => anyhow::bail!("--rate must be a positive number of loans per second, not {rate}"),
            (Some(0), None) => anyhow::bail!("--concurrency must be at least 1"),
            (concurrency, None) => Ok(Pace::Closed(concurrency.unwrap_or(64))),
        }
    }

    fn config(&self, pace: Pace) -> RunConfig {
        let (mode, concurrency, rate) = match pace {
            Pace::Closed(c) => ("closed", Some(c), None),
            Pace::Open(r) => ("open", None, Some(r)),
        };
        RunConfig {
            url: self.url.clone(),
            n: self.n,
            mode,
            concurrency,
            rate,
            seed: self.seed,
            fail_share: self.fail_share,
        }
    }
}

/// Run from the command line: print the report, and return the process's exit code
/// (0 = every loan finished as the contract says, 1 = not so, 2 = the run itself failed).
pub async fn main(options: Options) -> i32 {
    match run(&options).await {
        Ok(report) => {
            if options.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(err) => eprintln!("loanflow loadgen: report not serialisable: {err}"),
                }
                eprintln!("{}", report.summary());
            } else {
                println!("{}", report.summary());
            }
            if report.passed() {
                0
            } else {
                1
            }
        }
        Err(err) => {
            eprintln!("loanflow loadgen: {err:#}");
            2
        }
    }
}

/// Generate, submit, wait, check, and measure.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let pace = options.pace()?;
    anyhow::ensure!(options.n > 0, "--n must be at least 1");
    anyhow::ensure!((0.0..=1.0).contains(&options.fail_share), "--fail-share must be between 0 and 1");
    let base = options.url.trim_end_matches('/').to_owned();
    let port = Url::parse(&base).with_context(|| format!("--url {base}"))?.port_or_known_default();

    let band = ReviewBand::below(options.review_below_score);
    let apps = generate::applications(options.seed, options.n, options.fail_share, band);
    let mix = Mix::of(&apps);
    let (bodies, expected): (Vec<Vec<u8>>, Vec<Expected>) = apps.into_iter().map(|a| (a.body, a.expected)).unzip();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &options.token {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .context("--token is not a valid header value")?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        // Below the server's keep-alive (actix-web: 5 s): a POST sent on a connection the server
        // is closing as idle fails ("connection closed before message completed") and is not
        // retried (not idempotent): an open loop once lost 2 submissions that way.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .context("building the HTTP client")?;
    let baseline = drive::terminal_count(&client, &base)
        .await
        .with_context(|| format!("reading {base}/api/v1/loans/stats: is loanflow serving there?"))?;

    let processes = Processes::discover(&options.pids, port);
    let every_pid = processes.all();
    let cpu_before = CpuSnapshot::take(&every_pid);
    let started = Instant::now();
    let submissions = drive::submit_all(&client, &base, bodies, pace).await?;
    let submit_seconds = started.elapsed().as_secs_f64();
    let submitted = submissions.ids.iter().flatten().count();
    if let Some(err) = &submissions.first_error {
        eprintln!("loanflow loadgen: {} submissions failed; the first: {err}", submissions.errors());
    }

    let deadline = Instant::now() + Duration::from_secs(options.timeout_secs);
    let deciding = submissions
        .ids
        .iter()
        .zip(&expected)
        .filter(|(id, expected)| id.is_some() && expected.status != generate::UNDER_REVIEW)
        .count();
    drive::wait_terminal(&client, &base, baseline + deciding as i64, deadline).await;
    // Connections opened during the run (a lazily connected writer) have new PostgreSQL
    // backends: they count from zero.
    let later = Processes::discover(&processes.server, port);
    let processes = processes.merge(later);
    let every_pid = processes.all();
    let cpu_after = CpuSnapshot::take(&every_pid);
    let window_seconds = started.elapsed().as_secs_f64();
    let peak_rss = processes.server.iter().filter_map(|pid| procfs::peak_rss_bytes(*pid)).max();

    let (ids, expected): (Vec<String>, Vec<&Expected>) =
        submissions.ids.iter().zip(&expected).filter_map(|(id, e)| Some((id.clone()?, e))).unzip();
    let loans = drive::fetch_all(&client, &base, &ids, &expected, FETCH_CONCURRENCY, deadline).await;

    let verdict = Verdict::of(&ids, &loans, &expected);
    let per_loan = |seconds: f64| if submitted == 0 { 0.0 } else { seconds * 1e3 / submitted as f64 };
    let cpu_of = |pids: &[u32]| {
        let seconds = cpu_after.seconds_since(&cpu_before, pids);
        CpuUse { pids: pids.to_vec(), seconds, ms_per_loan: per_loan(seconds) }
    };
    let optional = |pids: &[u32]| (!pids.is_empty()).then(|| cpu_of(pids));
    let (server, postgres, rabbitmq) =
        (cpu_of(&processes.server), optional(&processes.postgres), optional(&processes.rabbitmq));
    let stack_seconds =
        server.seconds + [&postgres, &rabbitmq].iter().filter_map(|c| c.as_ref()).map(|c| c.seconds).sum::<f64>();
    let mut submit_latencies = submissions.latencies_ms;
    Ok(Report {
        config: options.config(pace),
        mix,
        submitted,
        submit_errors: options.n - submitted,
        finished: verdict.finished,
        unfinished: submitted - verdict.finished,
        loans_per_second: if verdict.e2e_seconds > 0.0 { verdict.finished as f64 / verdict.e2e_seconds } else { 0.0 },
        e2e_seconds: verdict.e2e_seconds,
        submit_seconds,
        e2e_latency_ms: Latency::of(&mut verdict.e2e_ms.clone()),
        submit_latency_ms: Latency::of(&mut submit_latencies),
        cpu: Cpu {
            clock_ticks_per_second: procfs::CLOCK_TICKS_PER_SECOND,
            window_seconds,
            stack_ms_per_loan: per_loan(stack_seconds),
            server,
            postgres,
            rabbitmq,
            loadgen: cpu_of(&processes.loadgen),
        },
        server_peak_rss_mib: peak_rss.map(|bytes| bytes as f64 / (1024.0 * 1024.0)),
        disagreements: verdict.disagreements.len(),
        disagreement_examples: verdict.disagreements.into_iter().take(EXAMPLES).collect(),
    })
}

/// What the loans read back say.
struct Verdict {
    finished: usize,
    /// From the first `submitted_at` to the last `notified_at`.
    e2e_seconds: f64,
    e2e_ms: Vec<f64>,
    disagreements: Vec<Disagreement>,
}

impl Verdict {
    fn of(ids: &[String], loans: &[Result<check::LoanBody, String>], expected: &[&Expected]) -> Self {
        let mut verdict =
            Verdict { finished: 0, e2e_seconds: 0.0, e2e_ms: Vec::with_capacity(ids.len()), disagreements: Vec::new() };
        let (mut first, mut last) = (None, None);
        for ((id, loan), expected) in ids.iter().zip(loans).zip(expected) {
            let loan = match loan {
                Ok(loan) => loan,
                Err(_) => {
                    verdict.disagreements.push(Disagreement { id: id.clone(), fields: vec!["unreadable"] });
                    continue;
                }
            };
            if loan.is_finished() {
                verdict.finished += 1;
            }
            if let Some((submitted, notified)) = loan.times() {
                verdict.e2e_ms.push((notified - submitted).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
                first = Some(first.map_or(submitted, |f: DateTime<FixedOffset>| f.min(submitted)));
                last = Some(last.map_or(notified, |l: DateTime<FixedOffset>| l.max(notified)));
            }
            let mut fields = check::disagreements(loan, expected);
            if loan.id != *id {
                fields.push("id");
            }
            if !fields.is_empty() {
                verdict.disagreements.push(Disagreement { id: id.clone(), fields });
            }
        }
        if let (Some(first), Some(last)) = (first, last) {
            verdict.e2e_seconds = (last - first).num_microseconds().unwrap_or(0) as f64 / 1e6;
        }
        verdict
    }
}
