-- Session expiry: a session may carry `expires_at`; past it, the session is gone for every route
-- (the queries treat it as absent) until the sweeper deletes it with everything under it.
-- depends: 0002.cache-invalidation

ALTER TABLE sessions ADD COLUMN expires_at timestamptz;

-- The sweeper's scan, oldest expiry first; most sessions never expire, so they stay out of it.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at) WHERE expires_at IS NOT NULL;
