-- Drops what 0004 created.
DROP TABLE storage_objects;
