//! Fault hooks for tests, compiled only with the `test-faults` feature (every `cargo test`
//! build has it; a release binary does not). Each marker is matched against what the hook can
//! see; empty = off.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FaultSettings {
    /// A loan whose applicant name contains this makes its loan actor panic once.
    pub panic_marker: String,
    /// A loan whose applicant name contains this makes its loan actor panic on every delivery
    /// (a poison message, dead-lettered after `actors.max_message_attempts`).
    pub poison_marker: String,
    /// A loan whose applicant name contains this aborts the whole process (`process::abort`, no
    /// unwinding) whenever its loan actor handles a message: a message that kills the node.
    pub crash_marker: String,
    /// A service call (credit check, appraisal, notification) whose request contains this
    /// (in the applicant's e-mail or the property's address) panics on each of its first
    /// `service_panics` attempts (0 = on every attempt).
    pub service_panic_marker: String,
    pub service_panics: u32,
    /// Cluster mode: publish every message twice, to prove that duplicates change nothing.
    pub publish_twice: bool,
    /// Cluster mode: treat messages of this kind (a label such as `check_credit`) as a kind this
    /// node does not know, like a node of an older version during a rolling upgrade.
    pub unknown_kind: String,
}
