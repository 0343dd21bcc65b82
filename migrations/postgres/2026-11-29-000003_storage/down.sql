ALTER TABLE documents ALTER COLUMN content SET COMPRESSION pglz;
ALTER TABLE outbox RESET (fillfactor);
