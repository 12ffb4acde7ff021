-- Two indexes of migration 0030 go. Every commit writes each page it
-- changed to the WAL, and in a burst these two were about a sixth of the
-- frames a commit wrote (a trace of hookd's WAL writes: 3.9 of 22.5 per
-- fsync), for lookups the remaining indexes serve as well:
--
--   events_created  served retention alone. DeleteBefore now walks the
--                   events in seq order, the order they were stored in,
--                   up to the first young one (see its comment).
--   deliveries_id   found a delivery by its id alone. Every lookup now
--                   names its webhook too (a DeliveryRef carries it), and
--                   deliveries_webhook (webhook_id, id) finds the row.
--
-- Delivery ids stay unique as they were made: UUIDv7s, made by hookd, with
-- 74 random bits; PostgreSQL keeps its primary key on them.
DROP INDEX events_created;
DROP INDEX deliveries_id;
