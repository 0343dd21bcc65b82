//! The names of the steps a loan can wait on, as [`super::LoanSaga::waiting_on`] reports them:
//! what the `waiting_on` column holds, the list filters by and the metrics label.

/// Every step, in the order of the process (automatic steps, people, compensations, the end).
pub const WAITING_STEPS: [&str; 9] = [
    "start",
    "credit_check",
    "appraisal",
    "underwriter",
    "applicant",
    "credit_release",
    "appraisal_void",
    "schedule",
    "notification",
];

/// The steps where a person, not the system, has to act: a loan waiting there is waiting, not
/// stuck.
pub const PEOPLE_STEPS: [&str; 2] = ["underwriter", "applicant"];

/// The steps of the automatic work before a decision and of compensation: a loan waits on one of
/// these exactly while its status is `submitted` or `evaluating` (the property tests hold the
/// saga to it), so the status index finds them. The other steps are where a loan may wait long,
/// and the `loans_waiting` index holds only those.
pub const IN_FLIGHT_STEPS: [&str; 5] = ["start", "credit_check", "appraisal", "credit_release", "appraisal_void"];

/// Whether `step` is one of [`WAITING_STEPS`].
pub fn is_waiting_step(step: &str) -> bool {
    WAITING_STEPS.contains(&step)
}
