-- The hash of an event's content (webhook.ContentHash), so an
-- Idempotency-Key reused with a different body is refused. Events stored
-- before it have none and conflict with nothing.
ALTER TABLE events ADD COLUMN content_hash BLOB;
