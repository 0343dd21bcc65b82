//! Loading the configuration: defaults, environment overrides, and every value refused with its key.

use super::*;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

fn load_with(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::load_from(Environment::with_prefix("LOANFLOW").prefix_separator("__").separator("__").source(Some(map)))
}

#[test]
fn defaults_are_embedded_mode_on_sqlite() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.database.url, "data/loanflow.db");
    assert_eq!(s.mode, Mode::Embedded);
    assert!(s.admin_token().is_none());
    assert_eq!(s.http.rate_limit_per_second, 0);
}

#[test]
fn environment_overrides_each_key() {
    let s = load_with(&[
        ("LOANFLOW__HTTP__PORT", "0"),
        ("LOANFLOW__BUREAUS__CREDIT_LATENCY_MS", "50"),
        ("LOANFLOW__BUREAUS__FAILURE_RATE", "0.25"),
        ("LOANFLOW__ADMIN__TOKEN", "s3cret"),
        ("LOANFLOW__NODE__ID", "node-a"),
    ])
    .unwrap();
    assert_eq!(s.http.port, 0);
    assert_eq!(s.bureaus.credit_latency_ms, 50);
    assert_eq!(s.bureaus.failure_rate, 0.25);
    assert_eq!(s.admin_token(), Some("s3cret"));
    assert_eq!(s.node_id(), "node-a");
}

#[test]
fn a_bad_value_names_its_key() {
    let err = load_with(&[("LOANFLOW__HTTP__PORT", "eighty")]).unwrap_err().to_string();
    assert!(err.contains("port"), "{err}");
    let err = load_with(&[("LOANFLOW__BUREAUS__FAILURE_RATE", "1.5")]).unwrap_err().to_string();
    assert!(err.contains("bureaus.failure_rate"), "{err}");
    let err = load_with(&[("LOANFLOW__BROKER__URL", "http://x")]).unwrap_err().to_string();
    assert!(err.contains("broker.url"), "{err}");
}

#[test]
fn the_read_queue_is_bounded_and_never_empty() {
    assert_eq!(load_with(&[]).unwrap().database.read_queue_max, 4096);
    let s = load_with(&[("LOANFLOW__DATABASE__READ_QUEUE_MAX", "2")]).unwrap();
    assert_eq!(s.database.read_queue_max, 2);
    let err = load_with(&[("LOANFLOW__DATABASE__READ_QUEUE_MAX", "0")]).unwrap_err().to_string();
    assert!(err.contains("database.read_queue_max"), "{err}");
}

#[test]
fn a_broker_url_makes_the_node_part_of_a_cluster_which_needs_an_operator_token() {
    let url = ("LOANFLOW__BROKER__URL", " amqp://guest:guest@127.0.0.1:5672/%2f ");
    let err = load_with(&[url]).unwrap_err().to_string();
    assert!(err.contains("admin.token") && err.contains("cluster mode"), "{err}");
    let s = load_with(&[url, ("LOANFLOW__ADMIN__TOKEN", "t")]).unwrap();
    assert_eq!(s.mode, Mode::Cluster { broker_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into() });
    assert_eq!(load_with(&[("LOANFLOW__BROKER__URL", "  ")]).unwrap().mode, Mode::Embedded);
}

#[test]
fn the_bind_address_decides_the_hosts_answered_unless_they_are_listed() {
    let loopback = load_with(&[]).unwrap().http.hosts;
    assert!(loopback.allow("127.0.0.1:8080") && loopback.allow("localhost") && loopback.allow("[::1]:80"));
    assert!(loopback.allow("LOCALHOST:1"));
    assert!(!loopback.allow("evil.example") && !loopback.allow("evil.example:8080"));
    assert!(!loopback.allow("127.0.0.1.evil.example"));
    let wildcard = load_with(&[("LOANFLOW__HTTP__HOST", "0.0.0.0")]).unwrap().http.hosts;
    assert_eq!(wildcard, AllowedHosts::Any);
    let listed = load_with(&[
        ("LOANFLOW__HTTP__HOST", "0.0.0.0"),
        ("LOANFLOW__HTTP__ALLOWED_HOSTS", "loans.example, Api.Example"),
    ])
    .unwrap()
    .http
    .hosts;
    assert!(listed.allow("loans.example:443") && listed.allow("api.example"));
    assert!(!listed.allow("127.0.0.1:8080"));
}

#[test]
fn trusted_proxies_are_addresses_or_ranges() {
    let s = load_with(&[("LOANFLOW__HTTP__TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7")]).unwrap();
    let proxies: Vec<String> = s.http.proxies.iter().map(ToString::to_string).collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.7/32"]);
    let err = load_with(&[("LOANFLOW__HTTP__TRUSTED_PROXIES", "proxy.example")]).unwrap_err().to_string();
    assert!(err.contains("http.trusted_proxies"), "{err}");
}

#[test]
fn staff_tokens_are_named_hashes_with_a_role() {
    let digest = "ab".repeat(32);
    let entries = format!("alice:underwriter:{digest}, dash:viewer:{digest}");
    let s = load_with(&[("LOANFLOW__ADMIN__STAFF_TOKENS", &entries)]).unwrap();
    let roles: Vec<(&str, Role)> = s.admin.staff.iter().map(|t| (t.name.as_str(), t.role)).collect();
    assert_eq!(roles, [("alice", Role::Underwriter), ("dash", Role::Viewer)]);
    assert_eq!(s.admin.staff[0].sha256, [0xab; 32]);
    for bad in ["alice:underwriter", "alice:applicant:{digest}", "al ice:viewer:{digest}", "bob:viewer:abc"] {
        let bad = bad.replace("{digest}", &digest);
        let err = load_with(&[("LOANFLOW__ADMIN__STAFF_TOKENS", &bad)]).unwrap_err().to_string();
        assert!(err.contains("admin.staff_tokens"), "{bad}: {err}");
    }
}

#[test]
fn a_generated_staff_token_matches_its_entry() {
    let (token, entry) = StaffToken::generate("alice", "viewer").unwrap();
    let parsed = StaffToken::parse(&entry).unwrap();
    assert_eq!((parsed.name.as_str(), parsed.role), ("alice", Role::Viewer));
    assert_eq!(parsed.sha256, <[u8; 32]>::from(Sha256::digest(token.as_bytes())));
    assert!(!entry.contains(&token), "the entry never holds the token itself");
    assert!(StaffToken::generate("alice", "applicant").is_err());
    assert!(StaffToken::generate("al ice", "viewer").is_err());
}

#[cfg(feature = "test-faults")]
#[test]
fn fault_hooks_are_off_by_default_and_set_per_variable() {
    let s = load_with(&[]).unwrap();
    assert!(s.faults.crash_marker.is_empty() && s.faults.service_panic_marker.is_empty());
    assert!(!s.faults.publish_twice);
    let s = load_with(&[
        ("LOANFLOW__FAULTS__CRASH_MARKER", "#crash"),
        ("LOANFLOW__FAULTS__SERVICE_PANIC_MARKER", "#svc"),
        ("LOANFLOW__FAULTS__SERVICE_PANICS", "2"),
        ("LOANFLOW__FAULTS__PUBLISH_TWICE", "true"),
    ])
    .unwrap();
    assert_eq!(s.faults.crash_marker, "#crash");
    assert_eq!((s.faults.service_panic_marker.as_str(), s.faults.service_panics), ("#svc", 2));
    assert!(s.faults.publish_twice);
}

#[test]
fn slow_client_timeouts_have_defaults_and_a_floor() {
    let s = load_with(&[]).unwrap();
    assert_eq!((s.http.header_timeout_ms, s.http.body_timeout_ms), (5_000, 10_000));
    let s = load_with(&[("LOANFLOW__HTTP__HEADER_TIMEOUT_MS", "2000"), ("LOANFLOW__HTTP__BODY_TIMEOUT_MS", "3000")])
        .unwrap();
    assert_eq!((s.http.header_timeout(), s.http.body_timeout()), (Duration::from_secs(2), Duration::from_secs(3)));
    for key in ["header_timeout_ms", "body_timeout_ms"] {
        let var = format!("LOANFLOW__HTTP__{}", key.to_uppercase());
        let err = load_with(&[(&var, "0")]).unwrap_err().to_string();
        assert!(err.contains(&format!("http.{key}")), "{err}");
    }
}

#[test]
fn idempotency_keys_expire_after_a_day_unless_configured() {
    assert_eq!(load_with(&[]).unwrap().http.idempotency_ttl(), chrono::Duration::hours(24));
    let s = load_with(&[("LOANFLOW__HTTP__IDEMPOTENCY_TTL_SECONDS", "60")]).unwrap();
    assert_eq!(s.http.idempotency_ttl_seconds, 60);
    for bad in ["0", "31536001"] {
        let err = load_with(&[("LOANFLOW__HTTP__IDEMPOTENCY_TTL_SECONDS", bad)]).unwrap_err().to_string();
        assert!(err.contains("http.idempotency_ttl_seconds"), "{bad}: {err}");
    }
}

#[test]
fn a_tls_broker_url_is_accepted_and_its_ca_file_must_exist() {
    let token = ("LOANFLOW__ADMIN__TOKEN", "t");
    let url = ("LOANFLOW__BROKER__URL", "amqps://guest:guest@localhost:5671/%2f");
    let s = load_with(&[url, token]).unwrap();
    assert_eq!(s.mode, Mode::Cluster { broker_url: "amqps://guest:guest@localhost:5671/%2f".into() });
    assert_eq!(s.broker.ca_file(), None);
    let err = load_with(&[url, token, ("LOANFLOW__BROKER__CA_FILE", "/no/such/ca.pem")]).unwrap_err().to_string();
    assert!(err.contains("broker.ca_file"), "{err}");
    let ca = tempfile::NamedTempFile::new().unwrap();
    let path = ca.path().to_string_lossy().into_owned();
    let s = load_with(&[url, token, ("LOANFLOW__BROKER__CA_FILE", &path)]).unwrap();
    assert_eq!(s.broker.ca_file(), Some(path.as_str()));
}

#[test]
fn the_shutdown_grace_and_the_stream_caps_are_read_and_checked() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.shutdown.grace(), Duration::from_secs(5));
    assert_eq!((s.streams.max_per_client, s.streams.max_total), (16, 256));
    let s = load_with(&[
        ("LOANFLOW__SHUTDOWN__GRACE_MS", "1500"),
        ("LOANFLOW__STREAMS__MAX_PER_CLIENT", "2"),
        ("LOANFLOW__STREAMS__MAX_TOTAL", "3"),
    ])
    .unwrap();
    assert_eq!(s.shutdown.grace(), Duration::from_millis(1500));
    assert_eq!((s.streams.max_per_client, s.streams.max_total), (2, 3));
    for (key, value, named) in [
        ("LOANFLOW__SHUTDOWN__GRACE_MS", "0", "shutdown.grace_ms"),
        ("LOANFLOW__STREAMS__MAX_PER_CLIENT", "0", "streams.max_per_client"),
        ("LOANFLOW__STREAMS__MAX_PER_CLIENT", "300", "streams.max_per_client"),
    ] {
        let err = load_with(&[(key, value)]).unwrap_err().to_string();
        assert!(err.contains(named), "{key}={value}: {err}");
    }
}

#[test]
fn node_roles_are_parsed_once_and_refused_in_embedded_mode() {
    assert_eq!(load_with(&[]).unwrap().node.roles, NodeRoles::default());
    let cluster = [("LOANFLOW__BROKER__URL", "amqp://127.0.0.1"), ("LOANFLOW__ADMIN__TOKEN", "t")];
    let worker = load_with(&[cluster[0], cluster[1], ("LOANFLOW__NODE__ROLES", "credit, appraisal,notifier")]).unwrap();
    assert_eq!(worker.node.roles.names(), ["credit", "appraisal", "notifier"]);
    let err = load_with(&[cluster[0], cluster[1], ("LOANFLOW__NODE__ROLES", "api,lones")]).unwrap_err().to_string();
    assert!(err.contains("node.roles") && err.contains("unknown role `lones`"), "{err}");
    let err = load_with(&[("LOANFLOW__NODE__ROLES", "api,loans")]).unwrap_err().to_string();
    assert!(err.contains("node.roles") && err.contains("cluster mode"), "{err}");
}

#[test]
fn the_referral_band_defaults_to_660_and_0_refers_nothing() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.decision.review_below_score, crate::domain::ReviewBand::DEFAULT);
    assert_eq!(s.decision.reminder_at_percent, 50);
    let s = load_with(&[("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "0")]).unwrap();
    assert!(s.decision.review_below_score.is_never());
    let err = load_with(&[("LOANFLOW__DECISION__REMINDER_AT_PERCENT", "100")]).unwrap_err();
    assert!(err.to_string().contains("decision.reminder_at_percent"), "{err}");
}
