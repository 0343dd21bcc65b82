-- The loans_waiting index holds only the steps a loan may wait on for long (people, and the end:
-- schedule and notification). The automatic steps change on nearly every unit of a loan: indexed,
-- each change rewrote the index entry, a measurable share of the writer's time
-- (docs/benchmarks.md). A loan waits on those exactly while its status is `submitted` or
-- `evaluating`, which the status index finds. The queries repeat this predicate word for word,
-- so that SQLite and PostgreSQL both match the partial index.
DROP INDEX loans_waiting;
CREATE INDEX loans_waiting ON loans (waiting_on, waiting_since)
    WHERE waiting_on IN ('underwriter', 'applicant', 'schedule', 'notification');
