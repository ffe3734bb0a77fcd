-- name: create_session
-- Insert a session expiring at $3, or $4 seconds from now, recording key $5 (fingerprint $6)
-- with the answer 201; no row when the id is taken.
WITH w AS (
    INSERT INTO sessions (session_id, session_type, expires_at)
    VALUES ($1, $2, COALESCE(now() + make_interval(secs => $4::float8), $3::timestamptz))
    ON CONFLICT ON CONSTRAINT sessions_pkey DO NOTHING
    RETURNING session_id, session_type, version, created_at, updated_at, expires_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $5, $6, 201, w::text FROM w
)
SELECT session_id, session_type, version, created_at, updated_at, expires_at
  FROM w;

-- name: delete_expired_session
-- Delete the session only if it has expired: a create or import then takes its id.
DELETE FROM sessions
 WHERE session_id = $1 AND expires_at <= now()
RETURNING session_id;

-- name: compare_session
-- The stored session and whether it equals the one a create asked for.
SELECT session_id, session_type, version, created_at, updated_at, expires_at,
       session_type = $2 AS same
  FROM sessions
 WHERE session_id = $1 AND (expires_at IS NULL OR expires_at > now());

-- name: read_session
-- One session, or no row when it does not exist or has expired.
SELECT session_id, session_type, version, created_at, updated_at, expires_at
  FROM sessions
 WHERE session_id = $1 AND (expires_at IS NULL OR expires_at > now());

-- name: session_version
-- The session's version only (no row once expired): existence checks and cache validation.
SELECT version
  FROM sessions
 WHERE session_id = $1 AND (expires_at IS NULL OR expires_at > now());

-- name: update_session
-- Replace the session's fields (expiry: $4 says whether to set it to $5, or $6 seconds from now),
-- recording key $7 (fingerprint $8) with the answer 200.
-- $9: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    UPDATE sessions
       SET session_type = $2, version = nextval('resource_versions'), updated_at = now(),
           expires_at = CASE WHEN $6::float8 IS NOT NULL THEN now() + make_interval(secs => $6)
                             WHEN $4::boolean THEN $5::timestamptz
                             ELSE expires_at END
     WHERE session_id = $1 AND (expires_at IS NULL OR expires_at > now())
       AND ($3::bigint IS NULL OR version = $3)
       AND (SELECT session_write_fence($1, $9::bigint))
    RETURNING session_id, session_type, version, created_at, updated_at, expires_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $7, $8, 200, w::text FROM w
)
SELECT session_id, session_type, version, created_at, updated_at, expires_at
  FROM w;

-- name: delete_session
-- Delete a session; its agents, messages and multi-agent states go with it (ON DELETE CASCADE).
-- Records key $3 (fingerprint $4) with the answer 204.
-- $5: the X-Session-Lease token, checked by session_write_fence (migration 0006).
WITH w AS (
    DELETE FROM sessions
     WHERE session_id = $1 AND (expires_at IS NULL OR expires_at > now())
       AND ($2::bigint IS NULL OR version = $2)
       AND (SELECT session_write_fence($1, $5::bigint))
    RETURNING version
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status)
    SELECT $3, $4, 204 FROM w
)
SELECT version
  FROM w;

-- name: list_sessions
-- A page of unexpired sessions, newest first, after the keyset position ($4, $5) when given.
SELECT session_id, session_type, version, created_at, updated_at, expires_at
  FROM sessions
 WHERE (expires_at IS NULL OR expires_at > now())
   AND ($1::timestamptz IS NULL OR created_at > $1)
   AND ($2::timestamptz IS NULL OR created_at < $2)
   AND ($3::text IS NULL OR session_type = $3)
   AND (created_at, session_id) < (coalesce($4::timestamptz, 'infinity'), coalesce($5::text, ''))
 ORDER BY created_at DESC, session_id DESC
 LIMIT $6;
