-- The audit trail: who changed which webhook or token, when, and what
-- changed (never a secret's value). Written in the transaction of the
-- change it records. No foreign keys: an entry outlives the webhook or
-- token it describes, and retention never deletes entries. The PostgreSQL
-- backend has the same table under the same migration number.

CREATE TABLE audit_entries (
	organization_id TEXT    NOT NULL,
	id              TEXT    NOT NULL, -- UUIDv7: newest first is id descending
	created_at      INTEGER NOT NULL,
	actor_kind      TEXT    NOT NULL,
	actor_id        TEXT    NOT NULL,
	action          TEXT    NOT NULL,
	resource_id     TEXT    NOT NULL,
	resource_name   TEXT    NOT NULL,
	changes         TEXT    NOT NULL, -- JSON array of {field, before, after, secret}
	PRIMARY KEY (organization_id, id)
) STRICT;
