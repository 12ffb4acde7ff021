-- Nothing changes here. SQLite's migration of this number drops two
-- indexes its commits paid for (see it); PostgreSQL has no counterpart
-- to either: its deliveries are keyed by (organization_id, id), and with
-- no stored order of insertion, retention keeps events_created_at. The
-- number is taken here too, so that one number means one schema change
-- whichever database holds it.
SELECT 1;
