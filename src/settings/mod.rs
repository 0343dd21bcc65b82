//! Typed configuration: the embedded `config/default.toml`, then `config/default.toml` in the
//! working directory if present, then `LOANFLOW__<SECTION>__<KEY>` environment variables;
//! then `validate()`. A bad value stops the start with a message naming the key.

use std::time::Duration;

pub use crate::domain::ReviewBand;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

#[cfg(feature = "test-faults")]
mod faults;
mod hosts;
mod human;
mod roles;
mod staff;

pub use crate::domain::Role;
#[cfg(feature = "test-faults")]
pub use faults::FaultSettings;
pub use hosts::AllowedHosts;
pub use human::{HumanSettings, TimerSettings};
pub use roles::{NodeRole, NodeRoles};
pub use staff::StaffToken;

const MAX_IDEMPOTENCY_TTL_SECONDS: u64 = 31_536_000;
const EMBEDDED_DEFAULTS: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub bureaus: BureauSettings,
    pub actors: ActorSettings,
    pub shutdown: ShutdownSettings,
    pub streams: StreamSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub node: NodeSettings,
    pub log: LogSettings,
    /// Test builds only (feature `test-faults`): a release binary has no fault hooks, and
    /// ignores `LOANFLOW__FAULTS__*`.
    #[cfg(feature = "test-faults")]
    #[serde(default)]
    pub faults: FaultSettings,
    #[serde(default)]
    pub jwt: JwtSettings,
    #[serde(default)]
    pub human: HumanSettings,
    #[serde(default)]
    pub timers: TimerSettings,
    #[serde(default)]
    pub decision: DecisionSettings,
    /// Decided once from `broker.url` when the settings are loaded.
    #[serde(skip)]
    pub mode: Mode,
}

/// How a node runs: alone on its own database, or as one node of a cluster that shares a
/// PostgreSQL database and a RabbitMQ broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// The database outbox is the only mailbox; messages go straight to this node's actors.
    #[default]
    Embedded,
    /// Committed messages travel through the broker at this `amqp://` (or `amqps://`) URL.
    Cluster { broker_url: String },
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Embedded => "embedded",
            Mode::Cluster { .. } => "cluster",
        }
    }
}

/// `0` in a thread-count setting: one per core.
pub fn threads_or_one_per_core(setting: usize) -> usize {
    match setting {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n,
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers (408 and the connection closed).
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body, from the end of its headers (408
    /// and the connection closed): a body trickled a byte at a time does not hold a worker.
    pub body_timeout_ms: u64,
    pub rate_limit_per_second: u32,
    /// Origins (`scheme://host[:port]`) besides the server's own whose pages may call the API:
    /// past the `Origin` check, and allowed by CORS. `*` = any.
    pub allowed_origins: Vec<String>,
    /// Host names (or addresses) this node answers for, with any port; empty = decided by the
    /// bind address (see [`AllowedHosts`]).
    #[serde(default)]
    allowed_hosts: Vec<String>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed.
    #[serde(default)]
    trusted_proxies: Vec<String>,
    /// `allowed_hosts` and the bind address, parsed once when the settings are loaded.
    #[serde(skip)]
    pub hosts: AllowedHosts,
    /// `trusted_proxies`, parsed once when the settings are loaded.
    #[serde(skip)]
    pub proxies: Vec<ipnet::IpNet>,
    /// How long a submission's `Idempotency-Key` is remembered (it replays the first answer);
    /// after that the key is free again and forgotten.
    #[serde(default = "default_idempotency_ttl_seconds")]
    pub idempotency_ttl_seconds: u64,
}

fn default_idempotency_ttl_seconds() -> u64 {
    86_400
}

impl HttpSettings {
    pub fn idempotency_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.idempotency_ttl_seconds).unwrap_or(i64::MAX))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub connect_timeout_ms: u64,
    /// Reads waiting for a reader thread beyond which more are refused (HTTP 503 with
    /// `Retry-After`): a flood of reads is shed instead of queued without end.
    pub read_queue_max: usize,
    pub write_batch_max: usize,
    pub group_commit_wait_us: u64,
    pub writers: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BrokerSettings {
    pub url: Option<String>,
    pub queue_type: QueueType,
    pub prefetch: u16,
    pub service_prefetch: u16,
    pub delivery_limit: u32,
    pub publish_batch: usize,
    pub publish_wait_us: u64,
    pub envelopes_per_message: usize,
    pub confirm_timeout_ms: u64,
    pub reconnect_max_ms: u64,
    /// How often a message of a kind this node does not know is left for another node (a
    /// rolling upgrade: a newer node sent it) before it is dead-lettered.
    #[serde(default = "default_unknown_kind_deferrals")]
    pub unknown_kind_deferrals: u32,
    /// A PEM file of the CA (or CAs) that signed the broker's certificate, for an `amqps://`
    /// URL; empty = the system's trusted roots.
    #[serde(default)]
    pub ca_file: String,
}

fn default_unknown_kind_deferrals() -> u32 {
    120
}

impl BrokerSettings {
    /// `ca_file`, when one is set.
    pub fn ca_file(&self) -> Option<&str> {
        Some(self.ca_file.trim()).filter(|path| !path.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    Quorum,
    Classic,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BureauSettings {
    pub credit_latency_ms: u64,
    pub appraisal_latency_ms: u64,
    pub failure_rate: f64,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActorSettings {
    pub idle_timeout_ms: u64,
    pub max_message_attempts: u32,
    pub redelivery_sweep_ms: u64,
    pub redelivery_after_ms: u64,
    pub arbiters: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShutdownSettings {
    /// From SIGTERM (or SIGINT) to exit, the whole shut-down: streams closed, requests and
    /// in-flight messages finished, the outbox flushed, the database closed.
    pub grace_ms: u64,
}

impl ShutdownSettings {
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamSettings {
    /// Open streams (SSE and WebSocket together) one client address may hold; beyond: 429.
    pub max_per_client: usize,
    /// Open streams on this node; beyond: 503. Keep it well under the process's file limit so
    /// that health checks, metrics and ordinary requests always find a socket.
    pub max_total: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminSettings {
    pub token: Option<String>,
    /// Named staff tokens, each `name:role:sha256-of-the-token-in-hex` (`loanflow token` makes
    /// one); parsed into `staff` when the settings are loaded.
    #[serde(default)]
    staff_tokens: Vec<String>,
    #[serde(skip)]
    pub staff: Vec<StaffToken>,
}

/// The human side of the decision: which loans go to an underwriter, when applicants are
/// reminded of a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DecisionSettings {
    /// Loans that pass every rule with a lower credit score are referred; 0 = never.
    pub review_below_score: ReviewBand,
    /// When an open request's reminder goes out, in percent of the time from the request to its
    /// deadline; 0 = no reminder.
    pub reminder_at_percent: u8,
}

impl Default for DecisionSettings {
    fn default() -> Self {
        Self { review_below_score: ReviewBand::DEFAULT, reminder_at_percent: 50 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeSettings {
    pub id: Option<String>,
    /// `node.roles` as listed (a comma list in the environment); parsed into `roles`.
    #[serde(rename = "roles", default)]
    roles_listed: Vec<String>,
    /// This node's roles, parsed once when the settings are loaded: every role by default.
    #[serde(skip)]
    pub roles: NodeRoles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// JSON Web Tokens from a bank's identity provider, accepted as staff credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JwtSettings {
    /// A PEM public key, or a JWKS (JSON) file; reloaded when it changes. Empty = no JWTs.
    pub key_file: String,
    /// The algorithm of a PEM key (`RS256`, `ES256`, `EdDSA`, ...); JWKS keys name their own.
    pub algorithm: String,
    /// The `iss` a token must carry.
    pub issuer: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// The claim that lists the holder's roles (`viewer`, `underwriter`, `operator`).
    pub roles_claim: String,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            key_file: String::new(),
            algorithm: "RS256".into(),
            issuer: String::new(),
            audience: String::new(),
            roles_claim: "roles".into(),
        }
    }
}

impl JwtSettings {
    pub fn enabled(&self) -> bool {
        !self.key_file.trim().is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: `{key}` {message}")]
    Invalid { key: &'static str, message: String },
}

impl Settings {
    /// Load defaults, file and environment, then validate.
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_from(Environment::with_prefix("LOANFLOW").prefix_separator("__").separator("__"))
    }

    fn load_from(env: Environment) -> Result<Self, SettingsError> {
        let mut settings: Settings = Config::builder()
            .add_source(File::from_str(EMBEDDED_DEFAULTS, FileFormat::Toml))
            .add_source(File::with_name("config/default.toml").required(false))
            .add_source(
                env.try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("http.allowed_origins")
                    .with_list_parse_key("http.allowed_hosts")
                    .with_list_parse_key("http.trusted_proxies")
                    .with_list_parse_key("admin.staff_tokens")
                    .with_list_parse_key("node.roles"),
            )
            .build()?
            .try_deserialize()?;
        settings.mode = match settings.broker.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Mode::Cluster { broker_url: url.to_owned() },
            None => Mode::Embedded,
        };
        settings.http.hosts = AllowedHosts::from_settings(&settings.http.allowed_hosts, &settings.http.host);
        settings.http.proxies = hosts::parse_proxies(&settings.http.trusted_proxies)
            .map_err(|message| SettingsError::Invalid { key: "http.trusted_proxies", message })?;
        settings.admin.staff = settings
            .admin
            .staff_tokens
            .iter()
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| StaffToken::parse(entry))
            .collect::<Result<_, _>>()
            .map_err(|message| SettingsError::Invalid { key: "admin.staff_tokens", message })?;
        settings.node.roles = NodeRoles::parse(&settings.node.roles_listed)
            .map_err(|message| SettingsError::Invalid { key: "node.roles", message })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, message: &str| Err(SettingsError::Invalid { key, message: message.to_owned() });
        if !(0.0..1.0).contains(&self.bureaus.failure_rate) {
            return invalid("bureaus.failure_rate", "must be in [0, 1)");
        }
        if self.bureaus.max_attempts == 0 {
            return invalid("bureaus.max_attempts", "must be at least 1");
        }
        if self.decision.reminder_at_percent >= 100 {
            return invalid("decision.reminder_at_percent", "must be below 100 (0 = no reminder)");
        }
        if self.shutdown.grace_ms == 0 {
            return invalid("shutdown.grace_ms", "must be at least 1");
        }
        if self.streams.max_per_client == 0 || self.streams.max_per_client > self.streams.max_total {
            return invalid("streams.max_per_client", "must be at least 1 and at most streams.max_total");
        }
        if self.actors.max_message_attempts == 0 {
            return invalid("actors.max_message_attempts", "must be at least 1");
        }
        if self.jwt.enabled() {
            if self.jwt.issuer.trim().is_empty() || self.jwt.audience.trim().is_empty() {
                return invalid("jwt.issuer", "and jwt.audience must be set with jwt.key_file");
            }
            if self.jwt.algorithm.parse::<jsonwebtoken::Algorithm>().is_err() {
                return invalid("jwt.algorithm", "must be a JWS algorithm such as RS256, ES256 or EdDSA");
            }
        }
        if self.database.url.trim().is_empty() {
            return invalid("database.url", "must be a file path or a postgres:// URL");
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if self.database.read_queue_max == 0 {
            return invalid("database.read_queue_max", "must be at least 1");
        }
        if self.database.write_batch_max == 0 {
            return invalid("database.write_batch_max", "must be at least 1");
        }
        if !(1..=MAX_IDEMPOTENCY_TTL_SECONDS).contains(&self.http.idempotency_ttl_seconds) {
            return invalid("http.idempotency_ttl_seconds", "must be from 1 to 31536000 (a year)");
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes", "must be at least 1024");
        }
        if self.http.header_timeout_ms < 100 {
            return invalid("http.header_timeout_ms", "must be at least 100");
        }
        if self.http.body_timeout_ms < 100 {
            return invalid("http.body_timeout_ms", "must be at least 100");
        }
        if self.broker.prefetch == 0 {
            return invalid("broker.prefetch", "must be at least 1");
        }
        if self.broker.service_prefetch == 0 {
            return invalid("broker.service_prefetch", "must be at least 1");
        }
        if self.broker.publish_batch == 0 {
            return invalid("broker.publish_batch", "must be at least 1");
        }
        if self.broker.envelopes_per_message == 0 {
            return invalid("broker.envelopes_per_message", "must be at least 1");
        }
        if let Mode::Cluster { broker_url: url } = &self.mode {
            if !url.starts_with("amqp://") && !url.starts_with("amqps://") {
                return invalid("broker.url", "must be an amqp:// or amqps:// URL (or unset for embedded mode)");
            }
        }
        if let Some(ca_file) = self.broker.ca_file() {
            if !std::path::Path::new(ca_file).is_file() {
                return invalid("broker.ca_file", &format!("names no readable file: {ca_file}"));
            }
        }
        if self.mode == Mode::Embedded && self.node.roles.listed() {
            return invalid(
                "node.roles",
                "is for cluster mode (set broker.url): an embedded node runs every role in one process",
            );
        }
        if matches!(self.mode, Mode::Cluster { .. }) && self.admin_token().is_none() {
            return invalid(
                "admin.token",
                "must be set in cluster mode (LOANFLOW__ADMIN__TOKEN), the same on every node: it is the operator's token",
            );
        }
        Ok(())
    }

    /// The broker URL when cluster mode is on.
    /// The admin token, when one is configured.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin.token.as_deref().filter(|t| !t.is_empty())
    }

    /// This node's id: configured, or host name plus a random suffix.
    pub fn node_id(&self) -> String {
        if let Some(id) = self.node.id.as_deref().filter(|id| !id.is_empty()) {
            return id.to_owned();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "loanflow".to_owned());
        format!("{host}-{:04x}", rand::random::<u16>())
    }
}

impl HttpSettings {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

impl BureauSettings {
    pub fn credit_latency(&self) -> Duration {
        Duration::from_millis(self.credit_latency_ms)
    }
    pub fn appraisal_latency(&self) -> Duration {
        Duration::from_millis(self.appraisal_latency_ms)
    }
}

#[cfg(test)]
mod tests;
