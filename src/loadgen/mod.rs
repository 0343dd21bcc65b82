//! `loanflow loadgen`: the end-to-end load generator of issue 5.
//!
//! Generates N varied applications from a seed, submits them to a running loanflow at a fixed
//! concurrency (closed loop) or rate (open loop), waits until every loan is terminal and notified,
//! then reports throughput, latency, CPU per loan of the stack's processes, the server's peak RSS
//! and how many loans disagree with CONTRACT.md (which must be none).
//!
//! The human workload (`--referred-share`) has a share of the loans referred to an underwriter
//! and plays underwriter and applicant on each (`human`), as each submission is answered; each
//! played loan's history is read at the end and held against its script.
//!
//! Its own CPU counts against the machine, so it stays lean: one HTTP client, bodies serialised
//! before the clock starts, all requests as futures of one task, one cheap stats poll at a time
//! while loans are in flight, and each loan read once at the end.

mod check;
mod drive;
mod generate;
mod human;
mod procfs;
mod report;
mod verdict;

use std::time::Duration;

use crate::domain::ReviewBand;
use anyhow::Context;
use reqwest::{Client, Url};
use tokio::time::Instant;

pub use generate::{applications, Expected, Generated, Mix, Shares};
pub use human::PlayKind;
pub use report::{Latency, Report};

use drive::Pace;
use human::{Director, Play, PlayOutcome};
use procfs::{CpuSnapshot, Processes};
use report::{Cpu, CpuUse, RunConfig};
use verdict::Verdict;

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
    /// The server's `decision.review_below_score`. Without `--referred-share`, the loans it
    /// refers wait `under_review` and are checked as such. 0 (the default workload): the server
    /// decides every loan itself (run it with `LOANFLOW__DECISION__REVIEW_BELOW_SCORE=0`).
    #[arg(long, default_value_t = 0)]
    pub review_below_score: u16,
    /// The human workload: this share of the applications pass every rule with a score in the
    /// band (620 to `--review-below-score`), and the load generator plays underwriter (with
    /// `--token`, an underwriter's or the operator's) and applicant on each, along a script
    /// from `--plays` chosen from the seed. 0 = none (the default workload).
    #[arg(long, default_value_t = 0.0)]
    pub referred_share: f64,
    /// The scripts the human workload chooses among (comma-separated); by default every one that
    /// ends the loan: approve, reject, ask-answer, expire, withdraw.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub plays: Vec<PlayKind>,
    /// The deadline of the `expire` script's request (by default 1 to 3 s, from the seed).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(human::LONGEST_DEADLINE_SECONDS)))]
    pub expire_in_secs: Option<u32>,
    /// The played loans whose histories are read and checked: the first this many (by default
    /// all). Every played loan's steps and final state are checked in any case.
    #[arg(long, default_value_t = usize::MAX, hide_default_value = true)]
    pub histories: usize,
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

    fn is_human(&self) -> bool {
        self.referred_share > 0.0
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.n > 0, "--n must be at least 1");
        anyhow::ensure!((0.0..=1.0).contains(&self.fail_share), "--fail-share must be between 0 and 1");
        anyhow::ensure!((0.0..=1.0).contains(&self.referred_share), "--referred-share must be between 0 and 1");
        if self.is_human() {
            anyhow::ensure!(
                self.review_below_score > crate::domain::MIN_CREDIT_SCORE,
                "--referred-share needs the server's --review-below-score, above {} (the server's default is 660)",
                crate::domain::MIN_CREDIT_SCORE
            );
            anyhow::ensure!(self.token.is_some(), "--referred-share needs --token: an underwriter's or the operator's");
        }
        Ok(())
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
            referred_share: self.referred_share,
            review_below_score: self.review_below_score,
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

/// The applications, what the contract says becomes of each, and the plays of the referred ones.
struct Workload {
    bodies: Vec<Vec<u8>>,
    expected: Vec<Expected>,
    plays: Vec<Option<Play>>,
    mix: Mix,
}

impl Workload {
    fn prepare(options: &Options) -> Self {
        let band = ReviewBand::below(options.review_below_score);
        let shares = Shares { referred: options.referred_share, fail: options.fail_share };
        let apps = generate::applications(options.seed, options.n, shares, band);
        let mix = Mix::of(&apps);
        let (bodies, mut expected): (Vec<Vec<u8>>, Vec<Expected>) =
            apps.into_iter().map(|a| (a.body, a.expected)).unzip();
        let mut director = Director::new(options.seed, &options.plays, options.expire_in_secs);
        let plays = expected
            .iter_mut()
            .map(|e| {
                let referred = options.is_human() && e.status == generate::UNDER_REVIEW;
                referred.then(|| {
                    let play = director.choose();
                    *e = human::expected(e, play);
                    play
                })
            })
            .collect();
        Workload { bodies, expected, plays, mix }
    }
}

fn client(options: &Options) -> anyhow::Result<Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &options.token {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .context("--token is not a valid header value")?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        // Below the server's keep-alive (actix-web: 5 s): a POST sent on a connection the server
        // is closing as idle fails ("connection closed before message completed") and is not
        // retried (not idempotent): an open loop once lost 2 submissions that way.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .context("building the HTTP client")
}

/// Generate, submit (and play), wait, check, and measure.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let pace = options.pace()?;
    options.validate()?;
    let base = options.url.trim_end_matches('/').to_owned();
    let port = Url::parse(&base).with_context(|| format!("--url {base}"))?.port_or_known_default();

    let Workload { bodies, expected, plays, mix } = Workload::prepare(options);
    let client = client(options)?;
    let baseline = drive::terminal_count(&client, &base)
        .await
        .with_context(|| format!("reading {base}/api/v1/loans/stats: is loanflow serving there?"))?;

    let processes = Processes::discover(&options.pids, port);
    let every_pid = processes.all();
    let cpu_before = CpuSnapshot::take(&every_pid);
    let started = Instant::now();
    let play_deadline = started + Duration::from_secs(options.timeout_secs);
    let (submissions, outcomes) = drive::submit_all(&client, &base, bodies, pace, |index, created| {
        let play = plays[index]?;
        let token = created.access_token.clone()?;
        let (client, base, id) = (&client, base.as_str(), created.id.clone());
        Some(async move { human::play(client, base, index, &id, &token, play, play_deadline).await })
    })
    .await?;
    let submit_seconds = started.elapsed().as_secs_f64();
    let (indices, ids): (Vec<usize>, Vec<&str>) =
        submissions.ids.iter().enumerate().filter_map(|(i, id)| Some((i, id.as_deref()?))).unzip();
    if let Some(err) = &submissions.first_error {
        eprintln!("loanflow loadgen: {} submissions failed; the first: {err}", submissions.errors());
    }

    let deadline = Instant::now() + Duration::from_secs(options.timeout_secs);
    let ending = indices.iter().filter(|&&i| expected[i].is_terminal()).count();
    drive::wait_terminal(&client, &base, baseline + ending as i64, deadline).await;
    // Connections opened during the run (a lazily connected writer) have new PostgreSQL
    // backends: they count from zero.
    let later = Processes::discover(&processes.server, port);
    let processes = processes.merge(later);
    let every_pid = processes.all();
    let cpu_after = CpuSnapshot::take(&every_pid);
    let window_seconds = started.elapsed().as_secs_f64();
    let peak_rss = processes.server.iter().filter_map(|pid| procfs::peak_rss_bytes(*pid)).max();

    let ours: Vec<&Expected> = indices.iter().map(|&i| &expected[i]).collect();
    let reads = drive::fetch_all(&client, &base, &ids, &ours, FETCH_CONCURRENCY, deadline).await;
    let played: Vec<(usize, &str)> =
        indices.iter().zip(&ids).filter(|(i, _)| plays[**i].is_some()).map(|(i, id)| (*i, *id)).collect();
    let played_ids: Vec<&str> = played.iter().take(options.histories).map(|(_, id)| *id).collect();
    let histories = drive::fetch_histories(&client, &base, &played_ids, FETCH_CONCURRENCY).await;
    let mut by_index: Vec<Option<PlayOutcome>> = (0..options.n).map(|_| None).collect();
    for outcome in outcomes {
        let index = outcome.index;
        by_index[index] = Some(outcome);
    }
    let mut history_of: Vec<Option<&Result<Vec<human::EventBody>, String>>> = vec![None; options.n];
    for ((index, _), history) in played.iter().zip(&histories) {
        history_of[*index] = Some(history);
    }
    let loans: Vec<verdict::Loan<'_>> = indices
        .iter()
        .zip(&ids)
        .zip(&reads)
        .map(|((&i, &id), read)| verdict::Loan {
            id,
            expected: &expected[i],
            read,
            played: plays[i].map(|play| verdict::Played {
                play,
                outcome: by_index[i].as_ref(),
                history: history_of[i],
            }),
        })
        .collect();
    let verdict = Verdict::of(&loans, options.is_human());

    let submitted = ids.len();
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
        waiting: verdict.waiting,
        unfinished: submitted - verdict.finished - verdict.waiting,
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
        human: verdict.human,
    })
}
