-- Nothing changes here: PostgreSQL's migration of this number drops the
-- trigger that deleted a webhook's deliveries with its row, as its
-- purger now does it in the background, like this backend's (which never
-- had such a trigger). The number is taken here too, so that one number
-- means one schema change whichever database holds it.
SELECT 1;
