-- A branch ends once: Confirm or Cancel, never both. The unique key says so to the server,
-- so a Confirm racing a Cancel is decided by the index (the second waits for the first to
-- commit, then does nothing) rather than by a lock and a second look: the barrier's usual
-- Confirm or Cancel is one statement (workers/tcc/barrier.py).
CREATE UNIQUE INDEX tcc_barrier_one_outcome ON tcc_barrier (gid, branch) WHERE phase <> 'try';
