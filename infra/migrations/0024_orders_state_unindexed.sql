-- Every stage moves an order's state (3.3 updates per order in the benchmark), and each
-- update wrote a new entry in this index of (state, updated_at), which nothing on the hot
-- path reads: the sweeper finds open orders through orders_open_by_age (migration 0013),
-- the progress and bench counts through the order id, and only `payflow audit` counted
-- settled and cancelled orders by state (it reads whole tables anyway). An update of 200
-- orders cost 21-25 us per row without it and 26-30 with it (docs/performance.md, step 40).
DROP INDEX orders_by_state;
