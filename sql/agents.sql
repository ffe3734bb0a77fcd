-- name: create_agent
-- Insert an agent, recording key $6 (fingerprint $7) with the answer 201; no row when the id is
-- taken or the session is missing or expired. Writes under a session hold its row FOR KEY SHARE
-- until they commit, which is what prune and the sweeper lock against.
-- $8: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    INSERT INTO agents (session_id, agent_id, state, conversation_manager_state, internal_state)
    SELECT $1::text, $2::text, $3::json, $4::json, $5::json
     WHERE EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $8::bigint))
    ON CONFLICT ON CONSTRAINT agents_pkey DO NOTHING
    RETURNING session_id, agent_id, state, conversation_manager_state, internal_state,
              version, created_at, updated_at, 0::bigint AS message_count
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $6, $7, 201, w::text FROM w
)
SELECT session_id, agent_id, state, conversation_manager_state, internal_state,
       version, created_at, updated_at, message_count
  FROM w;

-- name: compare_agent
-- The stored agent and whether it equals the one a create asked for (same serialized text).
SELECT a.session_id, a.agent_id, a.state, a.conversation_manager_state, a.internal_state,
       a.version, a.created_at, a.updated_at,
       a.message_count,
       (a.state::text = $3::json::text
        AND a.conversation_manager_state::text = $4::json::text
        AND a.internal_state::text = $5::json::text) AS same
  FROM agents a
 WHERE a.session_id = $1 AND a.agent_id = $2
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: read_agent
-- One agent with its message count (kept by the message statements) and its session's expiry;
-- no row when either is absent.
SELECT a.session_id, a.agent_id, a.state, a.conversation_manager_state, a.internal_state,
       a.version, a.created_at, a.updated_at,
       a.message_count,
       s.expires_at AS session_expires_at
  FROM agents a
  JOIN sessions s ON s.session_id = a.session_id
 WHERE a.session_id = $1 AND a.agent_id = $2
   AND s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now());

-- name: agent_version
-- The version and message count of an agent of an unexpired session: existence, cache checks.
SELECT a.version,
       a.message_count
  FROM agents a
 WHERE a.session_id = $1 AND a.agent_id = $2
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: update_agent
-- Replace the agent's state, recording key $7 (fingerprint $8) with the answer 200; no row when
-- missing or when $6 (If-Match) differs.
-- $9: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    UPDATE agents a
       SET state = $3, conversation_manager_state = $4, internal_state = $5,
           version = nextval('resource_versions'), updated_at = now()
     WHERE a.session_id = $1 AND a.agent_id = $2
       AND ($6::bigint IS NULL OR a.version = $6)
       AND EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $9::bigint))
    RETURNING a.session_id, a.agent_id, a.state, a.conversation_manager_state, a.internal_state,
              a.version, a.created_at, a.updated_at,
              a.message_count
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $7, $8, 200, w::text FROM w
)
SELECT session_id, agent_id, state, conversation_manager_state, internal_state,
       version, created_at, updated_at, message_count
  FROM w;

-- name: delete_agent
-- Delete an agent and its messages (ON DELETE CASCADE), recording key $4 (fingerprint $5) with
-- the answer 204.
-- $6: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    DELETE FROM agents
     WHERE session_id = $1 AND agent_id = $2
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

-- name: list_agents
-- A page of one session's agents in agent_id order, after the keyset position $2 when given.
SELECT a.session_id, a.agent_id, a.state, a.conversation_manager_state, a.internal_state,
       a.version, a.created_at, a.updated_at,
       a.message_count
  FROM agents a
 WHERE a.session_id = $1
   AND a.agent_id > coalesce($2::text, '')
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()))
 ORDER BY a.agent_id
 LIMIT $3;
