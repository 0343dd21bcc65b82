DROP INDEX loan_events_once;
CREATE UNIQUE INDEX loan_events_once ON loan_events (loan_id, event_type);
