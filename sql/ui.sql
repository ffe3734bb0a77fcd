-- The session browser under /ui: read-only queries, one or two per page.
-- JSON documents are read as text (`::text`) because the pages parse them to render them,
-- unlike the API, which embeds the stored text without parsing it.

-- name: ui_list_sessions
-- A page of unexpired sessions with their agent counts, newest first, filtered, after ($5, $6).
SELECT s.session_id, s.session_type, s.created_at, s.updated_at, s.expires_at,
       (SELECT count(*) FROM agents a WHERE a.session_id = s.session_id) AS agent_count
  FROM sessions s
 WHERE (s.expires_at IS NULL OR s.expires_at > now())
   AND ($1::timestamptz IS NULL OR s.created_at > $1)
   AND ($2::timestamptz IS NULL OR s.created_at < $2)
   AND ($3::text IS NULL OR s.session_type = $3)
   AND ($4::text IS NULL OR starts_with(s.session_id, $4))
   AND (s.created_at, s.session_id)
       < (coalesce($5::timestamptz, 'infinity'), coalesce($6::text, ''))
 ORDER BY s.created_at DESC, s.session_id DESC
 LIMIT $7;

-- name: ui_session
-- One unexpired session with its multi-agent states (a JSON array as text); no row when absent.
SELECT s.session_id, s.session_type, s.version, s.created_at, s.updated_at, s.expires_at,
       (SELECT coalesce(json_agg(json_build_object(
                  'multi_agent_id', m.multi_agent_id, 'state', m.state,
                  'created_at', m.created_at, 'updated_at', m.updated_at)
                ORDER BY m.multi_agent_id), '[]')::text
          FROM multi_agents m WHERE m.session_id = s.session_id) AS multi_agents
  FROM sessions s
 WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now());

-- name: ui_session_agents
-- A page of a session's agents in agent_id order after $2, with message count and last message.
SELECT a.agent_id, a.created_at, a.updated_at,
       (SELECT count(*) FROM messages m
         WHERE m.session_id = a.session_id AND m.agent_id = a.agent_id) AS message_count,
       (SELECT m.updated_at FROM messages m
         WHERE m.session_id = a.session_id AND m.agent_id = a.agent_id
         ORDER BY m.message_id DESC LIMIT 1) AS last_message_at
  FROM agents a
 WHERE a.session_id = $1
   AND a.agent_id > coalesce($2::text, '')
 ORDER BY a.agent_id
 LIMIT $3;

-- name: ui_agent
-- One agent of an unexpired session with its states as text and its message count; or no row.
SELECT a.session_id, a.agent_id, a.state::text AS state,
       a.conversation_manager_state::text AS conversation_manager_state,
       a.internal_state::text AS internal_state, a.version, a.created_at, a.updated_at,
       (SELECT count(*) FROM messages m
         WHERE m.session_id = a.session_id AND m.agent_id = a.agent_id) AS message_count,
       s.expires_at AS session_expires_at
  FROM agents a
  JOIN sessions s ON s.session_id = a.session_id
 WHERE a.session_id = $1 AND a.agent_id = $2
   AND s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now());

-- name: ui_messages
-- A page of one agent's messages as text, in message_id order after $3 (keyset on the pkey).
SELECT message_id, message::text AS message, redact_message::text AS redact_message,
       version, created_at, updated_at
  FROM messages
 WHERE session_id = $1 AND agent_id = $2
   AND message_id > coalesce($3::integer, -1)
 ORDER BY message_id
 LIMIT $4;

-- name: ui_message
-- One message as text, or no row (also once its session has expired).
SELECT message_id, message::text AS message, redact_message::text AS redact_message,
       version, created_at, updated_at
  FROM messages
 WHERE session_id = $1 AND agent_id = $2 AND message_id = $3
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));
