-- Event sources: tools (GitHub, GitLab, Flux, Argo CD, Qovery) that report
-- deployments to their own ingest URL, authenticated by a shared secret
-- (sealed like webhook secrets). The PostgreSQL backend has the same
-- table under the same migration number.

CREATE TABLE sources (
	organization_id   TEXT    NOT NULL,
	id                TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	kind              TEXT    NOT NULL,
	name              TEXT    NOT NULL,
	secret            TEXT    NOT NULL,
	environment_types TEXT    NOT NULL, -- JSON array of {pattern, type}, in order
	PRIMARY KEY (organization_id, id)
) STRICT;
