-- Event sources: tools (GitHub, GitLab, Flux, Argo CD, Qovery) that report
-- deployments to their own ingest URL, authenticated by a shared secret
-- (sealed like webhook secrets). The SQLite backend has the same table
-- under the same migration number.

CREATE TABLE sources (
	organization_id   uuid        NOT NULL,
	id                uuid        NOT NULL,
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL,
	kind              text        NOT NULL,
	name              text        NOT NULL,
	secret            text        NOT NULL,
	environment_types jsonb       NOT NULL, -- array of {pattern, type}, in order
	PRIMARY KEY (organization_id, id)
);
