DROP INDEX loans_waiting;
CREATE INDEX loans_waiting ON loans (waiting_on, waiting_since) WHERE waiting_on IS NOT NULL;
