-- name: create_multi_agent
-- Insert a multi-agent state; no row when the id is already taken (the caller then compares).
INSERT INTO multi_agents (session_id, multi_agent_id, state)
VALUES ($1, $2, $3)
ON CONFLICT ON CONSTRAINT multi_agents_pkey DO NOTHING
RETURNING session_id, multi_agent_id, state, version, created_at, updated_at;

-- name: compare_multi_agent
-- The stored multi-agent state and whether it equals the one a create asked for.
SELECT session_id, multi_agent_id, state, version, created_at, updated_at,
       state::text = $3::json::text AS same
  FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2;

-- name: read_multi_agent
-- One multi-agent state, or no row.
SELECT session_id, multi_agent_id, state, version, created_at, updated_at
  FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2;

-- name: multi_agent_version
-- The multi-agent state's version only: tells a missing row from an If-Match mismatch.
SELECT version
  FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2;

-- name: update_multi_agent
-- Replace a multi-agent state; no row when missing or when $4 (If-Match) differs.
UPDATE multi_agents
   SET state = $3, version = version + 1, updated_at = now()
 WHERE session_id = $1 AND multi_agent_id = $2
   AND ($4::bigint IS NULL OR version = $4)
RETURNING session_id, multi_agent_id, state, version, created_at, updated_at;

-- name: delete_multi_agent
-- Delete one multi-agent state.
DELETE FROM multi_agents
 WHERE session_id = $1 AND multi_agent_id = $2
   AND ($3::bigint IS NULL OR version = $3)
RETURNING version;
