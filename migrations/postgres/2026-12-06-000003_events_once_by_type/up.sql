-- Each of the process's own events happens at most once per loan (CONTRACT.md); what staff do
-- (a retry, a replay, a revoked token) may happen any number of times.
DROP INDEX loan_events_once;
CREATE UNIQUE INDEX loan_events_once ON loan_events (loan_id, event_type)
WHERE event_type IN (
    'LoanSubmitted', 'CreditChecked', 'CreditCheckFailed', 'PropertyAppraised', 'AppraisalFailed',
    'CreditCheckReleased', 'AppraisalVoided', 'LoanApproved', 'LoanRejected', 'LoanCancelled',
    'ScheduleGenerated', 'ApplicantNotified', 'LoanReferred', 'InformationRequestExpired'
);
