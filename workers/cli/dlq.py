"""`payflow dlq list|show|replay`."""

import argparse
import json

from infra.settings import Settings
from workers.ops import dead_letters
from workers.ops.dead_letters import Filter
from workers.runtime.db import create_pool
from workers.runtime.kafka import make_producer


async def main_dlq(args: argparse.Namespace, settings: Settings) -> int:
    pool = await create_pool(settings, max_size=2)
    try:
        if args.dlq_command == "list":
            rows = await dead_letters.find(pool, Filter(args.all, args.stage, args.reason))
            if args.json:
                print(json.dumps(rows, default=str, indent=2))
            for r in [] if args.json else rows:
                state = "replayed" if r["replayed_at"] else "open"
                print(
                    f"#{r['dead_letter_id']} [{state}] {r['consumer']} "
                    f"{r['source_topic']}[{r['source_partition']}]@{r['source_offset']} "
                    f"order={r['order_id']} {r['reason_code']}: {r['detail'][:160]}"
                )
            if not args.json:
                print(f"{len(rows)} dead letter(s)")
            return 0
        if args.dlq_command == "show":
            found = await dead_letters.show(pool, args.id)
            if found is None:
                print(f"no dead letter #{args.id}")
                return 1
            print(json.dumps(found, default=str, indent=2))
            return 0
        if not args.ids and not args.all:
            print("name dead letter ids, or --all (with --stage/--reason to filter)")
            return 2
        f = Filter(args.force, args.stage, args.reason, tuple(args.ids))
        ids = [r["dead_letter_id"] for r in await dead_letters.find(pool, f)]
        producer = make_producer(settings, "payflow-dlq-replay")
        await producer.start()
        try:
            sent = await dead_letters.replay(pool, producer, ids, force=args.force)
        finally:
            await producer.stop()
        print(f"replayed {len(sent)} dead letter(s): {sent}")
        return 0
    finally:
        await pool.close()
