-- Drops what 0005 created; versions go back to starting at 1.
DROP TYPE multi_agent_outcome;
DROP TYPE message_outcome;
DROP TYPE agent_outcome;
DROP TYPE session_outcome;
DROP TABLE idempotency_keys;
ALTER TABLE multi_agents ALTER COLUMN version SET DEFAULT 1;
ALTER TABLE messages ALTER COLUMN version SET DEFAULT 1;
ALTER TABLE agents ALTER COLUMN version SET DEFAULT 1;
ALTER TABLE sessions ALTER COLUMN version SET DEFAULT 1;
DROP SEQUENCE resource_versions;
