DROP INDEX loans_waiting;
ALTER TABLE loans DROP COLUMN waiting_since;
ALTER TABLE loans DROP COLUMN waiting_on;
