-- hookd's initial schema. The SQLite backend has the same tables under the
-- same migration number; keep the two in step.

CREATE TABLE webhooks (
	organization_id          uuid        NOT NULL,
	id                       uuid        NOT NULL,
	created_at               timestamptz NOT NULL,
	updated_at               timestamptz NOT NULL,
	kind                     text        NOT NULL,
	target_url               text        NOT NULL,
	target_secret            text        NOT NULL DEFAULT '',
	description              text        NOT NULL DEFAULT '',
	enabled                  boolean     NOT NULL,
	events                   text[]      NOT NULL,
	project_names_filter     text[]      NOT NULL,
	environment_types_filter text[]      NOT NULL,
	disabled_reason          text        NOT NULL DEFAULT '',
	failing_since            timestamptz,
	PRIMARY KEY (organization_id, id)
);

CREATE TABLE api_tokens (
	id              uuid        PRIMARY KEY,
	organization_id uuid        NOT NULL,
	name            text        NOT NULL,
	hash            bytea       NOT NULL UNIQUE,
	created_at      timestamptz NOT NULL,
	last_used_at    timestamptz,
	revoked_at      timestamptz
);
CREATE INDEX api_tokens_organization_id ON api_tokens (organization_id);

-- payload is json, not jsonb, so the bytes come back exactly as sent.
CREATE TABLE events (
	organization_id  uuid        NOT NULL,
	id               uuid        NOT NULL,
	created_at       timestamptz NOT NULL,
	event_type       text        NOT NULL,
	idempotency_key  text,
	project_name     text        NOT NULL,
	environment_mode text        NOT NULL,
	payload          json        NOT NULL,
	PRIMARY KEY (organization_id, id)
);
CREATE UNIQUE INDEX events_idempotency_key ON events (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE deliveries (
	organization_id  uuid        NOT NULL,
	id               uuid        NOT NULL,
	webhook_id       uuid        NOT NULL,
	event_id         uuid        NOT NULL,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL,
	status           text        NOT NULL,
	due_at           timestamptz NOT NULL,
	attempts         int         NOT NULL DEFAULT 0,
	last_status_code int         NOT NULL DEFAULT 0,
	last_error       text        NOT NULL DEFAULT '',
	event_type       text        NOT NULL,
	PRIMARY KEY (organization_id, id),
	FOREIGN KEY (organization_id, event_id) REFERENCES events ON DELETE CASCADE,
	FOREIGN KEY (organization_id, webhook_id) REFERENCES webhooks ON DELETE CASCADE
);
-- The queue: only pending and running rows are ever claimed.
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status IN ('pending', 'running');
CREATE INDEX deliveries_webhook ON deliveries (organization_id, webhook_id, id);
-- Deleting old events cascades here, and replayed receipts count an
-- event's deliveries: without this both scan the table.
CREATE INDEX deliveries_event ON deliveries (organization_id, event_id);

CREATE TABLE attempts (
	organization_id uuid        NOT NULL,
	id              uuid        NOT NULL,
	delivery_id     uuid        NOT NULL,
	webhook_id      uuid        NOT NULL,
	event_id        uuid        NOT NULL,
	created_at      timestamptz NOT NULL,
	number          int         NOT NULL,
	kind            text        NOT NULL,
	target_url      text        NOT NULL,
	status_code     int         NOT NULL,
	response_body   text        NOT NULL,
	duration_us     bigint      NOT NULL,
	error           text        NOT NULL,
	PRIMARY KEY (organization_id, id),
	FOREIGN KEY (organization_id, delivery_id) REFERENCES deliveries ON DELETE CASCADE
);
CREATE INDEX attempts_webhook ON attempts (organization_id, webhook_id, id);
CREATE INDEX attempts_delivery ON attempts (organization_id, delivery_id);
