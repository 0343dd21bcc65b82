-- A loan's applicant-token generation: revoking the token moves it on (no row: generation 0).
CREATE TABLE access_token_generations (
    loan_id TEXT PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL
);
