-- name: acquire_lease
-- Take the session's lease for holder $2 for $3 seconds when it is free or expired, recording
-- key $4 (fingerprint $5) with the answer 201; no row when a live lease is held or the session
-- is missing. The exclusive advisory lock orders the acquire after every write that passed
-- session_write_fence under the previous lease (migration 0006).
WITH live_session AS (
    SELECT s.session_id
      FROM sessions s
     CROSS JOIN LATERAL (SELECT pg_advisory_xact_lock(1818583411, hashtext(s.session_id))) AS l
     WHERE s.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())
), w AS (
    INSERT INTO session_leases AS lease (session_id, token, holder, acquired_at, expires_at)
    SELECT session_id, nextval('session_lease_tokens'), $2::text, clock_timestamp(),
           clock_timestamp() + make_interval(secs => $3::float8)
      FROM live_session
    ON CONFLICT ON CONSTRAINT session_leases_pkey DO UPDATE
       SET token = EXCLUDED.token, holder = EXCLUDED.holder,
           acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
     WHERE lease.expires_at <= clock_timestamp()
    RETURNING session_id, token, holder, acquired_at, expires_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $4, $5, 201, w::text FROM w
)
SELECT session_id, token, holder, acquired_at, expires_at,
       extract(epoch FROM expires_at - clock_timestamp())::float8 AS expires_in
  FROM w;

-- name: read_lease
-- The session's lease (live or expired) with the seconds it has left, or no row.
SELECT l.session_id, l.token, l.holder, l.acquired_at, l.expires_at,
       extract(epoch FROM l.expires_at - clock_timestamp())::float8 AS expires_in
  FROM session_leases l
  JOIN sessions s ON s.session_id = l.session_id
 WHERE l.session_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now());

-- name: renew_lease
-- Extend the live lease holding token $2 to $3 seconds from now, recording key $4 (fingerprint
-- $5) with the answer 200; no row when it is not live. Under the exclusive lock too: a write
-- without a token that saw the lease expired commits before the renewal does, never after it.
WITH w AS (
    UPDATE session_leases AS lease
       SET expires_at = clock_timestamp() + make_interval(secs => $3::float8)
      FROM (SELECT pg_advisory_xact_lock(1818583411, hashtext($1))) AS l
     WHERE lease.session_id = $1 AND lease.token = $2 AND lease.expires_at > clock_timestamp()
    RETURNING lease.session_id, lease.token, lease.holder, lease.acquired_at, lease.expires_at
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status, response)
    SELECT $4, $5, 200, w::text FROM w
)
SELECT session_id, token, holder, acquired_at, expires_at,
       extract(epoch FROM expires_at - clock_timestamp())::float8 AS expires_in
  FROM w;

-- name: release_lease
-- End the lease holding token $2, if it still does, recording key $3 (fingerprint $4) with the
-- answer 204; releasing twice changes nothing.
WITH w AS (
    DELETE FROM session_leases
     WHERE session_id = $1 AND token = $2
    RETURNING session_id
), k AS (
    INSERT INTO idempotency_keys (key, fingerprint, status)
    SELECT $3, $4, 204 FROM w
)
SELECT session_id
  FROM w;

-- name: replay_lease
-- An acquire or renewal answered before under key $1 (fingerprint $2), with the seconds left now.
SELECT k.fingerprint = $2 AS same, k.status, r.*,
       extract(epoch FROM r.expires_at - clock_timestamp())::float8 AS expires_in
  FROM idempotency_keys k
  LEFT JOIN LATERAL unnest(ARRAY[CAST(CASE WHEN k.fingerprint = $2 THEN k.response END
                                      AS lease_outcome)]) AS r ON true
 WHERE k.key = $1;

-- name: session_write_fence
-- The fence as a statement of its own, for a write that runs several statements in one
-- transaction: raises SL409 / SL410 (see migration 0006), else true.
SELECT session_write_fence($1, $2::bigint);
