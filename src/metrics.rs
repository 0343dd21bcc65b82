//! Every metric loanflow exports, in one place: names, help texts, labels and buckets.
//!
//! Conventions (after vector's instrumentation spec): the `loanflow_` prefix, base units
//! (seconds), counters end in `_total`, labels take a small fixed set of values (a route
//! *pattern*, never a raw path; a status; a kind). One [`Metrics`] per application, created
//! once and passed through `SharedHandles` and `AppState` (tests run several applications in one
//! process, so there is no global registry). Gauges about the present (live actors, mailbox
//! depth, outbox backlog) are computed when scraped; counters and histograms are recorded by
//! one-line calls where things happen.

use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, Utc};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::domain::MessageId;
use crate::saga::{LoanEvent, PEOPLE_STEPS, WAITING_STEPS};

/// A metric's name and help text.
pub struct Def {
    pub name: &'static str,
    pub help: &'static str,
}

pub const HTTP_REQUESTS: Def =
    Def { name: "loanflow_http_requests_total", help: "HTTP requests answered, by method, route pattern and status." };
pub const HTTP_DURATION: Def = Def {
    name: "loanflow_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by method and route pattern.",
};
pub const LOANS_DECIDED: Def =
    Def { name: "loanflow_loans_decided_total", help: "Loans that reached a terminal status, by that status." };
pub const STEP_DURATION: Def = Def {
    name: "loanflow_step_duration_seconds",
    help: "Time from a step's request message being emitted to its result being committed by the loan \
           (credit, appraisal, notification), or from the last result to the committed decision (decision).",
};
pub const LOAN_DURATION: Def = Def {
    name: "loanflow_loan_duration_seconds",
    help: "End to end: from a loan's submission to the applicant's notification being recorded.",
};
pub const COMPENSATIONS: Def =
    Def { name: "loanflow_compensations_total", help: "Completed steps undone (compensated), by step." };
pub const ACTOR_RESTARTS: Def =
    Def { name: "loanflow_actor_restarts_total", help: "Actors of this node restarted by their supervisor." };
pub const ACTORS_LIVE: Def = Def { name: "loanflow_actors_live", help: "Live actors of this node, by kind." };
pub const MAILBOX_DEPTH: Def = Def {
    name: "loanflow_mailbox_depth",
    help: "Messages delivered to this node's actors and not finished yet, by actor kind.",
};
pub const MESSAGES_IN_FLIGHT: Def = Def {
    name: "loanflow_messages_in_flight",
    help: "Messages handed to actors by this node's postman and not settled yet.",
};
pub const OUTBOX_BACKLOG: Def =
    Def { name: "loanflow_outbox_backlog", help: "Messages in the outbox (emitted, not yet consumed)." };
pub const BROKER_PUBLISHES: Def = Def {
    name: "loanflow_broker_publishes_total",
    help: "Messages published to the broker, by outcome of the publisher confirm (confirmed, nacked).",
};
pub const DEAD_LETTERS: Def = Def {
    name: "loanflow_dead_letters_total",
    help: "Messages given up on and kept as dead letters, by destination actor kind.",
};
pub const SERVICE_PANICS: Def = Def {
    name: "loanflow_service_call_panics_total",
    help: "Service calls (credit check, appraisal, notification) that panicked, by actor kind; each is tried again.",
};
pub const QUARANTINED: Def = Def {
    name: "loanflow_broker_quarantined_total",
    help: "Envelopes delivered again by the broker and moved to their kind's quarantine queue, by actor kind.",
};
pub const DATABASE_RETRIES: Def = Def {
    name: "loanflow_database_retries_total",
    help: "Messages a loan tried again because the database was away (a commit or a load failed).",
};
pub const NOTIFICATIONS_SENT: Def = Def {
    name: "loanflow_notifications_sent_total",
    help: "Notifications handed to the (simulated) mail provider, by outcome: delivered, or duplicate (a \
           send whose idempotency key the provider had seen, so the applicant got nothing twice).",
};
pub const NOTIFICATION_RECIPIENTS: Def = Def {
    name: "loanflow_notification_recipients_total",
    help: "Where the notifier found a send's address: handed_over (by the loan actor of this process, in \
           memory), or read (from the loan's row: a redelivery, a message from another node).",
};

pub const LOANS_WAITING: Def = Def {
    name: "loanflow_loans_waiting",
    help: "Loans waiting on each step (`waiting_on`: an automatic step, `underwriter` or `applicant`), read \
           from the database's index when scraped (the same from every node).",
};
pub const LOANS_WAITING_OLDEST: Def = Def {
    name: "loanflow_loans_waiting_oldest_seconds",
    help: "How long the loan that has waited longest on each step has waited (0: none waits there).",
};

pub const TIMERS_FIRED: Def = Def {
    name: "loanflow_timers_fired_total",
    help: "Durable timers this node fired (moved into the outbox for their loan), by kind.",
};
pub const TIMER_LATENESS: Def = Def {
    name: "loanflow_timer_lateness_seconds",
    help: "How long after its due time a timer fired, by kind (a deadline that passed while no node ran \
           counts from its due time too).",
};

pub const HUMAN_STEP_DURATION: Def = Def {
    name: "loanflow_human_step_duration_seconds",
    help: "Time a loan waited on a person, observed when it leaves that step: `underwriter` (under review) \
           or `applicant` (awaiting information).",
};
pub const HUMAN_EVENTS: Def = Def {
    name: "loanflow_human_events_total",
    help: "Committed events of the human steps, by kind: information_requested (the notice reached the \
           applicant), information_answered, information_expired, reminder_sent, review_escalated.",
};

/// The committed event types of the human steps counted in [`HUMAN_EVENTS`], with their label.
const HUMAN_EVENT_KINDS: [(&str, &str); 5] = [
    ("InformationRequestSent", "information_requested"),
    ("InformationProvided", "information_answered"),
    ("InformationRequestExpired", "information_expired"),
    ("InformationReminderSent", "reminder_sent"),
    ("ReviewEscalated", "review_escalated"),
];

/// The steps whose durations are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Credit,
    Appraisal,
    Decision,
    Notification,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Credit, Step::Appraisal, Step::Decision, Step::Notification];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Credit => "credit",
            Step::Appraisal => "appraisal",
            Step::Decision => "decision",
            Step::Notification => "notification",
        }
    }
}

const HTTP_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const PROCESS_BUCKETS: [f64; 15] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// A person's time: a minute to a week.
const HUMAN_BUCKETS: [f64; 12] =
    [1.0, 10.0, 60.0, 300.0, 900.0, 3_600.0, 14_400.0, 43_200.0, 86_400.0, 172_800.0, 345_600.0, 604_800.0];
const TERMINAL_STATUSES: [&str; 3] = ["approved", "rejected", "cancelled"];
const COMPENSATED_STEPS: [&str; 2] = ["credit_check", "appraisal"];
const PUBLISH_OUTCOMES: [&str; 2] = ["confirmed", "nacked"];
const SEND_OUTCOMES: [&str; 2] = ["delivered", "duplicate"];
const RECIPIENT_SOURCES: [&str; 2] = ["handed_over", "read"];

/// The present state of this node's actors, read when `/metrics` is scraped.
#[derive(Debug, Default, Clone)]
pub struct ActorGauges {
    /// Live actors per kind label.
    pub live: Vec<(&'static str, usize)>,
    /// Messages delivered and not finished, per kind label (summed over its actors).
    pub mailbox_depth: Vec<(&'static str, usize)>,
    /// Restarts of every actor since start.
    pub restarts_total: u64,
    /// Messages handed to actors and not settled yet.
    pub messages_in_flight: usize,
}

/// Reads the actors' gauges; registered once at start by whoever runs the actors.
pub type ActorGaugeSource = Box<dyn Fn() -> ActorGauges + Send + Sync>;

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    loans_decided: IntCounterVec,
    step_duration: HistogramVec,
    loan_duration: Histogram,
    compensations: IntCounterVec,
    actor_restarts: IntCounter,
    /// Serialises scrapes, so copying the registry's restart count into the counter stays monotonic.
    restarts_seen: Mutex<()>,
    actors_live: IntGaugeVec,
    mailbox_depth: IntGaugeVec,
    messages_in_flight: IntGauge,
    outbox_backlog: IntGauge,
    broker_publishes: IntCounterVec,
    dead_letters: IntCounterVec,
    service_panics: IntCounterVec,
    quarantined: IntCounterVec,
    database_retries: IntCounter,
    notifications_sent: IntCounterVec,
    notification_recipients: IntCounterVec,
    human_step_duration: HistogramVec,
    human_events: IntCounterVec,
    timers_fired: IntCounterVec,
    timer_lateness: HistogramVec,
    loans_waiting: IntGaugeVec,
    loans_waiting_oldest: prometheus::GaugeVec,
    /// The actor kinds' labels, each exported from the first scrape.
    actor_kinds: Vec<&'static str>,
    actor_gauges: Mutex<Option<ActorGaugeSource>>,
}

fn opts(def: &Def) -> Opts {
    Opts::new(def.name, def.help)
}

fn histogram_opts(def: &Def, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(def.name, def.help).buckets(buckets.to_vec())
}

impl Metrics {
    /// The metrics of one application whose actors are of `actor_kinds` (their labels).
    pub fn new(actor_kinds: &[&'static str]) -> Self {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| registry.register(c).expect("metric names are unique");
        let metrics = Self {
            http_requests: IntCounterVec::new(opts(&HTTP_REQUESTS), &["method", "route", "status"]).expect("valid"),
            http_duration: HistogramVec::new(histogram_opts(&HTTP_DURATION, &HTTP_BUCKETS), &["method", "route"])
                .expect("valid"),
            loans_decided: IntCounterVec::new(opts(&LOANS_DECIDED), &["status"]).expect("valid"),
            step_duration: HistogramVec::new(histogram_opts(&STEP_DURATION, &PROCESS_BUCKETS), &["step"])
                .expect("valid"),
            loan_duration: Histogram::with_opts(histogram_opts(&LOAN_DURATION, &PROCESS_BUCKETS)).expect("valid"),
            compensations: IntCounterVec::new(opts(&COMPENSATIONS), &["step"]).expect("valid"),
            actor_restarts: IntCounter::with_opts(opts(&ACTOR_RESTARTS)).expect("valid"),
            restarts_seen: Mutex::new(()),
            actors_live: IntGaugeVec::new(opts(&ACTORS_LIVE), &["kind"]).expect("valid"),
            mailbox_depth: IntGaugeVec::new(opts(&MAILBOX_DEPTH), &["kind"]).expect("valid"),
            messages_in_flight: IntGauge::with_opts(opts(&MESSAGES_IN_FLIGHT)).expect("valid"),
            outbox_backlog: IntGauge::with_opts(opts(&OUTBOX_BACKLOG)).expect("valid"),
            broker_publishes: IntCounterVec::new(opts(&BROKER_PUBLISHES), &["outcome"]).expect("valid"),
            dead_letters: IntCounterVec::new(opts(&DEAD_LETTERS), &["destination"]).expect("valid"),
            service_panics: IntCounterVec::new(opts(&SERVICE_PANICS), &["kind"]).expect("valid"),
            quarantined: IntCounterVec::new(opts(&QUARANTINED), &["kind"]).expect("valid"),
            database_retries: IntCounter::with_opts(opts(&DATABASE_RETRIES)).expect("valid"),
            notifications_sent: IntCounterVec::new(opts(&NOTIFICATIONS_SENT), &["outcome"]).expect("valid"),
            notification_recipients: IntCounterVec::new(opts(&NOTIFICATION_RECIPIENTS), &["source"]).expect("valid"),
            human_step_duration: HistogramVec::new(histogram_opts(&HUMAN_STEP_DURATION, &HUMAN_BUCKETS), &["step"])
                .expect("valid"),
            human_events: IntCounterVec::new(opts(&HUMAN_EVENTS), &["kind"]).expect("valid"),
            timers_fired: IntCounterVec::new(opts(&TIMERS_FIRED), &["kind"]).expect("valid"),
            timer_lateness: HistogramVec::new(histogram_opts(&TIMER_LATENESS, &PROCESS_BUCKETS), &["kind"])
                .expect("valid"),
            loans_waiting: IntGaugeVec::new(opts(&LOANS_WAITING), &["step"]).expect("valid"),
            loans_waiting_oldest: prometheus::GaugeVec::new(opts(&LOANS_WAITING_OLDEST), &["step"]).expect("valid"),
            registry: registry.clone(),
            actor_kinds: actor_kinds.to_vec(),
            actor_gauges: Mutex::new(None),
        };
        reg(Box::new(metrics.http_requests.clone()));
        reg(Box::new(metrics.http_duration.clone()));
        reg(Box::new(metrics.loans_decided.clone()));
        reg(Box::new(metrics.step_duration.clone()));
        reg(Box::new(metrics.loan_duration.clone()));
        reg(Box::new(metrics.compensations.clone()));
        reg(Box::new(metrics.actor_restarts.clone()));
        reg(Box::new(metrics.actors_live.clone()));
        reg(Box::new(metrics.mailbox_depth.clone()));
        reg(Box::new(metrics.messages_in_flight.clone()));
        reg(Box::new(metrics.outbox_backlog.clone()));
        reg(Box::new(metrics.broker_publishes.clone()));
        reg(Box::new(metrics.dead_letters.clone()));
        reg(Box::new(metrics.service_panics.clone()));
        reg(Box::new(metrics.quarantined.clone()));
        reg(Box::new(metrics.database_retries.clone()));
        reg(Box::new(metrics.notifications_sent.clone()));
        reg(Box::new(metrics.notification_recipients.clone()));
        reg(Box::new(metrics.human_step_duration.clone()));
        reg(Box::new(metrics.human_events.clone()));
        reg(Box::new(metrics.timers_fired.clone()));
        reg(Box::new(metrics.timer_lateness.clone()));
        reg(Box::new(metrics.loans_waiting.clone()));
        reg(Box::new(metrics.loans_waiting_oldest.clone()));
        #[cfg(target_os = "linux")]
        reg(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        metrics.zero_known_series();
        metrics
    }

    /// Every known label value shows up from the first scrape, at 0.
    fn zero_known_series(&self) {
        for status in TERMINAL_STATUSES {
            self.loans_decided.with_label_values(&[status]);
        }
        for step in Step::ALL {
            self.step_duration.with_label_values(&[step.as_str()]);
        }
        for step in COMPENSATED_STEPS {
            self.compensations.with_label_values(&[step]);
        }
        for outcome in SEND_OUTCOMES {
            self.notifications_sent.with_label_values(&[outcome]);
        }
        for source in RECIPIENT_SOURCES {
            self.notification_recipients.with_label_values(&[source]);
        }
        for outcome in PUBLISH_OUTCOMES {
            self.broker_publishes.with_label_values(&[outcome]);
        }
        for step in PEOPLE_STEPS {
            self.human_step_duration.with_label_values(&[step]);
        }
        for (_, kind) in HUMAN_EVENT_KINDS {
            self.human_events.with_label_values(&[kind]);
        }
        for step in WAITING_STEPS {
            self.loans_waiting.with_label_values(&[step]);
            self.loans_waiting_oldest.with_label_values(&[step]);
        }
        for kind in &self.actor_kinds {
            self.dead_letters.with_label_values(&[kind]);
            self.service_panics.with_label_values(&[kind]);
            self.quarantined.with_label_values(&[kind]);
        }
    }

    /// Where the actors' gauges come from at each scrape (set at start; a later call replaces it).
    pub fn read_actor_gauges_from(&self, source: ActorGaugeSource) {
        *self.actor_gauges.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// One answered HTTP request; `route` is the matched pattern (or a fixed word when none).
    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests.with_label_values(&[method, route, &status.to_string()]).inc();
        self.http_duration.with_label_values(&[method, route]).observe(seconds);
    }

    /// A loan committed the `events` of handling message `handled` (sent in answer to
    /// `request`, if any): count what became terminal or was compensated, and time the steps
    /// whose results it recorded. Step times start at the emission of the request message (its
    /// id is a UUID v7, so it carries its emission time, in ms).
    pub fn observe_loan_commit(
        &self,
        handled: MessageId,
        request: Option<MessageId>,
        events: &[LoanEvent],
        submitted_at: NaiveDateTime,
    ) {
        let now = Utc::now();
        let request_age = || request.map(|id| seconds_since(id, now));
        for event in events {
            let step = match event {
                LoanEvent::CreditChecked { .. } | LoanEvent::CreditCheckFailed { .. } => {
                    Some((Step::Credit, request_age()))
                }
                LoanEvent::PropertyAppraised { .. } | LoanEvent::AppraisalFailed { .. } => {
                    Some((Step::Appraisal, request_age()))
                }
                LoanEvent::LoanApproved { .. } | LoanEvent::LoanRejected { .. } => {
                    Some((Step::Decision, Some(seconds_since(handled, now))))
                }
                LoanEvent::ApplicantNotified { .. } => Some((Step::Notification, request_age())),
                _ => None,
            };
            if let Some((step, Some(seconds))) = step {
                self.step_duration.with_label_values(&[step.as_str()]).observe(seconds);
            }
        }
        self.count_committed(events, submitted_at);
    }

    /// A person's input committed the `events` (no message was handled, so no step is timed):
    /// count what became terminal, was compensated, or belongs to the human steps.
    pub fn observe_input_commit(&self, events: &[LoanEvent], submitted_at: NaiveDateTime) {
        self.count_committed(events, submitted_at);
    }

    fn count_committed(&self, events: &[LoanEvent], submitted_at: NaiveDateTime) {
        for event in events {
            let kind = event.type_name();
            if let Some((_, label)) = HUMAN_EVENT_KINDS.iter().find(|(name, _)| *name == kind) {
                self.human_events.with_label_values(&[label]).inc();
            }
            match event {
                LoanEvent::LoanApproved { .. } => self.loans_decided.with_label_values(&["approved"]).inc(),
                LoanEvent::LoanRejected { .. } => self.loans_decided.with_label_values(&["rejected"]).inc(),
                LoanEvent::LoanCancelled { .. } => self.loans_decided.with_label_values(&["cancelled"]).inc(),
                LoanEvent::CreditCheckReleased {} => self.compensations.with_label_values(&["credit_check"]).inc(),
                LoanEvent::AppraisalVoided {} => self.compensations.with_label_values(&["appraisal"]).inc(),
                LoanEvent::ApplicantNotified { .. } => {
                    let submitted = DateTime::<Utc>::from_naive_utc_and_offset(submitted_at, Utc);
                    self.loan_duration.observe(non_negative_seconds(Utc::now() - submitted));
                }
                _ => {}
            }
        }
    }

    /// A message for an actor of kind `destination` (its label) was given up on and stored as a
    /// dead letter.
    pub fn dead_lettered(&self, destination: &str) {
        self.dead_letters.with_label_values(&[destination]).inc();
    }

    /// A service call of an actor of kind `kind` (its label) panicked.
    pub fn service_call_panicked(&self, kind: &str) {
        self.service_panics.with_label_values(&[kind]).inc();
    }

    /// `envelopes` delivered again for actors of kind `kind` went to its quarantine (cluster mode).
    pub fn quarantined(&self, kind: &str, envelopes: usize) {
        self.quarantined.with_label_values(&[kind]).inc_by(envelopes as u64);
    }

    /// A loan left `step` (a person's: `underwriter` or `applicant`; others are not measured
    /// here) after waiting on it since `since`.
    pub fn left_step(&self, step: &str, since: NaiveDateTime) {
        if PEOPLE_STEPS.contains(&step) {
            let waited = non_negative_seconds(Utc::now().naive_utc() - since);
            self.human_step_duration.with_label_values(&[step]).observe(waited);
        }
    }

    /// A durable timer of `kind` fired `late_seconds` after its due time.
    pub fn timer_fired(&self, kind: &str, late_seconds: f64) {
        self.timers_fired.with_label_values(&[kind]).inc();
        self.timer_lateness.with_label_values(&[kind]).observe(late_seconds);
    }

    /// A loan will try a message again: the database was away.
    pub fn database_retry(&self) {
        self.database_retries.inc();
    }

    /// The mail provider took a notification: `delivered`, or `duplicate` (de-duplicated on its
    /// idempotency key).
    pub fn notification_sent(&self, outcome: &'static str) {
        self.notifications_sent.with_label_values(&[outcome]).inc();
    }

    /// The notifier found a send's address: `handed_over` in memory, or `read` from the row.
    pub fn recipient_found(&self, source: &'static str) {
        self.notification_recipients.with_label_values(&[source]).inc();
    }

    /// The broker confirmed a publish (cluster mode).
    pub fn publish_confirmed(&self) {
        self.broker_publishes.with_label_values(&["confirmed"]).inc();
    }

    /// The broker refused (nacked) a publish (cluster mode).
    pub fn publish_nacked(&self) {
        self.broker_publishes.with_label_values(&["nacked"]).inc();
    }

    /// Where the loans wait now: per step, how many and since when the oldest
    /// ([`crate::persistence::queries::waiting_by_step`], read by the caller at each scrape).
    pub fn set_loans_waiting(&self, by_step: &[(String, i64, Option<NaiveDateTime>)], now: NaiveDateTime) {
        for step in WAITING_STEPS {
            let (n, oldest) =
                by_step.iter().find(|(name, ..)| name == step).map_or((0, None), |(_, n, oldest)| (*n, *oldest));
            self.loans_waiting.with_label_values(&[step]).set(n);
            let age = oldest.map_or(0.0, |since| non_negative_seconds(now - since));
            self.loans_waiting_oldest.with_label_values(&[step]).set(age);
        }
    }

    /// The Prometheus text exposition, with the gauges about the present brought up to date.
    /// `outbox_backlog` is read by the caller (a database count, off the async threads).
    pub fn render(&self, outbox_backlog: i64) -> Result<String, String> {
        let gauges = match &*self.actor_gauges.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(source) => source(),
            None => ActorGauges::default(),
        };
        {
            let _serialised = self.restarts_seen.lock().unwrap_or_else(|e| e.into_inner());
            let seen = self.actor_restarts.get();
            if gauges.restarts_total > seen {
                self.actor_restarts.inc_by(gauges.restarts_total - seen);
            }
        }
        for kind in &self.actor_kinds {
            self.actors_live.with_label_values(&[kind]).set(0);
            self.mailbox_depth.with_label_values(&[kind]).set(0);
        }
        for (kind, n) in gauges.live {
            self.actors_live.with_label_values(&[kind]).set(n as i64);
        }
        for (kind, depth) in gauges.mailbox_depth {
            self.mailbox_depth.with_label_values(&[kind]).set(depth as i64);
        }
        self.messages_in_flight.set(gauges.messages_in_flight as i64);
        self.outbox_backlog.set(outbox_backlog);
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer).map_err(|e| e.to_string())?;
        String::from_utf8(buffer).map_err(|e| e.to_string())
    }
}

/// Seconds since a v7 id was made (0 for an id without a timestamp).
fn seconds_since(id: MessageId, now: DateTime<Utc>) -> f64 {
    let Some(timestamp) = id.as_uuid().get_timestamp() else { return 0.0 };
    let (secs, nanos) = timestamp.to_unix();
    let emitted = DateTime::<Utc>::from_timestamp(secs as i64, nanos).unwrap_or(now);
    non_negative_seconds(now - emitted)
}

fn non_negative_seconds(d: chrono::TimeDelta) -> f64 {
    (d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [&str; 4] = ["loan", "credit", "appraisal", "notifier"];

    fn scrape(metrics: &Metrics) -> String {
        metrics.render(0).unwrap()
    }

    /// Every series with known label values (HTTP series appear with their first request).
    #[test]
    fn every_known_series_is_exported_from_the_start() {
        let text = scrape(&Metrics::new(&KINDS));
        for name in [
            LOANS_DECIDED.name,
            COMPENSATIONS.name,
            ACTOR_RESTARTS.name,
            BROKER_PUBLISHES.name,
            DEAD_LETTERS.name,
            DATABASE_RETRIES.name,
        ] {
            assert!(text.contains(&format!("# TYPE {name} counter")), "{name} missing:\n{text}");
        }
        assert!(text.contains("loanflow_broker_publishes_total{outcome=\"nacked\"} 0"), "{text}");
        assert!(text.contains("loanflow_actors_live{kind=\"loan\"} 0"), "{text}");
        assert!(text.contains("loanflow_step_duration_seconds_count{step=\"decision\"} 0"), "{text}");
    }

    #[test]
    fn a_notification_commit_times_the_step_and_the_whole_loan() {
        let metrics = Metrics::new(&KINDS);
        let (request, reply) = (MessageId::generate(), MessageId::generate());
        let now = Utc::now().naive_utc();
        let notified = LoanEvent::ApplicantNotified { channel: "email".into(), status: "approved".into() };
        metrics.observe_loan_commit(reply, Some(request), &[notified], now - chrono::Duration::seconds(3));
        let text = scrape(&metrics);
        assert!(text.contains("loanflow_step_duration_seconds_count{step=\"notification\"} 1"), "{text}");
        assert!(text.contains("loanflow_loan_duration_seconds_count 1"), "{text}");
        assert!(text.contains("loanflow_loan_duration_seconds_bucket{le=\"2.5\"} 0"), "{text}");
    }

    #[test]
    fn the_time_on_a_persons_step_is_observed_when_the_loan_leaves_it() {
        let metrics = Metrics::new(&KINDS);
        let since = Utc::now().naive_utc() - chrono::Duration::seconds(120);
        metrics.left_step("underwriter", since);
        metrics.left_step("credit_check", since);
        let text = scrape(&metrics);
        assert!(text.contains("loanflow_human_step_duration_seconds_count{step=\"underwriter\"} 1"), "{text}");
        assert!(
            text.contains("loanflow_human_step_duration_seconds_bucket{step=\"underwriter\",le=\"60\"} 0"),
            "{text}"
        );
        assert!(text.contains("loanflow_human_step_duration_seconds_count{step=\"applicant\"} 0"), "{text}");
        assert!(!text.contains("step=\"credit_check\",le="), "automatic steps are not measured here:\n{text}");
        assert!(text.contains("loanflow_human_events_total{kind=\"review_escalated\"} 0"), "{text}");
    }

    #[test]
    fn the_loans_waiting_per_step_are_exported_for_every_step() {
        let metrics = Metrics::new(&KINDS);
        let now = Utc::now().naive_utc();
        let rows = vec![("applicant".to_owned(), 4, Some(now - chrono::Duration::seconds(30)))];
        metrics.set_loans_waiting(&rows, now);
        let text = scrape(&metrics);
        assert!(text.contains("loanflow_loans_waiting{step=\"applicant\"} 4"), "{text}");
        assert!(text.contains("loanflow_loans_waiting{step=\"underwriter\"} 0"), "{text}");
        assert!(text.contains("loanflow_loans_waiting_oldest_seconds{step=\"applicant\"} 30"), "{text}");
    }
}
