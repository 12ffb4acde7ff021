-- The audit trail: who changed which webhook or token, when, and what
-- changed (never a secret's value). Written in the transaction of the
-- change it records. No foreign keys: an entry outlives the webhook or
-- token it describes, and retention never deletes entries. The SQLite
-- backend has the same table under the same migration number.

-- changes is json, not jsonb, so each change's values come back as the
-- bytes written.
CREATE TABLE audit_entries (
	organization_id uuid        NOT NULL,
	id              uuid        NOT NULL, -- UUIDv7: newest first is id descending
	created_at      timestamptz NOT NULL,
	actor_kind      text        NOT NULL,
	actor_id        text        NOT NULL,
	action          text        NOT NULL,
	resource_id     uuid        NOT NULL,
	resource_name   text        NOT NULL,
	changes         json        NOT NULL, -- array of {field, before, after, secret}
	PRIMARY KEY (organization_id, id)
);
