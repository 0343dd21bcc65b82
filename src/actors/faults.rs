//! Fault hooks for tests (`faults.*` settings), compiled only with the `test-faults` feature:
//! without it every hook is an empty function and the release binary has none of them.

use crate::messages::Envelope;
use crate::persistence::LoanRecord;
use crate::settings::Settings;

/// Before a loan actor computes a step: `faults.panic_marker` panics the first time a marked
/// loan is handled, `faults.poison_marker` every time (a poison message), `faults.crash_marker`
/// aborts the process every time (a message that kills the node).
#[cfg(feature = "test-faults")]
pub fn before_loan_step(settings: &Settings, record: &LoanRecord) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};

    use crate::domain::LoanId;

    static PANICKED: OnceLock<Mutex<HashSet<LoanId>>> = OnceLock::new();
    let faults = &settings.faults;
    let name = record.application.applicant.name.as_ref();
    let marked = |marker: &str| !marker.is_empty() && name.contains(marker);
    if marked(&faults.crash_marker) {
        eprintln!("injected crash for loan {}: aborting the process", record.id);
        std::process::abort();
    }
    if marked(&faults.poison_marker) {
        panic!("injected poison for loan {}", record.id);
    }
    if !marked(&faults.panic_marker) {
        return;
    }
    let first_time = PANICKED.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).insert(record.id);
    if first_time {
        panic!("injected fault for loan {}", record.id);
    }
}

#[cfg(not(feature = "test-faults"))]
pub fn before_loan_step(_settings: &Settings, _record: &LoanRecord) {}

/// Before a service call's attempt `attempt` (counted across restarts, see `service.rs`): a
/// request that contains `faults.service_panic_marker` panics while `attempt` is at most
/// `faults.service_panics` (0 = always).
#[cfg(feature = "test-faults")]
pub fn before_service_call(settings: &Settings, envelope: &Envelope, attempt: u32) {
    let faults = &settings.faults;
    if faults.service_panic_marker.is_empty() {
        return;
    }
    let request = serde_json::to_string(&envelope.body).unwrap_or_default();
    if request.contains(&faults.service_panic_marker)
        && (faults.service_panics == 0 || attempt <= faults.service_panics)
    {
        panic!("injected service fault for loan {} (attempt {attempt})", envelope.loan_id);
    }
}

#[cfg(not(feature = "test-faults"))]
pub fn before_service_call(_settings: &Settings, _envelope: &Envelope, _attempt: u32) {}
