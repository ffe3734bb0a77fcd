-- Cheaper appends and agent reads.
--
-- 1. `agents.message_count`, kept by the very statements that insert and delete messages
--    (sql/messages.sql, sql/transfer.sql: a data-modifying CTE in the same statement), instead
--    of a count(*) over the agent's messages on every agent read, update and strict cache check.
--    Every writer of `messages` must keep it: a service older than this migration does not, so
--    stop older replicas before applying it (it backfills the counts of existing agents).
-- 2. Cache notices only while someone needs them. Only `CACHE_MODE=bounded` replicas rely on
--    notices (a `strict` one checks every hit against the database), and a notifying commit
--    takes a cluster-wide lock that serialises all notifying commits. A bounded replica's
--    listener registers its connection in `cache_listeners`; the triggers notify only while a
--    registration exists. The message triggers go: inserting or deleting messages updates the
--    agent's `message_count`, whose row trigger sends the agent-level notice bounded replicas
--    need (one per statement and agent, as before).
-- 3. `iso_timestamp(t)`: the contract's timestamp text, formatted by PostgreSQL.
-- depends: 0006.session-leases

ALTER TABLE agents ADD COLUMN message_count bigint NOT NULL DEFAULT 0;

UPDATE agents a
   SET message_count = c.n
  FROM (SELECT session_id, agent_id, count(*) AS n
          FROM messages
         GROUP BY session_id, agent_id) AS c
 WHERE a.session_id = c.session_id AND a.agent_id = c.agent_id;

ALTER TABLE agents ADD CONSTRAINT agents_message_count_check CHECK (message_count >= 0);

-- One row per listening connection of a bounded-mode replica (its backend pid). A row left by
-- a replica that died only costs notices nobody reads; the next registration removes it.
CREATE TABLE cache_listeners (
    backend_pid   integer     NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cache_listeners_pkey PRIMARY KEY (backend_pid)
);

CREATE OR REPLACE FUNCTION notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM cache_listeners) THEN
        PERFORM pg_notify('session_cache', json_build_array('s', OLD.session_id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION notify_agent_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM cache_listeners) THEN
        PERFORM pg_notify('session_cache',
                          json_build_array('a', OLD.session_id, OLD.agent_id)::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER messages_notify_insert ON messages;
DROP TRIGGER messages_notify_delete ON messages;
DROP FUNCTION notify_message_change();

-- The text of Python's datetime.isoformat(timespec="microseconds") for a UTC instant,
-- e.g. 2026-01-02T03:04:05.000006+00:00. An SQL function: the planner inlines it.
CREATE FUNCTION iso_timestamp(t timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"');
