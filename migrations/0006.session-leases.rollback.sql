-- Drops what 0006 created.
DROP FUNCTION session_write_fence(text, bigint);
DROP TABLE session_leases;
DROP TYPE lease_outcome;
DROP SEQUENCE session_lease_tokens;
