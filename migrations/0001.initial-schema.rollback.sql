-- Drops everything 0001 created.
DROP TABLE multi_agents;
DROP TABLE messages;
DROP TABLE agents;
DROP TABLE sessions;
DROP TABLE service_meta;
