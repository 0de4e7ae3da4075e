"""The audit's checks of our own books (FIELD-NOTES section 4): the ledger balances, holds
match what they froze, orders, stock, wallet operations and refunds posted exactly once.

Each check is one SQL query that returns the offending rows; a clean database returns none.
"""

from workers.ops.audit_check import Check, posted_under

BOOKS = [
    Check(
        "money_conserved_per_currency",
        "the balances of all accounts sum to zero per currency (every entry has two sides)",
        "SELECT count(DISTINCT currency) FROM accounts",
        """SELECT currency, sum(total) AS sum_total FROM accounts
             GROUP BY currency HAVING sum(total) <> 0""",
    ),
    Check(
        "entries_match_account_currency",
        "every ledger entry is in the currency of both its accounts",
        "SELECT count(*) FROM ledger_entries",
        """SELECT e.entry_id, e.currency, d.currency AS debit_currency,
                    c.currency AS credit_currency
             FROM ledger_entries e JOIN accounts d ON d.account_id = e.debit_account_id
             JOIN accounts c ON c.account_id = e.credit_account_id
             WHERE e.currency <> d.currency OR e.currency <> c.currency""",
    ),
    Check(
        "balance_equals_replayed_entries",
        "each account's total equals its credits minus its debits",
        "SELECT count(*) FROM accounts",
        """SELECT a.account_id, a.total,
                    coalesce(c.s, 0) - coalesce(d.s, 0) AS replayed
             FROM accounts a
             LEFT JOIN (SELECT credit_account_id AS id, sum(amount) s FROM ledger_entries
                        GROUP BY 1) c ON c.id = a.account_id
             LEFT JOIN (SELECT debit_account_id AS id, sum(amount) s FROM ledger_entries
                        GROUP BY 1) d ON d.id = a.account_id
             WHERE a.total <> coalesce(c.s, 0) - coalesce(d.s, 0)""",
    ),
    Check(
        "total_is_available_plus_frozen",
        "total = available + frozen",
        "SELECT count(*) FROM accounts",
        """SELECT account_id, total, available, frozen FROM accounts
             WHERE total <> available + frozen""",
    ),
    Check(
        "no_negative_balance",
        "available >= 0 except outside-world accounts",
        "SELECT count(*) FROM accounts",
        """SELECT account_id, available FROM accounts
             WHERE available < 0 AND NOT may_go_negative""",
    ),
    Check(
        "frozen_equals_open_holds",
        "each account's frozen equals the sum of its open holds",
        "SELECT count(*) FROM accounts",
        """SELECT a.account_id, a.frozen, coalesce(h.s, 0) AS open_holds FROM accounts a
             LEFT JOIN (SELECT account_id, sum(amount) s FROM fund_holds WHERE state = 'held'
                        GROUP BY 1) h ON h.account_id = a.account_id
             WHERE a.frozen <> coalesce(h.s, 0)""",
    ),
    Check(
        "holds_resolved_consistently",
        "a confirmed hold confirmed exactly what it held; a cancelled one nothing",
        "SELECT count(*) FROM fund_holds",
        """SELECT order_id, account_id, state, amount, confirmed_amount FROM fund_holds
             WHERE confirmed_amount > amount
                OR (state = 'confirmed' AND confirmed_amount <> amount)
                OR (state IN ('held', 'cancelled') AND confirmed_amount <> 0)""",
    ),
    Check(
        "tcc_never_both_confirmed_and_cancelled",
        "no branch has both an applied Confirm and a Cancel",
        # Grouped rather than count(DISTINCT (gid, branch)), which sorts every row: a
        # fifteenth of the time.
        "SELECT count(*) FROM (SELECT 1 FROM tcc_barrier GROUP BY gid, branch) AS branches",
        """SELECT gid, branch FROM tcc_barrier WHERE phase IN ('confirm', 'cancel')
             GROUP BY gid, branch HAVING count(*) > 1""",
    ),
    Check(
        "settled_orders_posted_once",
        "each settled order has exactly one purchase posting whose merchant and fee legs "
        "add up to its total plus the platform's coupon subsidy",
        "SELECT count(*) FROM orders WHERE state = 'settled'",
        """SELECT o.order_id, t.total, s.subsidy, count(DISTINCT l.ledger_txn_id) AS postings,
                  coalesce(sum(e.amount) FILTER (WHERE e.leg LIKE 'merchant:%'
                                                 OR e.leg LIKE 'fee:%'), 0) AS paid_out
           FROM orders o JOIN transactions t USING (order_id)
           JOIN (SELECT transaction_id, sum(subsidy) AS subsidy FROM transaction_details
                 GROUP BY 1) s USING (transaction_id)
           LEFT JOIN ledger_transactions l ON l.order_id = o.order_id AND l.kind = 'purchase'
           LEFT JOIN ledger_entries e ON e.ledger_txn_id = l.ledger_txn_id
           WHERE o.state = 'settled'
           GROUP BY o.order_id, t.total, s.subsidy
           HAVING count(DISTINCT l.ledger_txn_id) <> 1
               OR coalesce(sum(e.amount) FILTER (WHERE e.leg LIKE 'merchant:%'
                                                 OR e.leg LIKE 'fee:%'), 0) <> t.total + s.subsidy""",
    ),
    Check(
        "cancelled_orders_hold_nothing",
        "a cancelled order has no posting, no open fund hold and no held stock",
        "SELECT count(*) FROM orders WHERE state = 'cancelled'",
        # One set of every order something is still held or posted for, joined once: an
        # EXISTS per order under OR is run order by order, a read of the postings each time
        # (minutes at 300,000 orders; docs/performance.md, step 50).
        """SELECT o.order_id FROM orders o WHERE o.state = 'cancelled' AND o.order_id IN (
                 SELECT l.order_id FROM ledger_transactions l WHERE l.kind = 'purchase'
                 UNION ALL SELECT h.order_id FROM fund_holds h WHERE h.state <> 'cancelled'
                 UNION ALL SELECT s.order_id FROM stock_holds s WHERE s.state <> 'released')""",
    ),
    Check(
        "stock_held_equals_open_holds",
        "each SKU's held stock equals its open stock holds",
        "SELECT count(*) FROM stock",
        """SELECT s.sku_id, s.held, coalesce(h.q, 0) AS open_holds FROM stock s
             LEFT JOIN (SELECT sku_id, sum(quantity) q FROM stock_holds WHERE state = 'held'
                        GROUP BY 1) h ON h.sku_id = s.sku_id
             WHERE s.held <> coalesce(h.q, 0)""",
    ),
    Check(
        "transaction_details_sum_to_total",
        "a transaction's per-merchant lines, less the platform's subsidy, add up to its total",
        "SELECT count(*) FROM transactions",
        """SELECT t.transaction_id, t.total, coalesce(sum(d.amount - d.subsidy), 0) AS lines
           FROM transactions t LEFT JOIN transaction_details d USING (transaction_id)
           GROUP BY t.transaction_id, t.total
           HAVING t.total <> coalesce(sum(d.amount - d.subsidy), 0)""",
    ),
    Check(
        "wallet_operations_posted_once",
        "a completed top-up or withdrawal has exactly one posting of its amount; any other "
        "has none; a withdrawal's hold matches its status",
        "SELECT count(*) FROM wallet_operations",
        """SELECT w.operation_id, w.kind, w.status, w.amount,
                  count(DISTINCT l.ledger_txn_id) AS postings, coalesce(sum(e.amount), 0) AS posted,
                  max(h.state) AS hold
           FROM wallet_operations w
           LEFT JOIN ledger_transactions l
                  ON l.idempotency_key = w.kind || ':' || w.operation_id
           LEFT JOIN ledger_entries e ON e.ledger_txn_id = l.ledger_txn_id
           LEFT JOIN fund_holds h ON h.order_id = w.operation_id
           GROUP BY w.operation_id, w.kind, w.status, w.amount
           HAVING (w.status = 'completed') <> (count(DISTINCT l.ledger_txn_id) = 1)
               OR (w.status = 'completed' AND coalesce(sum(e.amount), 0) <> w.amount)
               OR (w.kind = 'withdrawal' AND w.status = 'completed'
                   AND max(h.state) IS DISTINCT FROM 'confirmed')
               OR (w.kind = 'withdrawal' AND w.status = 'frozen'
                   AND max(h.state) IS DISTINCT FROM 'held')
               OR (w.kind = 'withdrawal' AND w.status = 'failed'
                   AND coalesce(max(h.state), 'cancelled') <> 'cancelled')""",
    ),
    Check(
        "refunds_never_exceed_what_was_paid",
        "per sub-order, accepted refunds add up to at most what the buyer paid for it; per "
        "order, their card shares to at most what the gateway captured",
        "SELECT count(DISTINCT sub_order_id) FROM refund_parts",
        """SELECT d.sub_order_id AS scope, d.amount - d.subsidy AS paid, sum(p.amount) AS refunded
           FROM refund_parts p JOIN refunds r USING (refund_id)
           JOIN transaction_details d ON d.sub_order_id = p.sub_order_id
           WHERE r.status <> 'rejected'
           GROUP BY d.sub_order_id, d.amount, d.subsidy
           HAVING sum(p.amount) > d.amount - d.subsidy
           UNION ALL
           SELECT t.order_id, t.gateway_part, sum(r.card_amount)
           FROM refunds r JOIN transactions t USING (order_id)
           WHERE r.status <> 'rejected'
           GROUP BY t.order_id, t.gateway_part
           HAVING sum(r.card_amount) > t.gateway_part""",
    ),
    Check(
        "refunds_posted_once",
        "an accepted (pending or completed) refund has exactly one posting giving its amount "
        "back (to the wallet, and the card share parked for the gateway); a rejected one has "
        "none",
        "SELECT count(*) FROM refunds",
        """SELECT r.refund_id, r.status, r.amount, count(DISTINCT l.ledger_txn_id) AS postings,
                  coalesce(sum(e.amount) FILTER (WHERE e.leg IN
                      ('refund:buyer', 'refund:wallet', 'refund:card')), 0) AS given_back
           FROM refunds r
           LEFT JOIN ledger_transactions l ON l.idempotency_key = 'refund:' || r.refund_id
           LEFT JOIN ledger_entries e ON e.ledger_txn_id = l.ledger_txn_id
           GROUP BY r.refund_id, r.status, r.amount
           HAVING (r.status <> 'rejected') <> (count(DISTINCT l.ledger_txn_id) = 1)
               OR (r.status <> 'rejected'
                   AND coalesce(sum(e.amount) FILTER (WHERE e.leg IN
                       ('refund:buyer', 'refund:wallet', 'refund:card')), 0) <> r.amount)""",
    ),
    Check(
        "card_refunds_settled_once",
        "the card share of a completed refund left through the gateway or went to the wallet "
        "in exactly one posting of its amount; a pending one has not yet",
        "SELECT count(*) FROM refunds WHERE card_amount > 0",
        f"""SELECT r.refund_id, r.status, r.card_amount, r.card_outcome,
                  coalesce(p.amount, 0) AS settled
           FROM refunds r LEFT JOIN ({posted_under("card_refund:")}) p
                ON p.idempotency_key = 'card_refund:' || r.refund_id
           WHERE r.card_amount > 0 AND r.status <> 'rejected'
             AND coalesce(p.amount, 0)
                 <> CASE WHEN r.status = 'completed' THEN r.card_amount ELSE 0 END""",
    ),
    Check(
        "card_refunds_payable_matches",
        "the card_refunds_payable account holds exactly the card shares still waiting for "
        "the gateway",
        "SELECT count(*) FROM accounts WHERE purpose = 'card_refunds_payable'",
        """SELECT a.account_id, a.total, coalesce(w.amount, 0) AS waiting
           FROM accounts a
           LEFT JOIN (SELECT currency, sum(card_amount) AS amount FROM refunds
                       WHERE status = 'pending' GROUP BY 1) w ON w.currency = a.currency
           WHERE a.purpose = 'card_refunds_payable' AND a.total <> coalesce(w.amount, 0)""",
    ),
    Check(
        "one_effect_per_event",
        "each output event was stored once (derived ids) and each inbox row is unique",
        "SELECT count(*) FROM outbox",
        """SELECT event_id, count(*) FROM outbox GROUP BY event_id HAVING count(*) > 1""",
    ),
]
