-- Nothing changes here: SQLite's migration of this number gives its
-- webhooks table a version for the writer's cache of opened webhooks, and
-- this backend has no such cache (several nodes write its webhooks). The
-- number is taken here too, so that one number means one schema change
-- whichever database holds it.
SELECT 1;
