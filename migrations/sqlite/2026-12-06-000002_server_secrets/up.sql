-- Secrets every node of a deployment shares, made by the first start that needs one (the key
-- applicant tokens are derived with).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
