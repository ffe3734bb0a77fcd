-- The Strands `Storage` protocol: opaque bytes under keys (docs/lifecycle.md). Keys are
-- COLLATE "C" (migration 0004): the bounds below are compared byte-wise, as the index is.

-- name: write_object
-- Store $2 under $1, replacing any value (an atomic upsert); records key $3 (fingerprint $4)
-- with the answer 204.
WITH w AS (
    INSERT INTO storage_objects (key, data)
    VALUES ($1, $2)
    ON CONFLICT ON CONSTRAINT storage_objects_pkey
    DO UPDATE SET data = excluded.data, updated_at = now()
)
INSERT INTO idempotency_keys (key, fingerprint, status)
VALUES ($3, $4, 204);

-- name: read_object
-- The bytes under a key, or no row.
SELECT data
  FROM storage_objects
 WHERE key = $1;

-- name: delete_object
-- Delete a key if present; records key $2 (fingerprint $3) with the answer 204 either way.
WITH w AS (
    DELETE FROM storage_objects
     WHERE key = $1
)
INSERT INTO idempotency_keys (key, fingerprint, status)
VALUES ($2, $3, 204);

-- name: list_objects
-- Up to $4 keys in [$1, $3) after $2, in key order: a range scan of the primary key.
SELECT key
  FROM storage_objects
 WHERE key >= $1 AND key > $2 AND key < $3
 ORDER BY key
 LIMIT $4;

-- name: list_objects_unbounded
-- Up to $3 keys from $1 on after $2, in key order: prefixes with no upper bound (e.g. '').
SELECT key
  FROM storage_objects
 WHERE key >= $1 AND key > $2
 ORDER BY key
 LIMIT $3;

-- name: scan_objects
-- Keys and sizes in [$1, $2) in key order, read through a cursor by search (octet_length reads
-- the size without fetching the value).
SELECT key, octet_length(data) AS size
  FROM storage_objects
 WHERE key >= $1 AND key < $2
 ORDER BY key;

-- name: scan_objects_unbounded
-- Keys and sizes from $1 on in key order, read through a cursor by search.
SELECT key, octet_length(data) AS size
  FROM storage_objects
 WHERE key >= $1
 ORDER BY key;

-- name: read_objects
-- The bytes under keys $1, in key order: a search reads a bounded group at a time.
SELECT key, data
  FROM storage_objects
 WHERE key = ANY($1::text[])
 ORDER BY key;
