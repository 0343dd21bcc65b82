-- Durable timers (a request's deadline, its reminder): each row is committed in the unit of work
-- whose transition asked for it, and holds the message that fires it (`envelope`, for the loan,
-- its id the row's `id`). At `due_at` a node with the timer component moves the row into the
-- outbox in one unit (the row deleted, the message inserted): a row is moved once, and the
-- message is consumed once, by the loan's step.
CREATE TABLE timers (
    id TEXT PRIMARY KEY NOT NULL,
    loan_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    request_id TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    envelope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX timers_due ON timers (due_at, id);
