-- The outbox rows still owed to Kafka are found through this narrow table (a row per
-- unpublished outbox row, written with it and deleted when it is published) instead of a
-- partial index on published_at. With no index reading published_at, marking a row
-- published is a HOT update: a new version of the row on its own page and no index entry,
-- where it was a new version in every index of a wide row (docs/performance.md, step
-- 29). outbox.published_at keeps its meaning: NULL until the broker has the message.
CREATE TABLE outbox_pending (
    outbox_id  bigint      PRIMARY KEY,
    created_at timestamptz NOT NULL
);
INSERT INTO outbox_pending (outbox_id, created_at)
    SELECT outbox_id, created_at FROM outbox WHERE published_at IS NULL;
DROP INDEX outbox_unpublished;
-- Half of each new page is left free for its rows' published versions (a HOT update needs
-- room on the row's page).
ALTER TABLE outbox SET (fillfactor = 50);
