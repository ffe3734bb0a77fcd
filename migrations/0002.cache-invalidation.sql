-- Cache invalidation across replicas: every committed change to a session, an agent or an
-- agent's messages sends a notice on the channel `session_cache`. NOTIFY is transactional:
-- notices are delivered only on COMMIT, and identical ones in a transaction are sent once.
-- Payloads: ["s", session_id] or ["a", session_id, agent_id].
-- Triggers rather than application code, so that every writer (cascades, maintenance commands,
-- other replicas, manual SQL) is covered.
-- depends: 0001.initial-schema

CREATE FUNCTION notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_cache', json_build_array('s', OLD.session_id)::text);
    RETURN NULL;
END
$$;

CREATE FUNCTION notify_agent_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_cache',
                      json_build_array('a', OLD.session_id, OLD.agent_id)::text);
    RETURN NULL;
END
$$;

-- Messages change their agent's message_count: one notice per agent per statement.
CREATE FUNCTION notify_message_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_cache', json_build_array('a', c.session_id, c.agent_id)::text)
       FROM (SELECT DISTINCT session_id, agent_id FROM changed) AS c;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_notify AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_session_change();

CREATE TRIGGER agents_notify AFTER UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION notify_agent_change();

CREATE TRIGGER messages_notify_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_message_change();

CREATE TRIGGER messages_notify_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_message_change();
