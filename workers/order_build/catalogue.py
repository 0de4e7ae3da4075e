"""Reading the catalogue and the buyers' coupons, for one order or a batch."""

import json
from typing import Any

import asyncpg

from workers.order_build.rules import CatalogueItem, Coupon, Rejection


async def load_items(conn: asyncpg.Connection, sku_ids: list[str]) -> dict[str, CatalogueItem]:
    rows = await conn.fetch(
        """SELECT s.sku_id, p.merchant_id, s.warehouse_id, p.category_id, s.currency,
                  s.unit_price,
                  coalesce(array_agg(ARRAY[t.min_quantity::bigint, t.unit_price])
                           FILTER (WHERE t.sku_id IS NOT NULL), '{}') AS tiers
           FROM skus s JOIN products p USING (product_id)
           LEFT JOIN price_tiers t ON t.sku_id = s.sku_id
           WHERE s.sku_id = ANY($1::text[]) AND s.active
           GROUP BY s.sku_id, p.merchant_id, p.category_id""",
        sku_ids,
    )
    return {
        r["sku_id"]: CatalogueItem(
            r["sku_id"],
            r["merchant_id"],
            r["warehouse_id"],
            r["category_id"],
            r["currency"],
            r["unit_price"],
            tuple((int(a), int(b)) for a, b in r["tiers"]),
        )
        for r in rows
    }


async def load_coupons(conn: asyncpg.Connection, buyer_id: str, codes: list[str]) -> list[Coupon]:
    """One available grant per code for this buyer, or a rejection naming the first code
    without one."""
    found = await load_grants(conn, {(buyer_id, code): 1 for code in codes}) if codes else {}
    for code in codes:
        if (buyer_id, code) in found:
            continue
        known = await conn.fetchval("SELECT 1 FROM coupons WHERE code = $1", code)
        if known:
            raise Rejection(
                "coupon_not_granted", f"buyer {buyer_id} holds no unused grant of coupon {code}"
            )
        raise Rejection("unknown_coupon", f"coupon code {code} does not exist")
    return [found[(buyer_id, code)][0] for code in codes]


async def load_grants(
    conn: asyncpg.Connection, wanted: dict[tuple[str, str], int]
) -> dict[tuple[str, str], list[Coupon]]:
    """(buyer, code) -> up to the wanted number of its available grants, oldest first, for
    the pairs that have one: a batch's coupons with one query (load_coupons explains a
    missing pair)."""
    pairs = sorted(wanted)
    rows = await conn.fetch(
        """SELECT w.buyer AS buyer_id, g.grant_id, c.*
             FROM unnest($1::text[], $2::text[], $3::int[]) AS w(buyer, code, n)
             JOIN coupons c ON c.code = w.code
             CROSS JOIN LATERAL (
                   SELECT grant_id, granted_at FROM coupon_grants
                    WHERE buyer_id = w.buyer AND coupon_id = c.coupon_id AND state = 'available'
                    ORDER BY granted_at, grant_id LIMIT w.n) g
            ORDER BY w.buyer, w.code, g.granted_at, g.grant_id""",
        [buyer for buyer, _ in pairs],
        [code for _, code in pairs],
        [wanted[p] for p in pairs],
    )
    found: dict[tuple[str, str], list[Coupon]] = {}
    for r in rows:
        found.setdefault((r["buyer_id"], r["code"]), []).append(_coupon(r))
    return found


def _coupon(row: asyncpg.Record) -> Coupon:
    return Coupon(
        grant_id=row["grant_id"],
        code=row["code"],
        kind=row["kind"],
        currency=row["currency"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        merchant_id=row["merchant_id"],
        threshold=row["threshold"] or 0,
        reduction=row["reduction"] or 0,
        rate_bps=row["rate_bps"] or 0,
        max_discount=row["max_discount"],
        ladder=_ladder(row["ladder"]),
    )


def _ladder(raw: str | None) -> tuple[tuple[int, int], ...]:
    steps: list[Any] = json.loads(raw) if raw else []  # asyncpg returns jsonb as text
    return tuple((int(t), int(r)) for t, r in steps)
