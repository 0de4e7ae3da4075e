-- A stock hold is written by order build and changed once (sold or released) by
-- settlement; a transaction is written by fund freeze and changed once or twice (paid,
-- settled or cancelled). No change touches an indexed column, so each can be a HOT update:
-- the new version on the row's own page, no new index entry and no tuple lock written
-- for the move, about half the update's cost. Filled pages left no room for it: 1.4 of a
-- stock hold's 2 updates per order and 0.6 of a transaction's 1 went to another page and
-- into every index (docs/performance.md, step 55). New pages now keep room for a new
-- version of every row on them, since one settlement batch may resolve them all at once:
-- a resolved hold is 8 bytes longer (resolved_at), so a hold's page is filled to 45 %; a
-- transaction's new status is never longer than the one it replaces.
ALTER TABLE stock_holds SET (fillfactor = 45);
ALTER TABLE transactions SET (fillfactor = 50);
