-- Drops what 0003 added.
DROP INDEX sessions_expires_at_idx;
ALTER TABLE sessions DROP COLUMN expires_at;
