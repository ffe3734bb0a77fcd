DROP TRIGGER messages_notify_delete ON messages;
DROP TRIGGER messages_notify_insert ON messages;
DROP TRIGGER agents_notify ON agents;
DROP TRIGGER sessions_notify ON sessions;
DROP FUNCTION notify_message_change();
DROP FUNCTION notify_agent_change();
DROP FUNCTION notify_session_change();
