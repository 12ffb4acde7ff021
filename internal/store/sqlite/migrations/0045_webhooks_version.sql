-- A version of the webhooks table that every change to its rows moves,
-- for the writer's cache of opened webhooks (webhookCache in webhooks.go).
-- The triggers move it whoever writes: this process, another one on the
-- same file (hookd migrate --reencrypt, a second server), a migration's
-- INSERT, UPDATE or DELETE. The version is a random number, not a count:
-- a transaction that changed webhooks and rolled back leaves the version
-- it read behind, and a count would give that number again to the next
-- change, with other rows under it.
--
-- A later migration that rebuilds the webhooks table (create, copy, drop,
-- rename) drops these triggers with it: it must create them again and set
-- a new version. TestWebhooksVersionTriggers checks they are there.
CREATE TABLE webhooks_version (
	one     INTEGER PRIMARY KEY CHECK (one = 1),
	version INTEGER NOT NULL
) STRICT;
INSERT INTO webhooks_version (one, version) VALUES (1, random());

CREATE TRIGGER webhooks_inserted AFTER INSERT ON webhooks
BEGIN UPDATE webhooks_version SET version = random(); END;
CREATE TRIGGER webhooks_updated AFTER UPDATE ON webhooks
BEGIN UPDATE webhooks_version SET version = random(); END;
CREATE TRIGGER webhooks_deleted AFTER DELETE ON webhooks
BEGIN UPDATE webhooks_version SET version = random(); END;
