-- A leaner log: every index below is one some query of this backend uses
-- (checked with EXPLAIN on a 200,000-delivery database), and no column of
-- an attempt repeats what its delivery holds. The SQLite backend has its
-- own lean schema under the same migration number.
--
-- attempts had a primary key (organization_id, id) that no query reads,
-- beside attempts_webhook (organization_id, webhook_id, id) that the
-- delivery log pages by: one b-tree written per attempt for nothing. The
-- page key becomes the primary key (still unique: ids are), and the
-- other two go. Rebuilding the key locks the table for as long as it takes
-- to read the attempts once: outcomes wait meanwhile (intake does not).
ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
DROP INDEX attempts_webhook;
ALTER TABLE attempts ADD CONSTRAINT attempts_pkey PRIMARY KEY (organization_id, webhook_id, id);

-- An attempt's event is its delivery's: the delivery log joins through
-- the delivery (one key lookup per attempt shown) instead of storing the
-- event's id again in every attempt; new attempts leave it NULL (a bit of
-- the row's null bitmap instead of 16 bytes). Not dropped yet: nodes of
-- the previous version, still running during a rolling upgrade, write and
-- join it; a later migration drops it.
ALTER TABLE attempts ALTER COLUMN event_id DROP NOT NULL;

-- What each remaining index serves:
--
-- webhooks_pkey (organization_id, id): every webhook read; intake reads an
--   organization's webhooks by its prefix.
-- api_tokens_pkey (id), api_tokens_hash_key (hash): revoke and touch by id,
--   authentication by hash. api_tokens_organization_id: TokenList.
-- events_pkey (organization_id, id): the events of claimed deliveries,
--   idempotency-key releases, the delivery log's join.
-- events_idempotency_key (organization_id, idempotency_key) WHERE key
--   IS NOT NULL: intake's ON CONFLICT and its read of the key holders.
-- events_created_at (created_at): retention (DeleteBefore).
-- deliveries_pkey (organization_id, id): outcomes, releases, renewals and
--   the claim's UPDATE find their row by it.
-- deliveries_due (due_at) WHERE status IN ('pending', 'running'): the
--   queue. Only unfinished rows are in it: the claim's scan in due order,
--   DeliveryBacklog (index-only), retention's check for queued deliveries.
-- deliveries_webhook (organization_id, webhook_id, id): DeliveryList and
--   DeliveryGet/DeliveryRetry (by webhook and id), the batches of
--   WebhookDelete, the cascade of a webhook's delete.
-- deliveries_event (organization_id, event_id): how many deliveries a
--   replayed key's event has (intake), the cascade of retention.
-- deliveries_failed (organization_id, webhook_id, created_at) WHERE
--   status = 'failed': DeliveryRecover, and DeliveryList of failed ones.
-- attempts_pkey (organization_id, webhook_id, id): AttemptList.
-- attempts_delivery (organization_id, delivery_id): AttemptList of one
--   delivery, the cascade of a delivery's delete.
-- attempts_webhook_created (organization_id, webhook_id, created_at)
--   INCLUDE (status_code, duration_us): AttemptStats, index-only.
--
-- No fillfactor: no update of a queued delivery can be HOT. The claim,
-- renewals and retries change due_at, a key of deliveries_due, and every
-- outcome changes status, a column of the partial indexes' predicates
-- (PostgreSQL treats those as indexed too); keeping the queue index to
-- unfinished rows is worth more than HOT would be. The one frequent
-- update that could be HOT, an outcome's failing_since on webhooks,
-- touches no indexed column and already is.
