-- Export and import of whole sessions (NDJSON; docs/lifecycle.md). Exports read inside one
-- read-only REPEATABLE READ transaction, so the four lists below are one consistent snapshot.

-- name: export_idle_timeout
-- Let an export's snapshot stay open while a slow client reads (this transaction only).
SELECT set_config('idle_in_transaction_session_timeout', $1::text, true);

-- name: export_agents
-- Every agent of a session in agent_id order, for an export.
SELECT agent_id, state, conversation_manager_state, internal_state,
       version, created_at, updated_at
  FROM agents
 WHERE session_id = $1
 ORDER BY agent_id;

-- name: export_messages
-- Every message of a session in (agent_id, message_id) order (the primary key), for an export.
SELECT agent_id, message_id, message, redact_message, version, created_at, updated_at
  FROM messages
 WHERE session_id = $1
 ORDER BY agent_id, message_id;

-- name: export_multi_agents
-- Every multi-agent state of a session in multi_agent_id order, for an export.
SELECT multi_agent_id, state, version, created_at, updated_at
  FROM multi_agents
 WHERE session_id = $1
 ORDER BY multi_agent_id;

-- name: import_delete_session
-- Delete the session (expired or not) that an import with replace=true replaces.
DELETE FROM sessions
 WHERE session_id = $1
RETURNING session_id;

-- name: import_session
-- Insert an imported session with its timestamps (now() where none is given) and a new version:
-- versions are never reused, so an export's versions are not taken over.
INSERT INTO sessions (session_id, session_type, created_at, updated_at, expires_at)
VALUES ($1, $2, COALESCE($3::timestamptz, now()), COALESCE($4::timestamptz, now()), $5)
RETURNING session_id, session_type, version, created_at, updated_at, expires_at,
          expires_at <= now() AS expired;

-- name: import_agents
-- Insert a batch of an imported session's agents with their timestamps (and new versions).
INSERT INTO agents (session_id, agent_id, state, conversation_manager_state, internal_state,
                    created_at, updated_at)
SELECT $1, b.agent_id, b.state, b.conversation_manager_state, b.internal_state,
       COALESCE(b.created_at, now()), COALESCE(b.updated_at, now())
  FROM unnest($2::text[], $3::json[], $4::json[], $5::json[],
              $6::timestamptz[], $7::timestamptz[])
       AS b (agent_id, state, conversation_manager_state, internal_state,
             created_at, updated_at);

-- name: import_messages
-- Insert a batch of an imported session's messages with their timestamps (and new versions).
INSERT INTO messages (session_id, agent_id, message_id, role, content_types,
                      message, redact_message, created_at, updated_at)
SELECT $1, b.agent_id, b.message_id, b.role,
       ARRAY(SELECT json_array_elements_text(b.content_types)), b.message, b.redact_message,
       COALESCE(b.created_at, now()), COALESCE(b.updated_at, now())
  FROM unnest($2::text[], $3::integer[], $4::text[], $5::json[], $6::json[], $7::json[],
              $8::timestamptz[], $9::timestamptz[])
       AS b (agent_id, message_id, role, content_types, message, redact_message,
             created_at, updated_at);

-- name: import_multi_agents
-- Insert a batch of an imported session's multi-agent states with timestamps (new versions).
INSERT INTO multi_agents (session_id, multi_agent_id, state, created_at, updated_at)
SELECT $1, b.multi_agent_id, b.state,
       COALESCE(b.created_at, now()), COALESCE(b.updated_at, now())
  FROM unnest($2::text[], $3::json[], $4::timestamptz[], $5::timestamptz[])
       AS b (multi_agent_id, state, created_at, updated_at);
