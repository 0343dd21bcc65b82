-- The inbox (ids of handled messages) was never written: a step consumes its message by
-- deleting the outbox row in the same unit, in both modes.
DROP TABLE inbox;
