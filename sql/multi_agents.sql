-- name: create_multi_agent
-- Insert a multi-agent state; no row when the id is taken or the session is missing or expired.
-- $4: the X-Session-Lease token, checked by session_write_fence (migration 0006).
INSERT INTO multi_agents (session_id, multi_agent_id, state)
SELECT $1::text, $2::text, $3::json
 WHERE EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()))
   AND (SELECT session_write_fence($1, $4::bigint))
ON CONFLICT ON CONSTRAINT multi_agents_pkey DO NOTHING
RETURNING session_id, multi_agent_id, state, version, created_at, updated_at;

-- name: compare_multi_agent
-- The stored multi-agent state and whether it equals the one a create asked for.
SELECT session_id, multi_agent_id, state, version, created_at, updated_at,
       state::text = $3::json::text AS same
  FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: read_multi_agent
-- One multi-agent state, or no row (also once its session has expired).
SELECT session_id, multi_agent_id, state, version, created_at, updated_at
  FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: multi_agent_version
-- The multi-agent state's version only: tells a missing row from an If-Match mismatch.
SELECT version
  FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: update_multi_agent
-- Replace a multi-agent state; no row when missing or when $4 (If-Match) differs.
-- $5: the X-Session-Lease token, checked by session_write_fence (migration 0006).
UPDATE multi_agents
   SET state = $3, version = version + 1, updated_at = now()
 WHERE session_id = $1 AND multi_agent_id = $2
   AND ($4::bigint IS NULL OR version = $4)
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()))
   AND (SELECT session_write_fence($1, $5::bigint))
RETURNING session_id, multi_agent_id, state, version, created_at, updated_at;

-- name: delete_multi_agent
-- Delete one multi-agent state.
-- $4: the X-Session-Lease token, checked by session_write_fence (migration 0006).
DELETE FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2
   AND ($3::bigint IS NULL OR version = $3)
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()))
   AND (SELECT session_write_fence($1, $4::bigint))
RETURNING version;
