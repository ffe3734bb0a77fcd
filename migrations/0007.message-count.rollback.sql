-- Back to 0002's unconditional notices (messages included) and counted message_count.
DROP FUNCTION iso_timestamp(timestamptz);

CREATE FUNCTION notify_message_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_cache', json_build_array('a', c.session_id, c.agent_id)::text)
       FROM (SELECT DISTINCT session_id, agent_id FROM changed) AS c;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_notify_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_message_change();

CREATE TRIGGER messages_notify_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_message_change();

CREATE OR REPLACE FUNCTION notify_agent_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_cache',
                      json_build_array('a', OLD.session_id, OLD.agent_id)::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_cache', json_build_array('s', OLD.session_id)::text);
    RETURN NULL;
END
$$;

DROP TABLE cache_listeners;
ALTER TABLE agents DROP COLUMN message_count;
