-- Signing-secret rotation: the secret a webhook's target_secret replaced
-- (sealed like it, empty when there is nothing to roll) and when, so
-- deliveries are signed with both for a grace period. The PostgreSQL
-- backend has the same migration number; keep the two in step.

ALTER TABLE webhooks ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN secret_rotated_at INTEGER;
