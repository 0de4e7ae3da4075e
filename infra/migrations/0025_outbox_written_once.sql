-- A stage's outbox rows are written once and never updated: they are owed until the stage
-- commits their causes' offsets (a redelivered cause republishes them from the outbox), so
-- they get no outbox_pending row and no publish mark (docs/performance.md, step 48). Only
-- the rows of producers without an input topic (the sweeper, operators' commands: a few)
-- are still marked, so the room left on each page for their published versions (0022) is
-- given back: new pages are filled.
ALTER TABLE outbox SET (fillfactor = 100);
