-- Session leases: one holder at a time may write a session, fenced by a token.
-- A lease row lives as long as its session (ON DELETE CASCADE); tokens come from one sequence,
-- so a session id never sees a token smaller than one it saw before, also across delete and
-- re-create. An expired row is simply overwritten by the next acquire: nothing cleans up.
-- depends: 0005.exactly-once-writes

CREATE SEQUENCE session_lease_tokens AS bigint;

-- What an acquire or a renewal answered, recorded under its Idempotency-Key (see 0005).
CREATE TYPE lease_outcome AS (
    session_id text, token bigint, holder text, acquired_at timestamptz, expires_at timestamptz
);

CREATE TABLE session_leases (
    session_id  text        NOT NULL,
    token       bigint      NOT NULL,
    holder      text        NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CONSTRAINT session_leases_pkey PRIMARY KEY (session_id),
    CONSTRAINT session_leases_session_fkey FOREIGN KEY (session_id)
        REFERENCES sessions (session_id) ON DELETE CASCADE,
    CONSTRAINT session_leases_holder_check CHECK (char_length(holder) <= 255)
);

-- The fence every write under a session passes, inside the write's own statement or
-- transaction. `p_token` is the X-Session-Lease the write carries (NULL when none).
--
-- Why it is race-free: the write holds a shared transaction-level advisory lock on the session
-- id until it commits, and an acquire takes the same lock exclusively before it can commit. So
-- either the acquire committed before the write took its lock, and the lease row read below
-- sees it (a VOLATILE function reads with a fresh snapshot per statement, not the calling
-- statement's older one), or the acquire waits until the write has committed. A write with an
-- old token can never commit after a new holder's acquire. The lock lives in memory: no row is
-- locked or dirtied, so the append path writes no extra WAL and concurrent writers never wait
-- for each other.
--
-- Refusals are errors that abort the write: SQLSTATE SL409 (session_busy: a live lease and no
-- token) and SL410 (lease_lost: the token is not the live lease's), with the lease as JSON in
-- DETAIL (session_id; for SL409 also holder, expires_at and expires_in, the seconds left).
CREATE FUNCTION session_write_fence(p_session_id text, p_token bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lease record;
    live boolean;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1818583411, hashtext(p_session_id));
    SELECT token, holder, expires_at, clock_timestamp() AS now INTO lease
      FROM session_leases WHERE session_id = p_session_id;
    live := FOUND AND lease.expires_at > lease.now;
    IF p_token IS NULL THEN
        IF live THEN
            RAISE EXCEPTION 'session % is leased', p_session_id USING
                ERRCODE = 'SL409',
                DETAIL = json_build_object(
                    'session_id', p_session_id, 'holder', lease.holder,
                    'expires_at', to_char(lease.expires_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                    'expires_in', extract(epoch FROM lease.expires_at - lease.now))::text;
        END IF;
    ELSIF NOT live OR lease.token <> p_token THEN
        RAISE EXCEPTION 'the lease on session % is lost', p_session_id USING
            ERRCODE = 'SL410',
            DETAIL = json_build_object('session_id', p_session_id)::text;
    END IF;
    RETURN true;
END
$$;
