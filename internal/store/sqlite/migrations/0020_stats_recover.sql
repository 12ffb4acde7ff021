-- Health at a glance and recovery in bulk. The PostgreSQL backend has the
-- same indexes under the same migration number; keep the two in step.

-- A webhook's stats read its attempts of a window: this index holds every
-- column they need, so they never read a row (rows carry response bodies).
CREATE INDEX attempts_webhook_created ON attempts (organization_id, webhook_id, created_at, status_code, duration_us);
-- Recovery re-queues a webhook's failed deliveries of a window. Only
-- failed rows are indexed, so the queue's hot path does not pay for it.
CREATE INDEX deliveries_failed ON deliveries (organization_id, webhook_id, created_at) WHERE status = 'failed';
