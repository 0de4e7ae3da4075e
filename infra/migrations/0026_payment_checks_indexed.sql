-- The sweeper asks every few seconds which payments are due for a check: open ones past
-- their next check (or, never checked, past the callback grace) and expired ones still to
-- void. The old index (next_check_at, open statuses) could serve neither the due time the
-- query sorts by nor the expired ones, so each pass read the whole table: 190 ms at a
-- million payments, growing with every order ever paid (docs/performance.md, step 49).
-- This index holds only the payments the sweeper may still act on, keyed by that due time;
-- an expired payment with no check scheduled (nothing was left to void) is not one of them.
DROP INDEX payment_requests_due;
CREATE INDEX payment_requests_check_due ON payment_requests ((coalesce(next_check_at, created_at)))
    WHERE status IN ('requesting', 'pending', 'unknown')
       OR (status = 'expired' AND next_check_at IS NOT NULL);
