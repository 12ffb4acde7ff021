-- A fencing token for each delivery's lease: every claim increments it,
-- and an outcome, renewal or release is applied only with the token of
-- the claim it was made under, so a worker whose lease expired cannot
-- overwrite the work of the one that took over. Rows running when this is
-- applied get 0, like the tasks that hold them. The PostgreSQL backend has
-- the same column under the same migration number.
ALTER TABLE deliveries ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;
