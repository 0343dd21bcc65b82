DROP INDEX loan_events_once;
CREATE UNIQUE INDEX loan_events_once ON loan_events (loan_id, event_type)
WHERE event_type IN (
    'LoanSubmitted', 'CreditChecked', 'CreditCheckFailed', 'PropertyAppraised', 'AppraisalFailed',
    'CreditCheckReleased', 'AppraisalVoided', 'LoanApproved', 'LoanRejected', 'LoanCancelled',
    'ScheduleGenerated', 'ApplicantNotified', 'LoanReferred', 'InformationRequestExpired'
);
