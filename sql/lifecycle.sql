-- Session lifecycle: the expiry sweeper and `python -m service prune`.
-- A session's last activity is the greatest updated_at of the session, its agents, its messages
-- and its multi-agent states; "last activity before $1" is written as "no updated_at >= $1",
-- which stops at the first recent row instead of computing the maximum.

-- name: sweep_lock
-- Take the sweeper's session-level advisory lock if free: one replica sweeps at a time.
SELECT pg_try_advisory_lock(7362873049011501);

-- name: sweep_expired_sessions
-- Delete up to $1 expired sessions (cascading to everything under them) that nobody has locked.
DELETE FROM sessions
 WHERE expires_at <= now()
   AND session_id IN (SELECT session_id
                        FROM sessions
                       WHERE expires_at <= now()
                       ORDER BY expires_at
                       LIMIT $1
                         FOR UPDATE SKIP LOCKED)
RETURNING session_id;

-- name: prune_cutoff
-- The instant before which a session counts as old: now() less $1 seconds.
SELECT now() - make_interval(secs => $1::float8);

-- name: prune_candidates
-- Up to $3 sessions after id $2 whose last activity (see prune_sessions) is before $1.
SELECT s.session_id
  FROM sessions s
 WHERE s.session_id > $2
   AND s.updated_at < $1
   AND NOT EXISTS (SELECT 1 FROM agents a
                    WHERE a.session_id = s.session_id AND a.updated_at >= $1)
   AND NOT EXISTS (SELECT 1 FROM messages m
                    WHERE m.session_id = s.session_id AND m.updated_at >= $1)
   AND NOT EXISTS (SELECT 1 FROM multi_agents x
                    WHERE x.session_id = s.session_id AND x.updated_at >= $1)
 ORDER BY s.session_id
 LIMIT $3;

-- name: prune_lock
-- Lock up to $3 sessions after id $2 whose last activity is before $1, skipping any a write holds
-- (every write under a session holds its row FOR KEY SHARE until it commits); ids in order.
-- prune_sessions then checks activity again, in a statement that sees every write committed
-- before it: a write committed after this statement's snapshot is not missed.
SELECT s.session_id
  FROM sessions s
 WHERE s.session_id > $2
   AND s.updated_at < $1
   AND NOT EXISTS (SELECT 1 FROM agents a
                    WHERE a.session_id = s.session_id AND a.updated_at >= $1)
   AND NOT EXISTS (SELECT 1 FROM messages m
                    WHERE m.session_id = s.session_id AND m.updated_at >= $1)
   AND NOT EXISTS (SELECT 1 FROM multi_agents x
                    WHERE x.session_id = s.session_id AND x.updated_at >= $1)
 ORDER BY s.session_id
 LIMIT $3
   FOR UPDATE OF s SKIP LOCKED;

-- name: prune_sessions
-- Delete the locked sessions $2 whose last activity is still before $1; ids in order.
WITH gone AS (
    DELETE FROM sessions s
     WHERE s.session_id = ANY($2::text[])
       AND s.updated_at < $1
       AND NOT EXISTS (SELECT 1 FROM agents a
                        WHERE a.session_id = s.session_id AND a.updated_at >= $1)
       AND NOT EXISTS (SELECT 1 FROM messages m
                        WHERE m.session_id = s.session_id AND m.updated_at >= $1)
       AND NOT EXISTS (SELECT 1 FROM multi_agents x
                        WHERE x.session_id = s.session_id AND x.updated_at >= $1)
    RETURNING session_id
)
SELECT session_id
  FROM gone
 ORDER BY session_id;
