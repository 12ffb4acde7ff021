-- Signing-secret rotation: the secret a webhook's target_secret replaced
-- (sealed like it, empty when there is nothing to roll) and when, so
-- deliveries are signed with both for a grace period. The SQLite backend
-- has the same migration number; keep the two in step.

ALTER TABLE webhooks
	ADD COLUMN previous_secret   text NOT NULL DEFAULT '',
	ADD COLUMN secret_rotated_at timestamptz;
