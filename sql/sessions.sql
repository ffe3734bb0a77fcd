-- name: create_session
-- Insert a session; no row when the id is already taken (the caller then compares).
INSERT INTO sessions (session_id, session_type)
VALUES ($1, $2)
ON CONFLICT ON CONSTRAINT sessions_pkey DO NOTHING
RETURNING session_id, session_type, version, created_at, updated_at;

-- name: compare_session
-- The stored session and whether it equals the one a create asked for.
SELECT session_id, session_type, version, created_at, updated_at,
       session_type = $2 AS same
  FROM sessions
 WHERE session_id = $1;

-- name: read_session
-- One session, or no row.
SELECT session_id, session_type, version, created_at, updated_at
  FROM sessions
 WHERE session_id = $1;

-- name: session_version
-- The session's version only: existence checks and cache validation.
SELECT version
  FROM sessions
 WHERE session_id = $1;

-- name: update_session
-- Replace the session's fields; no row when missing or when $3 (If-Match) differs.
UPDATE sessions
   SET session_type = $2, version = version + 1, updated_at = now()
 WHERE session_id = $1
   AND ($3::bigint IS NULL OR version = $3)
RETURNING session_id, session_type, version, created_at, updated_at;

-- name: delete_session
-- Delete a session; its agents, messages and multi-agent states go with it (ON DELETE CASCADE).
DELETE FROM sessions
 WHERE session_id = $1
   AND ($2::bigint IS NULL OR version = $2)
RETURNING version;

-- name: list_sessions
-- A page of sessions, newest first, after the keyset position ($4, $5) when given.
SELECT session_id, session_type, version, created_at, updated_at
  FROM sessions
 WHERE ($1::timestamptz IS NULL OR created_at > $1)
   AND ($2::timestamptz IS NULL OR created_at < $2)
   AND ($3::text IS NULL OR session_type = $3)
   AND ($4::timestamptz IS NULL OR (created_at, session_id) < ($4, $5::text))
 ORDER BY created_at DESC, session_id DESC
 LIMIT $6;
