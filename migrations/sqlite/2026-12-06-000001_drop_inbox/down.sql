CREATE TABLE inbox (
    message_id TEXT PRIMARY KEY NOT NULL,
    handled_at TIMESTAMP NOT NULL
);
