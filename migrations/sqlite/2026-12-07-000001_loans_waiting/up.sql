-- Where each loan waits (the step `waiting_on` reports, NULL once it waits on nothing) and since
-- when (set when the step changes, kept while it does not). The partial index holds only the
-- loans that wait: the count and the oldest of each step read it alone, and a finished loan
-- leaves it.
ALTER TABLE loans ADD COLUMN waiting_on TEXT;
ALTER TABLE loans ADD COLUMN waiting_since TIMESTAMP;
CREATE INDEX loans_waiting ON loans (waiting_on, waiting_since) WHERE waiting_on IS NOT NULL;
