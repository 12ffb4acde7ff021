-- Nothing changes here: PostgreSQL's migration of this number drops the
-- foreign keys of its queue, and this backend's lean queue (0030) never
-- had any (its one writer serializes intake and deletes). The number is
-- taken here too, so that one number means one schema change whichever
-- database holds it.
SELECT 1;
