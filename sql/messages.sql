-- Timestamps leave as the contract's text, formatted by PostgreSQL (iso_timestamp, migration
-- 0007). Every statement that inserts or deletes messages keeps agents.message_count in the
-- same statement (a data-modifying CTE); that agent-row update is also what sends bounded-mode
-- replicas their cache notice.

-- name: create_message
-- Insert a message and count it on its agent, recording key $8 (fingerprint $9) with the
-- answer 201; no row when the id is taken or the session is missing or expired.
-- $10: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    INSERT INTO messages (session_id, agent_id, message_id, role, content_types,
                          message, redact_message)
    SELECT $1::text, $2::text, $3::integer, $4::text, $5::text[], $6::json, $7::json
     WHERE EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $10::bigint))
    ON CONFLICT ON CONSTRAINT messages_pkey DO NOTHING
    RETURNING session_id, agent_id, message_id, message, redact_message,
              version, created_at, updated_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $8, $9, 201, w::text FROM w
), counted AS (
    UPDATE agents a
       SET message_count = a.message_count + 1
     WHERE a.session_id = $1 AND a.agent_id = $2 AND EXISTS (SELECT 1 FROM w)
)
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at
  FROM w;

-- name: compare_message
-- The stored message and whether it equals the one a create asked for (same serialized text).
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at,
       (message::text = $4::json::text
        AND redact_message::text IS NOT DISTINCT FROM $5::json::text) AS same
  FROM messages
 WHERE session_id = $1 AND agent_id = $2 AND message_id = $3
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: create_messages
-- Insert a batch of messages in one statement and count them on their agent; ids already taken
-- are skipped (then compared).
-- When any is new, records key $8 (fingerprint $9) with the answer 201 and the new messages
-- (record_batch_outcome replaces them with the whole batch when some were repeats).
-- $10: the X-Session-Lease token, checked by session_write_fence (migration 0006).
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
       AND (SELECT session_write_fence($1, $10::bigint))
    ON CONFLICT ON CONSTRAINT messages_pkey DO NOTHING
    RETURNING session_id, agent_id, message_id, message, redact_message,
              version, created_at, updated_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $8, $9, 201, array_agg(w ORDER BY w.message_id)::text
      FROM w
    HAVING count(*) > 0
), counted AS (
    UPDATE agents a
       SET message_count = a.message_count + (SELECT count(*) FROM w)
     WHERE a.session_id = $1 AND a.agent_id = $2 AND EXISTS (SELECT 1 FROM w)
)
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at
  FROM w;

-- name: record_batch_outcome
-- The answer of a batch that was partly a repeat: every message of ids $3, for key $4.
UPDATE idempotency_keys
   SET response = (SELECT array_agg(m ORDER BY m.message_id)::text
                     FROM (SELECT session_id, agent_id, message_id, message, redact_message,
                                  version, created_at, updated_at
                             FROM messages
                            WHERE session_id = $1 AND agent_id = $2
                              AND message_id = ANY($3::integer[])) AS m)
 WHERE key = $4;

-- name: compare_messages
-- For a batch's ids that were already taken: the stored messages and whether each is equal.
SELECT m.session_id, m.agent_id, m.message_id, m.message, m.redact_message, m.version,
       iso_timestamp(m.created_at) AS created_at, iso_timestamp(m.updated_at) AS updated_at,
       (m.message::text = b.message::text
        AND m.redact_message::text IS NOT DISTINCT FROM b.redact_message::text) AS same
  FROM unnest($3::integer[], $4::json[], $5::json[]) AS b (message_id, message, redact_message)
  JOIN messages m
    ON m.session_id = $1 AND m.agent_id = $2 AND m.message_id = b.message_id
 WHERE EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: read_message
-- One message, or no row (also once its session has expired).
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at
  FROM messages
 WHERE session_id = $1 AND agent_id = $2 AND message_id = $3
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: update_message
-- Replace a message and its redaction, recording key $9 (fingerprint $10) with the answer 200;
-- no row when missing or when $8 (If-Match) differs.
-- $11: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    UPDATE messages
       SET role = $4, content_types = $5, message = $6, redact_message = $7,
           version = nextval('resource_versions'), updated_at = now()
     WHERE session_id = $1 AND agent_id = $2 AND message_id = $3
       AND ($8::bigint IS NULL OR version = $8)
       AND EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $11::bigint))
    RETURNING session_id, agent_id, message_id, message, redact_message,
              version, created_at, updated_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $9, $10, 200, w::text FROM w
)
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at
  FROM w;

-- name: message_version
-- The message's version only: tells a missing message from an If-Match mismatch.
SELECT version
  FROM messages
 WHERE session_id = $1 AND agent_id = $2 AND message_id = $3
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()));

-- name: delete_message
-- Delete one message and uncount it on its agent, recording key $5 (fingerprint $6) with the
-- answer 204.
-- $7: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    DELETE FROM messages
     WHERE session_id = $1 AND agent_id = $2 AND message_id = $3
       AND ($4::bigint IS NULL OR version = $4)
       AND EXISTS (SELECT 1 FROM sessions s
                    WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
                      FOR KEY SHARE)
       AND (SELECT session_write_fence($1, $7::bigint))
    RETURNING version
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status)
    SELECT $5, $6, 204 FROM w
), counted AS (
    UPDATE agents a
       SET message_count = a.message_count - 1
     WHERE a.session_id = $1 AND a.agent_id = $2 AND EXISTS (SELECT 1 FROM w)
)
SELECT version
  FROM w;

-- name: list_messages_asc
-- A page of one agent's messages in message_id order, after $3 when given, skipping $4 rows.
-- Keyset bounds are plain comparisons (coalesce, not `$3 IS NULL OR`), so the generic plan of
-- the prepared statement still scans the primary key from the cursor.
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at
  FROM messages
 WHERE session_id = $1 AND agent_id = $2
   AND message_id > coalesce($3::integer, -1)
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()))
 ORDER BY message_id
OFFSET $4
 LIMIT $5;

-- name: list_messages_desc
-- A page of one agent's messages, newest id first, before $3 when given, skipping $4 rows.
SELECT session_id, agent_id, message_id, message, redact_message, version,
       iso_timestamp(created_at) AS created_at, iso_timestamp(updated_at) AS updated_at
  FROM messages
 WHERE session_id = $1 AND agent_id = $2
   AND message_id < coalesce($3::integer::bigint, 2147483648)
   AND EXISTS (SELECT 1 FROM sessions s
                WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now()))
 ORDER BY message_id DESC
OFFSET $4
 LIMIT $5;
