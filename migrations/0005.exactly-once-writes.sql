-- Exactly-once writes and versions that are never reused.
--
-- Versions come from one sequence for every table, so a resource deleted and created again
-- (or imported) gets a version no earlier ETag of its path ever had; If-Match, If-None-Match
-- and the strict cache compare versions and cannot confuse two incarnations.
--
-- Every write records its Idempotency-Key (the client's, or one the service makes) in its own
-- transaction, with what answers it again: the status and, for writes that answer a resource,
-- that resource as it was returned (the text of a row of one of the *_outcome types below).
-- The primary key makes a second application of the same key impossible: it waits for the
-- first and then fails, rolling back everything it did.
-- depends: 0004.storage

CREATE SEQUENCE resource_versions AS bigint;
DO $$
BEGIN
    PERFORM setval('resource_versions',
                   coalesce((SELECT max(v) FROM (SELECT max(version) AS v FROM sessions
                                                 UNION ALL SELECT max(version) FROM agents
                                                 UNION ALL SELECT max(version) FROM messages
                                                 UNION ALL SELECT max(version) FROM multi_agents)
                                                 AS m),
                            0) + 1,
                   false);
END
$$;
ALTER TABLE sessions ALTER COLUMN version SET DEFAULT nextval('resource_versions');
ALTER TABLE agents ALTER COLUMN version SET DEFAULT nextval('resource_versions');
ALTER TABLE messages ALTER COLUMN version SET DEFAULT nextval('resource_versions');
ALTER TABLE multi_agents ALTER COLUMN version SET DEFAULT nextval('resource_versions');

CREATE TABLE idempotency_keys (
    key         text COLLATE "C" NOT NULL,
    fingerprint bytea       NOT NULL,
    status      smallint    NOT NULL,
    response    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key),
    CONSTRAINT idempotency_keys_key_check CHECK (char_length(key) BETWEEN 1 AND 300)
);

-- Rows arrive in created_at order: a BRIN index serves the sweeper's range delete for almost
-- nothing per insert.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys USING brin (created_at);

-- What a write returned, in RETURNING order: `response` holds one of these as text (a batch:
-- an array of message_outcome), read back with a cast, exactly (json text, timestamps).
CREATE TYPE session_outcome AS (
    session_id text, session_type text, version bigint,
    created_at timestamptz, updated_at timestamptz, expires_at timestamptz
);
CREATE TYPE agent_outcome AS (
    session_id text, agent_id text, state json, conversation_manager_state json,
    internal_state json, version bigint, created_at timestamptz, updated_at timestamptz,
    message_count bigint
);
CREATE TYPE message_outcome AS (
    session_id text, agent_id text, message_id integer, message json, redact_message json,
    version bigint, created_at timestamptz, updated_at timestamptz
);
CREATE TYPE multi_agent_outcome AS (
    session_id text, multi_agent_id text, state json, version bigint,
    created_at timestamptz, updated_at timestamptz
);
