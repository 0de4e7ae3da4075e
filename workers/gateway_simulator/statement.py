"""The daily settlement statement (docs/gateway-api.md): CSV, one line per movement."""

import csv
import io
import sqlite3
from pathlib import Path

from workers.gateway_simulator.records import statement_rows
from workers.gateway_simulator.rules import charge_fee

COLUMNS = (
    "day",
    "kind",
    "gateway_ref",
    "reference",
    "currency",
    "amount",
    "fee",
    "net",
    "status",
    "occurred_at",
)
Line = tuple[str, str, str, str, str, int, int, int, str, str]


def lines(conn: sqlite3.Connection, day: str) -> list[Line]:
    rows = statement_rows(conn, day)
    out: list[Line] = []
    for c in rows["charge"]:
        fee = charge_fee(c["amount"])
        out.append(
            (
                day,
                "charge",
                c["gateway_ref"],
                c["payment_id"],
                c["currency"],
                c["amount"],
                fee,
                c["amount"] - fee,
                "succeeded",
                c["succeeded_at"],
            )
        )
    for r in rows["refund"]:
        out.append(
            (
                day,
                "refund",
                r["refund_ref"],
                r["refund_id"],
                r["currency"],
                r["amount"],
                0,
                r["amount"],
                "succeeded",
                r["succeeded_at"],
            )
        )
    for p in rows["payout"]:
        out.append(
            (
                day,
                "payout",
                p["payout_ref"],
                p["payout_id"],
                p["currency"],
                p["amount"],
                0,
                p["amount"],
                "paid",
                p["created_at"],
            )
        )
    return sorted(out, key=lambda line: (line[9], line[1], line[2]))


def render(rows: list[Line]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buf.getvalue()


def write(sim_dir: Path, day: str, text: str) -> Path:
    """Atomically (rename), so a reader never sees half a file."""
    folder = sim_dir / "statements"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day}.csv"
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
