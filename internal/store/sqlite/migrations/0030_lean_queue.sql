-- The lean queue: events, deliveries and attempts rebuilt with compact
-- keys, only the indexes a query uses and no foreign keys. A delivered
-- event (one webhook, one attempt) took about 2,050 bytes before, 36-byte
-- text ids repeated in every row and in five b-trees per table; the
-- figure after is in docs/engine.md ("Disk").
--
-- Keys. Each table is keyed by its rowid (seq, an INTEGER PRIMARY KEY):
-- rows append in insertion order and point at each other by seq, a few
-- bytes. The public ids are UUIDs stored once, as 16-byte BLOBs, with a
-- UNIQUE index to find a row by id; every id is a UUIDv7 hookd made, so
-- one id never names rows of two organizations, and the organization is
-- checked on the row found (a delivery's, on its event), not part of any
-- key. webhook_id is the webhook's UUID as a 16-byte BLOB too (the
-- webhooks table keeps its text keys). WITHOUT ROWID tables keyed by the 16-byte id were the other
-- choice: their rows must then hold the payload in the key's b-tree, and
-- every secondary index repeats the 16-byte key instead of a rowid.
--
-- No foreign keys: the code deletes children first, in the transaction
-- that deletes their parent (retention: attempts, deliveries, events;
-- webhook delete and the claim of a delivery whose webhook is gone:
-- attempts, deliveries). With the two foreign keys on seq (ON DELETE
-- CASCADE) the store's benchmark processes took more CPU, not less:
-- 9,600 events created in batches of 64, 0.44 s against 0.31 s; the same
-- also claimed and recorded, 0.82 s against 0.78 s (user+sys, medians of
-- three alternated runs on a loaded 2-core machine).
--
-- What each index serves (checked with EXPLAIN QUERY PLAN):
--   events_id                 UNIQUE: an event by id (releasing an expired idempotency key; a duplicate id is a conflict)
--   events_idempotency        UNIQUE: the holder of an idempotency key (intake); at most one per key
--   events_created            retention (DeleteBefore): the oldest events first
--   deliveries_id             UNIQUE: a delivery by id (outcomes, release, renew, a claim's orphan)
--   deliveries_webhook        a webhook's deliveries newest first (list, its pages), one by webhook and id (get, retry), webhook delete
--   deliveries_event          an event's deliveries (retention's "all finished" and its cascade; a key holder's count)
--   deliveries_due            the queue, unfinished rows only: claim, backlog
--   deliveries_failed         recovery, failed rows only
--   attempts_webhook          a webhook's attempts newest first (list, its pages)
--   attempts_webhook_created  stats: covers every column they read
--   attempts_delivery         a delivery's attempts (list filter; the deletes of retention, webhook delete and claim)
--
-- Columns dropped, read through a join instead, so the API answers are
-- the same: a delivery's organization_id, event_id and event_type (from
-- its event), an attempt's organization_id and event_id (from its
-- delivery). A delivery's status is a small integer, not its name.
--
-- Existing rows are copied, then the old tables dropped and the new ones
-- renamed, in this migration's one transaction. The PostgreSQL backend
-- has its lean schema under the same migration number.

CREATE TABLE events_lean (
	seq              INTEGER PRIMARY KEY,
	id               BLOB    NOT NULL,
	organization_id  BLOB    NOT NULL,
	created_at       INTEGER NOT NULL,
	event_type       TEXT    NOT NULL,
	idempotency_key  TEXT,
	project_name     TEXT    NOT NULL,
	environment_mode TEXT    NOT NULL,
	content_hash     BLOB,
	payload          BLOB    NOT NULL -- the exact bytes received; last, so reading the columns before it never reads its pages
) STRICT;

CREATE TABLE deliveries_lean (
	seq              INTEGER PRIMARY KEY,
	id               BLOB    NOT NULL,
	webhook_id       BLOB    NOT NULL,
	event_seq        INTEGER NOT NULL, -- events.seq; the delivery's organization is its event's
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	-- 0 pending, 1 running, 2 succeeded, 3 failed: unfinished is below 2.
	status           INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3),
	due_at           INTEGER NOT NULL,
	attempts         INTEGER NOT NULL,
	last_status_code INTEGER NOT NULL,
	last_error       TEXT    NOT NULL,
	lease            INTEGER NOT NULL
) STRICT;

CREATE TABLE attempts_lean (
	seq           INTEGER PRIMARY KEY,
	id            BLOB    NOT NULL,
	delivery_seq  INTEGER NOT NULL, -- deliveries.seq
	webhook_id    BLOB    NOT NULL, -- for its two indexes
	created_at    INTEGER NOT NULL,
	number        INTEGER NOT NULL,
	kind          TEXT    NOT NULL,
	target_url    TEXT    NOT NULL,
	status_code   INTEGER NOT NULL,
	duration_us   INTEGER NOT NULL,
	error         TEXT    NOT NULL,
	response_body TEXT    NOT NULL
) STRICT;

-- The copy. Text ids become their 16 bytes; rows go in id order, so seq
-- order is creation order as for new rows.
INSERT INTO events_lean (id, organization_id, created_at, event_type, idempotency_key, project_name, environment_mode, content_hash, payload)
	SELECT unhex(replace(id, '-', '')), unhex(replace(organization_id, '-', '')), created_at, event_type, idempotency_key,
		project_name, environment_mode, content_hash, payload
	FROM events ORDER BY id;
-- Named as they stay: renaming a table keeps its indexes.
CREATE UNIQUE INDEX events_id ON events_lean (id);

INSERT INTO deliveries_lean (id, webhook_id, event_seq, created_at, updated_at, status, due_at, attempts,
		last_status_code, last_error, lease)
	SELECT unhex(replace(d.id, '-', '')), unhex(replace(d.webhook_id, '-', '')), e.seq, d.created_at, d.updated_at,
		CASE d.status WHEN 'pending' THEN 0 WHEN 'running' THEN 1 WHEN 'succeeded' THEN 2 WHEN 'failed' THEN 3 END,
		d.due_at, d.attempts, d.last_status_code, d.last_error, d.lease
	FROM deliveries d JOIN events_lean e ON e.id = unhex(replace(d.event_id, '-', ''))
	ORDER BY d.id;
CREATE UNIQUE INDEX deliveries_id ON deliveries_lean (id);

INSERT INTO attempts_lean (id, delivery_seq, webhook_id, created_at, number, kind, target_url, status_code, duration_us,
		error, response_body)
	SELECT unhex(replace(a.id, '-', '')), d.seq, unhex(replace(a.webhook_id, '-', '')), a.created_at, a.number, a.kind,
		a.target_url, a.status_code, a.duration_us, a.error, a.response_body
	FROM attempts a JOIN deliveries_lean d ON d.id = unhex(replace(a.delivery_id, '-', ''))
	ORDER BY a.id;

-- Children first: with foreign_keys on, dropping a parent deletes its
-- rows, which would cascade into a child table not yet dropped.
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
ALTER TABLE events_lean RENAME TO events;
ALTER TABLE deliveries_lean RENAME TO deliveries;
ALTER TABLE attempts_lean RENAME TO attempts;

CREATE UNIQUE INDEX events_idempotency ON events (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_created ON events (created_at);

CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_event ON deliveries (event_seq);
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status < 2;
CREATE INDEX deliveries_failed ON deliveries (webhook_id, created_at) WHERE status = 3;

CREATE INDEX attempts_webhook ON attempts (webhook_id, id);
CREATE INDEX attempts_webhook_created ON attempts (webhook_id, created_at, status_code, duration_us);
CREATE INDEX attempts_delivery ON attempts (delivery_seq);
