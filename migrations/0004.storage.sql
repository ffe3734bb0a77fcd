-- Opaque bytes under string keys: the Strands `Storage` protocol (strands.storage) over HTTP.
-- Keys are compared byte-wise (COLLATE "C", which in UTF-8 is code point order, the order
-- Python's sorted() gives), so the primary key serves prefix listings as a range scan
-- (key >= prefix AND key < successor(prefix)) in the order the protocol asks for.
-- depends: 0003.session-expiry

CREATE TABLE storage_objects (
    key        text COLLATE "C" NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT storage_objects_pkey PRIMARY KEY (key),
    CONSTRAINT storage_objects_key_check CHECK (octet_length(key) BETWEEN 1 AND 1024)
);
