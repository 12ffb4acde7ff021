-- The queue's foreign keys go. Each check cost a row lock: a delivery's
-- insert locked its webhook's row FOR KEY SHARE (and its event's), an
-- attempt's insert its delivery's. Concurrent intakes locking the same
-- webhooks made PostgreSQL build a multixact for each new locker of a
-- row, and every lock wrote the row's header to the WAL. Without them,
-- one node's burst went from 3,086-3,441 to 3,626-3,793 events/s and a
-- 100-webhook fan-out from 9,247-9,372 to 10,090-10,153 deliveries/s
-- (same machine, alternated).
--
-- What they guaranteed is kept otherwise (see the store's code):
--   - a delivery's event: deliveries are inserted in the statement that
--     inserts their event, joined to it;
--   - a delivery's webhook: intake holds its organization's intakeLock
--     shared from before it reads the webhooks until it commits, and
--     WebhookDelete takes it exclusive before its last look at the
--     webhook's deliveries, so no delivery to a deleted webhook is ever
--     committed;
--   - an attempt's delivery: attempts are inserted in the statement that
--     updates their delivery, joined to it;
--   - the cascades: retention, a webhook's history and its delete delete
--     the attempts and deliveries they used to cascade to themselves.
--
-- During a rolling upgrade, nodes of the previous version do not take the
-- lock: an event they take in while a webhook it matches is deleted may
-- leave a delivery to the deleted webhook, which retention removes with
-- its event.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_organization_id_event_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_organization_id_webhook_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_organization_id_delivery_id_fkey;
