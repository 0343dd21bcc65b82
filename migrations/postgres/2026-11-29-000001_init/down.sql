DROP TABLE idempotency_keys;
DROP TABLE dead_letters;
DROP TABLE inbox;
DROP TABLE outbox;
DROP TABLE notifications;
DROP TABLE documents;
DROP TABLE loan_events;
DROP TABLE loans;
