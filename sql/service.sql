-- name: cursor_secret
-- The key that signs paging cursors, shared by every replica.
SELECT value
  FROM service_meta
 WHERE name = 'cursor_secret';

-- name: ping
-- A round trip that touches no table: health checks.
SELECT 1;

-- name: applied_migrations
-- The migrations yoyo has applied: readiness means every one in migrations/ is here.
SELECT migration_id
  FROM _yoyo_migration;
