-- Taken first, webhooks before the queue as intake and completions take
-- them: dropping a foreign key locks both of its tables, and taken one by
-- one, in the order of the statements below, they deadlocked with the
-- nodes still serving (a review reproduced it in 5 runs of 6).
LOCK TABLE webhooks, events, deliveries, attempts IN ACCESS EXCLUSIVE MODE;

-- The queue's foreign keys go. Each check cost a row lock: a delivery's
-- insert locked its webhook's row FOR KEY SHARE (and its event's), an
-- attempt's insert its delivery's. Concurrent intakes locking the same
-- webhooks made PostgreSQL build a multixact for each new locker of a
-- row, and every lock wrote the row's header to the WAL. Without them,
-- one node's burst went from 3,458-3,668 to 3,709-3,805 events/s and a
-- 100-webhook fan-out from 9,356-9,625 to 9,813-10,273 deliveries/s,
-- with 5-6 % less CPU on the whole machine (same machine, alternated).
--
-- What they guaranteed is kept otherwise:
--   - a delivery's event: deliveries are inserted in the statement that
--     inserts their event, joined to it;
--   - an attempt's delivery: attempts are inserted in the statement that
--     updates their delivery, joined to it;
--   - a delivery's webhook: intake holds intakeLock shared from before
--     it reads the webhooks until it commits, and WebhookDelete takes it
--     exclusive before it deletes the webhook row (see the store's code),
--     so no delivery to a deleted webhook is committed. Nodes of the
--     previous version neither take nor wait for it: during a rolling
--     upgrade, an intake racing a webhook's delete, one of them on such a
--     node, may commit a delivery to the deleted webhook. Leased at
--     intake, it may be sent once more; a claim that finds one deletes
--     it, and retention deletes those finished with their event;
--   - the cascades: the triggers below. Set-based, once per statement.
--     Each DELETE they run is planned anew (EXECUTE: a plan kept from a
--     first, large delete scanned whole tables for every later small
--     one), names its table in the schema of the table that fired it
--     (not through the caller's search_path), and, under READ COMMITTED,
--     takes a snapshot of its own, so, like the cascades, they also
--     delete rows committed while the statement that fired them waited
--     for a lock. Nodes of the previous version rely on them too.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_organization_id_event_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_organization_id_webhook_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_organization_id_delivery_id_fkey;

-- TG_ARGV: the child table, and its column holding the parent's id.
CREATE FUNCTION hookd_delete_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('DELETE FROM %I.%I c USING gone g WHERE c.organization_id = g.organization_id AND c.%I = g.id',
		TG_TABLE_SCHEMA, TG_ARGV[0], TG_ARGV[1]);
	RETURN NULL;
END $$;
CREATE TRIGGER events_delete_deliveries AFTER DELETE ON events
	REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION hookd_delete_children('deliveries', 'event_id');
CREATE TRIGGER webhooks_delete_deliveries AFTER DELETE ON webhooks
	REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION hookd_delete_children('deliveries', 'webhook_id');
CREATE TRIGGER deliveries_delete_attempts AFTER DELETE ON deliveries
	REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION hookd_delete_children('attempts', 'delivery_id');
