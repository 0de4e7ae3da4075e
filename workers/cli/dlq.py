"""`payflow dlq list|show|replay`: what the commands do once their options are parsed."""

import json
import sys

from infra.settings import Settings
from workers.cli.connect import start_producer
from workers.cli.failures import CliError
from workers.ops import dead_letters
from workers.ops.dead_letters import Filter
from workers.runtime.db import create_pool


async def list_dead_letters(settings: Settings, f: Filter, *, as_json: bool) -> int:
    pool = await create_pool(settings, max_size=2)
    try:
        rows = await dead_letters.find(pool, f)
    finally:
        await pool.close()
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for r in rows:
        state = "replayed" if r["replayed_at"] else "open"
        print(
            f"#{r['dead_letter_id']} [{state}] {r['consumer']} "
            f"{r['source_topic']}[{r['source_partition']}]@{r['source_offset']} "
            f"order={r['order_id']} {r['reason_code']}: {r['detail'][:160]}"
        )
    print(f"{len(rows)} dead letter(s)")
    return 0


async def show_dead_letter(settings: Settings, dead_letter_id: int) -> int:
    pool = await create_pool(settings, max_size=1)
    try:
        found = await dead_letters.show(pool, dead_letter_id)
    finally:
        await pool.close()
    if found is None:
        raise CliError(f"no dead letter #{dead_letter_id}; see `payflow dlq list --all`")
    print(json.dumps(found, default=str, indent=2))
    return 0


async def replay_dead_letters(settings: Settings, ids: list[int], f: Filter, *, force: bool) -> int:
    """Replay the named ids, or every match of `f` when no id is named. Exit 1 when any
    named id was refused (missing, or already replayed without --force)."""
    pool = await create_pool(settings, max_size=2)
    try:
        if ids:
            refused = await dead_letters.refusals(pool, ids, force=force)
            todo = [i for i in ids if i not in refused]
        else:
            refused = {}
            todo = [r["dead_letter_id"] for r in await dead_letters.find(pool, f)]
        result = dead_letters.ReplayResult(refused=refused)
        if todo:
            producer = await start_producer(settings, "payflow-dlq-replay")
            try:
                done = await dead_letters.replay(pool, producer, todo, force=force)
            finally:
                await producer.stop()
            result.sent = done.sent
            result.refused |= done.refused
    finally:
        await pool.close()
    if result.sent:
        print(
            f"replayed {len(result.sent)} dead letter(s): "
            + ", ".join(f"#{i}" for i in result.sent)
        )
    elif not ids:
        print("nothing to replay: no dead letter matches (replayed ones need --force)")
    for i in ids or sorted(result.refused):
        if i in result.refused:
            print(f"error: {result.refused[i]}", file=sys.stderr)
    return 1 if result.refused else 0
