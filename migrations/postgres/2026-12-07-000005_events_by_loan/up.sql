-- One index serves both: a loan's history (`WHERE loan_id = ?` reads its prefix; the partial
-- index this replaces could not serve it, so a history read scanned every event), and the rule
-- that each of the process's own events happens at most once per loan. Those are keyed by
-- their type; every other event (staff actions, notices, repeatable human steps) by its own id,
-- which never collides.
DROP INDEX loan_events_once;
CREATE UNIQUE INDEX loan_events_once ON loan_events (loan_id, (CASE WHEN event_type IN (
    'LoanSubmitted', 'CreditChecked', 'CreditCheckFailed', 'PropertyAppraised', 'AppraisalFailed',
    'CreditCheckReleased', 'AppraisalVoided', 'LoanApproved', 'LoanRejected', 'LoanCancelled',
    'ScheduleGenerated', 'ApplicantNotified', 'LoanReferred', 'InformationRequestExpired'
) THEN event_type ELSE CAST(id AS TEXT) END));
