"""The audit's checks of the references the schema does not enforce (migration 0023): on the
hot path each is guaranteed by its one writer instead of a foreign key, and checked here,
one anti-join per reference, so a writer that ever breaks one is found."""

from dataclasses import dataclass

from workers.ops.audit_check import Check


@dataclass(frozen=True)
class Reference:
    table: str
    column: str
    row_key: str  # names the offending row in a violation
    parent: str
    parent_key: str

    def check(self) -> Check:
        return Check(
            f"{self.table}_{self.column}_exists",
            f"every {self.table}.{self.column} names a row of {self.parent}",
            f"SELECT count(*) FROM {self.table}",
            f"""SELECT c.{self.row_key} AS row_key, c.{self.column} AS missing
                  FROM {self.table} c
                 WHERE NOT EXISTS (SELECT 1 FROM {self.parent} p
                                    WHERE p.{self.parent_key} = c.{self.column})""",
        )


REFERENCES = [
    Reference("sub_orders", "order_id", "sub_order_id", "orders", "order_id"),
    Reference("sub_orders", "merchant_id", "sub_order_id", "merchants", "merchant_id"),
    Reference("sub_orders", "warehouse_id", "sub_order_id", "warehouses", "warehouse_id"),
    Reference("order_items", "sub_order_id", "sub_order_id", "sub_orders", "sub_order_id"),
    Reference("order_items", "sku_id", "sub_order_id", "skus", "sku_id"),
    Reference("stock_holds", "sku_id", "order_id", "skus", "sku_id"),
    Reference(
        "ledger_entries", "ledger_txn_id", "entry_id", "ledger_transactions", "ledger_txn_id"
    ),
    Reference("ledger_entries", "debit_account_id", "entry_id", "accounts", "account_id"),
    Reference("ledger_entries", "credit_account_id", "entry_id", "accounts", "account_id"),
    Reference("fund_holds", "account_id", "order_id", "accounts", "account_id"),
    Reference("transactions", "order_id", "transaction_id", "orders", "order_id"),
    Reference(
        "transaction_details", "transaction_id", "sub_order_id", "transactions", "transaction_id"
    ),
    Reference("transaction_details", "sub_order_id", "sub_order_id", "sub_orders", "sub_order_id"),
    Reference("transaction_details", "merchant_id", "sub_order_id", "merchants", "merchant_id"),
]

REFERENCE_CHECKS = [r.check() for r in REFERENCES]
