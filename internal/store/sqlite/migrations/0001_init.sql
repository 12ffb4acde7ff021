-- Times are unix microseconds UTC; ids are canonical lowercase UUID text,
-- so ordering ids as text is ordering UUIDv7s by creation.

CREATE TABLE webhooks (
	organization_id          TEXT    NOT NULL,
	id                       TEXT    NOT NULL,
	created_at               INTEGER NOT NULL,
	updated_at               INTEGER NOT NULL,
	kind                     TEXT    NOT NULL,
	target_url               TEXT    NOT NULL,
	target_secret            TEXT    NOT NULL,
	description              TEXT    NOT NULL,
	enabled                  INTEGER NOT NULL,
	events                   TEXT    NOT NULL, -- JSON array
	project_names_filter     TEXT    NOT NULL, -- JSON array
	environment_types_filter TEXT    NOT NULL, -- JSON array
	disabled_reason          TEXT    NOT NULL,
	failing_since            INTEGER,
	PRIMARY KEY (organization_id, id)
) STRICT;

CREATE TABLE api_tokens (
	id              TEXT    NOT NULL PRIMARY KEY,
	organization_id TEXT    NOT NULL,
	name            TEXT    NOT NULL,
	hash            BLOB    NOT NULL UNIQUE,
	created_at      INTEGER NOT NULL,
	last_used_at    INTEGER,
	revoked_at      INTEGER
) STRICT;
CREATE INDEX api_tokens_organization ON api_tokens (organization_id);

CREATE TABLE events (
	organization_id  TEXT    NOT NULL,
	id               TEXT    NOT NULL,
	created_at       INTEGER NOT NULL,
	event_type       TEXT    NOT NULL,
	idempotency_key  TEXT,
	project_name     TEXT    NOT NULL,
	environment_mode TEXT    NOT NULL,
	payload          BLOB    NOT NULL, -- the exact bytes received
	PRIMARY KEY (organization_id, id)
) STRICT;
CREATE UNIQUE INDEX events_idempotency ON events (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_created ON events (created_at);

CREATE TABLE deliveries (
	organization_id  TEXT    NOT NULL,
	id               TEXT    NOT NULL,
	webhook_id       TEXT    NOT NULL,
	event_id         TEXT    NOT NULL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	status           TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
	due_at           INTEGER NOT NULL,
	attempts         INTEGER NOT NULL,
	last_status_code INTEGER NOT NULL,
	last_error       TEXT    NOT NULL,
	event_type       TEXT    NOT NULL,
	PRIMARY KEY (organization_id, id),
	FOREIGN KEY (organization_id, event_id) REFERENCES events (organization_id, id) ON DELETE CASCADE,
	FOREIGN KEY (organization_id, webhook_id) REFERENCES webhooks (organization_id, id) ON DELETE CASCADE
) STRICT;
-- The queue: only unfinished rows, in due order.
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status IN ('pending', 'running');
CREATE INDEX deliveries_webhook ON deliveries (organization_id, webhook_id, id);
-- Without it, deleting an event (retention) scans deliveries for the cascade.
CREATE INDEX deliveries_event ON deliveries (organization_id, event_id);

CREATE TABLE attempts (
	organization_id TEXT    NOT NULL,
	id              TEXT    NOT NULL,
	delivery_id     TEXT    NOT NULL,
	webhook_id      TEXT    NOT NULL,
	event_id        TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	number          INTEGER NOT NULL,
	kind            TEXT    NOT NULL,
	target_url      TEXT    NOT NULL,
	status_code     INTEGER NOT NULL,
	response_body   TEXT    NOT NULL,
	duration_us     INTEGER NOT NULL,
	error           TEXT    NOT NULL,
	PRIMARY KEY (organization_id, id),
	FOREIGN KEY (organization_id, delivery_id) REFERENCES deliveries (organization_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX attempts_webhook ON attempts (organization_id, webhook_id, id);
CREATE INDEX attempts_delivery ON attempts (organization_id, delivery_id);
