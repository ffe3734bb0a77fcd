-- name: create_multi_agent
-- Insert a multi-agent state, recording key $4 (fingerprint $5) with the answer 201; no row when
-- the id is taken or the session is missing or expired.
-- $6: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    INSERT INTO multi_agents (session_id, multi_agent_id, state)
    SELECT $1::text, $2::text, $3::json
     WHERE EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $6::bigint))
    ON CONFLICT ON CONSTRAINT multi_agents_pkey DO NOTHING
    RETURNING session_id, multi_agent_id, state, version, created_at, updated_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $4, $5, 201, w::text FROM w
)
SELECT session_id, multi_agent_id, state, version, created_at, updated_at
  FROM w;

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
-- Replace a multi-agent state, recording key $5 (fingerprint $6) with the answer 200; no row
-- when missing or when $4 (If-Match) differs.
-- $7: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    UPDATE multi_agents
       SET state = $3, version = nextval('resource_versions'), updated_at = now()
     WHERE session_id = $1 AND multi_agent_id = $2
       AND ($4::bigint IS NULL OR version = $4)
       AND EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $7::bigint))
    RETURNING session_id, multi_agent_id, state, version, created_at, updated_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $5, $6, 200, w::text FROM w
)
SELECT session_id, multi_agent_id, state, version, created_at, updated_at
  FROM w;

-- name: delete_multi_agent
-- Delete one multi-agent state, recording key $4 (fingerprint $5) with the answer 204.
-- $6: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    DELETE FROM multi_agents
     WHERE session_id = $1 AND multi_agent_id = $2
       AND ($3::bigint IS NULL OR version = $3)
       AND EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $6::bigint))
    RETURNING version
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status)
    SELECT $4, $5, 204 FROM w
)
SELECT version
  FROM w;
