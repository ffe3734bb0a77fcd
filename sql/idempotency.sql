-- Idempotency keys (migration 0005): what a write answered, to answer a repeat the same way.
-- Each replay query takes the key $1 and the request's fingerprint $2; `same` says whether the
-- stored request is this one (else the columns of the outcome are null).

-- name: replay_empty
-- A write that answered without a body (204).
SELECT k.fingerprint = $2 AS same, k.status
  FROM idempotency_keys k
 WHERE k.key = $1;

-- name: replay_session
-- A write that answered a session.
SELECT k.fingerprint = $2 AS same, k.status, r.*
  FROM idempotency_keys k
  LEFT JOIN LATERAL unnest(ARRAY[CAST(CASE WHEN k.fingerprint = $2 THEN k.response END
                                      AS session_outcome)]) AS r ON true
 WHERE k.key = $1;

-- name: replay_agent
-- A write that answered an agent.
SELECT k.fingerprint = $2 AS same, k.status, r.*
  FROM idempotency_keys k
  LEFT JOIN LATERAL unnest(ARRAY[CAST(CASE WHEN k.fingerprint = $2 THEN k.response END
                                      AS agent_outcome)]) AS r ON true
 WHERE k.key = $1;

-- name: replay_message
-- A write that answered a message.
SELECT k.fingerprint = $2 AS same, k.status, r.*
  FROM idempotency_keys k
  LEFT JOIN LATERAL unnest(ARRAY[CAST(CASE WHEN k.fingerprint = $2 THEN k.response END
                                      AS message_outcome)]) AS r ON true
 WHERE k.key = $1;

-- name: replay_messages
-- A batch append: one row per message answered, in message_id order.
SELECT k.fingerprint = $2 AS same, k.status, r.*
  FROM idempotency_keys k
  LEFT JOIN LATERAL unnest(CAST(CASE WHEN k.fingerprint = $2 THEN k.response END
                                AS message_outcome[])) WITH ORDINALITY AS r ON true
 WHERE k.key = $1
 ORDER BY r.ordinality;

-- name: replay_multi_agent
-- A write that answered a multi-agent state.
SELECT k.fingerprint = $2 AS same, k.status, r.*
  FROM idempotency_keys k
  LEFT JOIN LATERAL unnest(ARRAY[CAST(CASE WHEN k.fingerprint = $2 THEN k.response END
                                      AS multi_agent_outcome)]) AS r ON true
 WHERE k.key = $1;

-- name: record_session_outcome
-- Record key $1 (fingerprint $2) with answer $3 and the session $4 as it is now (in the
-- write's transaction): for writes of several statements, such as an import.
INSERT INTO idempotency_keys (key, fingerprint, status, response)
SELECT $1, $2, $3, s::text
  FROM (SELECT session_id, session_type, version, created_at, updated_at, expires_at
          FROM sessions
         WHERE session_id = $4) AS s;

-- name: sweep_idempotency_keys
-- Forget up to $2 keys recorded more than $1 seconds ago; how many went.
WITH gone AS (
    DELETE FROM idempotency_keys
     WHERE key IN (SELECT key
                     FROM idempotency_keys
                    WHERE created_at < now() - make_interval(secs => $1::float8)
                    LIMIT $2)
    RETURNING 1
)
SELECT count(*)
  FROM gone;

-- name: terminate_backend
-- Terminate the server process $1 (a connection of this service, by application name $3) that
-- a write lost its connection to, waiting up to $2 ms for it to exit; no row when it is gone.
SELECT pg_terminate_backend(pid, $2::bigint)
  FROM pg_stat_activity
 WHERE pid = $1 AND application_name = $3;

-- name: backend_alive
-- Whether server process $1 is still there (a statement of its own: a fresh activity snapshot).
SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1);
