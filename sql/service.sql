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

-- name: cache_listeners_lock_timeout
-- Give up registering (and retry later) rather than hold writers back for long.
SELECT set_config('lock_timeout', '2000', true);

-- name: lock_cache_listeners
-- Registering a bounded-mode listener first waits for every writer that has already looked at
-- cache_listeners to commit, and holds the others at that look until the registration commits.
LOCK TABLE cache_listeners IN ACCESS EXCLUSIVE MODE;

-- name: register_cache_listener
-- This connection listens for a bounded-mode replica: writers notify while a row exists. Rows
-- of connections that are gone (a replica that died) are forgotten on the way.
WITH gone AS (
    DELETE FROM cache_listeners
     WHERE backend_pid <> pg_backend_pid()
       AND backend_pid NOT IN (SELECT pid FROM pg_stat_activity)
)
INSERT INTO cache_listeners (backend_pid)
VALUES (pg_backend_pid())
ON CONFLICT ON CONSTRAINT cache_listeners_pkey DO UPDATE SET registered_at = now();

-- name: forget_gone_cache_listeners
-- Forget the registrations of connections that are gone, so writers stop notifying for them.
DELETE FROM cache_listeners
 WHERE backend_pid NOT IN (SELECT pid FROM pg_stat_activity);

-- name: unregister_cache_listener
-- This connection stops listening for a bounded-mode replica.
DELETE FROM cache_listeners
 WHERE backend_pid = pg_backend_pid();
