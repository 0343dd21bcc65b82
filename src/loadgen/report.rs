//! The load generator's findings: a JSON document and a one-line summary.

use std::collections::BTreeMap;

use serde::Serialize;

use super::generate::Mix;

/// What was asked for.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub url: String,
    pub n: usize,
    /// `closed` (fixed concurrency) or `open` (fixed rate).
    pub mode: &'static str,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub seed: u64,
    pub fail_share: f64,
    /// Of all applications; 0 = the rules decide every loan.
    pub referred_share: f64,
    /// The band the server refers below, as told.
    pub review_below_score: u16,
}

/// Percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// From samples in milliseconds; sorts them.
    pub fn of(samples: &mut [f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable_by(f64::total_cmp);
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Some(Self { p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), max: samples[samples.len() - 1] })
    }
}

/// CPU used by one role's processes while the loans went through.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub pids: Vec<u32>,
    pub seconds: f64,
    pub ms_per_loan: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// Assumed, not read: see `procfs`.
    pub clock_ticks_per_second: u64,
    /// From the first submission until every loan was terminal (the fetch for the check is not
    /// counted).
    pub window_seconds: f64,
    pub server: CpuUse,
    pub postgres: Option<CpuUse>,
    pub rabbitmq: Option<CpuUse>,
    /// Server + PostgreSQL + RabbitMQ: the stack, without the load generator.
    pub stack_ms_per_loan: f64,
    pub loadgen: CpuUse,
}

/// One loan that disagrees with the contract.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub id: String,
    pub fields: Vec<&'static str>,
}

/// The human workload: what the plays did and what the histories say.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HumanReport {
    /// Referred loans played.
    pub played: usize,
    /// Loans by outcome (`approved_by_underwriter`, `expired`, `withdrawn_before_referral`, ...).
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Steps that answered otherwise than the contract says.
    pub play_errors: usize,
    pub first_play_error: Option<String>,
    /// Expired requests: `InformationRequestExpired.at` - the request's `due_at`.
    pub deadline_lateness_ms: Option<Latency>,
    /// Expired requests per second of their `due_at`s' span.
    pub deadlines_due_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub config: RunConfig,
    pub mix: Mix,
    pub submitted: usize,
    pub submit_errors: usize,
    /// Terminal and notified, checked one by one.
    pub finished: usize,
    /// Waiting on a person as expected (an underwriter nobody plays, an applicant left to wait).
    pub waiting: usize,
    pub unfinished: usize,
    /// Finished loans over (last `notified_at` - first `submitted_at`), both from the server.
    pub loans_per_second: f64,
    pub e2e_seconds: f64,
    /// Wall time of the submissions, as seen by the client.
    pub submit_seconds: f64,
    /// Server times `notified_at - submitted_at`.
    pub e2e_latency_ms: Option<Latency>,
    /// Client times of `POST /api/v1/loans` (open loop: from the scheduled send time).
    pub submit_latency_ms: Option<Latency>,
    pub cpu: Cpu,
    /// Highest `VmHWM` among the server processes.
    pub server_peak_rss_mib: Option<f64>,
    pub disagreements: usize,
    /// The first few, for a look at what went wrong.
    pub disagreement_examples: Vec<Disagreement>,
    /// With `--referred-share`.
    pub human: Option<HumanReport>,
}

impl Report {
    /// Every loan submitted, finished (or waiting as expected) and as the contract says.
    pub fn passed(&self) -> bool {
        self.submit_errors == 0
            && self.unfinished == 0
            && self.disagreements == 0
            && self.finished + self.waiting == self.config.n
    }

    pub fn summary(&self) -> String {
        let ms = |l: Option<Latency>, f: fn(&Latency) -> f64| l.as_ref().map_or("-".into(), |l| format!("{:.1}", f(l)));
        let e2e = self.e2e_latency_ms;
        let submit = self.submit_latency_ms;
        let rss = self.server_peak_rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB"));
        let human = self.human.as_ref().map_or(String::new(), |h| {
            let late = h.deadline_lateness_ms;
            format!(
                "; {} played ({} play errors), deadline lateness ms p50 {} p99 {} max {}",
                h.played,
                h.play_errors,
                ms(late, |l| l.p50),
                ms(late, |l| l.p99),
                ms(late, |l| l.max)
            )
        });
        format!(
            "loadgen {}: {} loans ({} finished, {} waiting, {} unfinished, {} submit errors) in {:.2} s = {:.0} loans/s; \
             e2e ms p50 {} p90 {} p99 {} max {}; submit ms p50 {} p99 {}; \
             CPU ms/loan stack {:.3} (server {:.3}) loadgen {:.3}; server peak RSS {}; {} disagreements{}",
            if self.passed() { "OK" } else { "FAILED" },
            self.config.n,
            self.finished,
            self.waiting,
            self.unfinished,
            self.submit_errors,
            self.e2e_seconds,
            self.loans_per_second,
            ms(e2e, |l| l.p50),
            ms(e2e, |l| l.p90),
            ms(e2e, |l| l.p99),
            ms(e2e, |l| l.max),
            ms(submit, |l| l.p50),
            ms(submit, |l| l.p99),
            self.cpu.stack_ms_per_loan,
            self.cpu.server.ms_per_loan,
            self.cpu.loadgen.ms_per_loan,
            rss,
            self.disagreements,
            human,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let l = Latency::of(&mut samples).expect("samples");
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert!(Latency::of(&mut []).is_none());
        let l = Latency::of(&mut [3.0]).expect("one sample");
        assert_eq!((l.p50, l.p99), (3.0, 3.0));
    }
}
