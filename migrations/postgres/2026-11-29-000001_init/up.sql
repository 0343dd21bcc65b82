-- Money as integer cents, ids as TEXT (UUID), times as naive UTC written by the application.
CREATE TABLE loans (
    id TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    applicant_name TEXT NOT NULL,
    applicant_email TEXT NOT NULL,
    annual_income_cents BIGINT NOT NULL,
    monthly_debts_cents BIGINT NOT NULL,
    property_address TEXT NOT NULL,
    declared_value_cents BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    term_months INTEGER NOT NULL,
    credit_score INTEGER,
    appraised_value_cents BIGINT,
    rate_bps INTEGER,
    monthly_payment_cents BIGINT,
    saga TEXT NOT NULL,
    version BIGINT NOT NULL,
    submitted_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    notified_at TIMESTAMP
);
CREATE INDEX loans_status_id ON loans (status, id);

-- The history of every loan; id is the global sequence streams resume from.
CREATE TABLE loan_events (
    id BIGSERIAL PRIMARY KEY,
    loan_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    data TEXT NOT NULL
);
-- Each event type happens at most once per loan: the database enforces it too.
CREATE UNIQUE INDEX loan_events_once ON loan_events (loan_id, event_type);

CREATE TABLE documents (
    id TEXT PRIMARY KEY NOT NULL,
    loan_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    loan_id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL
);

-- Messages a step emitted, committed with its state change. In embedded mode this is the
-- mailbox itself: a consumer deletes the row in the transaction that records its effect.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    loan_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    kind TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    published_at TIMESTAMP
);
CREATE INDEX outbox_loan ON outbox (loan_id);

-- Ids of handled messages (de-duplication when a broker redelivers).
CREATE TABLE inbox (
    message_id TEXT PRIMARY KEY NOT NULL,
    handled_at TIMESTAMP NOT NULL
);

-- Messages given up on after too many attempts.
CREATE TABLE dead_letters (
    message_id TEXT PRIMARY KEY NOT NULL,
    loan_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    envelope TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL
);

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY NOT NULL,
    request_hash TEXT NOT NULL,
    loan_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
