-- A turn's writes to one agent (POST .../agents/{agent_id}/turn): messages appended and the
-- agent's state replaced in one transaction, recorded under one idempotency key at its end.

-- name: append_turn_messages
-- Insert a turn's messages and count them on their agent; ids already taken are skipped (then
-- compared). Records no key: record_turn_outcome does, once the whole turn is written.
-- $8: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    INSERT INTO messages (session_id, agent_id, message_id, role, content_types,
                          message, redact_message)
    SELECT $1, $2, b.message_id, b.role,
           ARRAY(SELECT json_array_elements_text(b.content_types)), b.message, b.redact_message
      FROM unnest($3::integer[], $4::text[], $5::json[], $6::json[], $7::json[])
           AS b (message_id, role, content_types, message, redact_message)
     WHERE EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $8::bigint))
    ON CONFLICT ON CONSTRAINT messages_pkey DO NOTHING
    RETURNING session_id, agent_id, message_id, message, redact_message,
              version, created_at, updated_at
), counted AS (
    UPDATE agents a
       SET message_count = a.message_count + (SELECT count(*) FROM w)
     WHERE a.session_id = $1 AND a.agent_id = $2 AND EXISTS (SELECT 1 FROM w)
)
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at
  FROM w;

-- name: sync_turn_agent
-- Replace the agent's state ($3..$5) as a PUT without If-Match does, and record key $7
-- (fingerprint $8) with status $9 and the turn's answer: the messages of ids $10 as they are
-- now (inserted by append_turn_messages earlier in the transaction) and the agent. No row when
-- the agent (or its session) does not exist. $6: the X-Session-Lease token.
WITH w AS (
    UPDATE agents a
       SET state = $3, conversation_manager_state = $4, internal_state = $5,
           version = nextval('resource_versions'), updated_at = now()
     WHERE a.session_id = $1 AND a.agent_id = $2
       AND EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $6::bigint))
    RETURNING a.session_id, a.agent_id, a.state, a.conversation_manager_state, a.internal_state,
              a.version, a.created_at, a.updated_at, a.message_count
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $7, $8, $9, json_build_object(
               'messages',
               (SELECT array_agg(m ORDER BY m.message_id)::text
                  FROM (SELECT session_id, agent_id, message_id, message, redact_message,
                               version, created_at, updated_at
                          FROM messages
                         WHERE session_id = $1 AND agent_id = $2
                           AND message_id = ANY($10::integer[])) AS m),
               'agent', w::text
           )::text
      FROM w
)
SELECT session_id, agent_id, state, conversation_manager_state, internal_state,
       version, created_at, updated_at, message_count
  FROM w;

-- name: record_turn_outcome
-- For a turn without agent state: record key $1 (fingerprint $2) with status $3 and the turn's
-- answer, the messages of ids $6 as they are now (in the turn's transaction).
INSERT INTO idempotency_keys (key, fingerprint, status, response)
SELECT $1, $2, $3, json_build_object(
           'messages',
           (SELECT array_agg(m ORDER BY m.message_id)::text
              FROM (SELECT session_id, agent_id, message_id, message, redact_message,
                           version, created_at, updated_at
                      FROM messages
                     WHERE session_id = $4 AND agent_id = $5
                       AND message_id = ANY($6::integer[])) AS m),
           'agent', NULL
       )::text;

-- name: replay_turn
-- A turn's recorded answer: its messages (in message_id order) and its agent (null when the
-- turn did not replace the agent's state).
SELECT k.fingerprint = $2 AS same, k.status,
       CAST(CASE WHEN k.fingerprint = $2 THEN k.response::json ->> 'messages' END
            AS message_outcome[]) AS messages,
       CAST(CASE WHEN k.fingerprint = $2 THEN k.response::json ->> 'agent' END
            AS agent_outcome) AS agent
  FROM idempotency_keys k
 WHERE k.key = $1;
