-- Schedules are ~12 KB of CSV each, stored out of line (TOAST) and compressed: with the default
-- pglz, compressing them was a quarter of PostgreSQL's CPU under load (docs/benchmarks.md).
-- lz4 compresses several times faster, for slightly larger rows. Applies to rows written from
-- now on; PostgreSQL built without lz4 (rare: Debian's and the official images have it) would
-- fail here with a clear error.
ALTER TABLE documents ALTER COLUMN content SET COMPRESSION lz4;

-- Outbox rows are updated once (published_at, which no index covers) when the broker confirms
-- them: with room left on each page that update is HOT (no index entries to write).
ALTER TABLE outbox SET (fillfactor = 70);
