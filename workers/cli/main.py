"""`payflow`: services, migrations, workers, dead letters, audit and the demo."""

import argparse
import asyncio
import sys

from infra.settings import get_settings
from workers.app import STAGE_NAMES
from workers.runtime.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="payflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("services", help="start, stop or show the local Kafka, Postgres, Redis")
    s.add_argument("action", choices=["up", "down", "status"])

    sub.add_parser("migrate", help="apply database migrations and create Kafka topics")

    r = sub.add_parser("run", help="run one stage, all of them, or the gateway simulator")
    r.add_argument(
        "what",
        choices=[
            *STAGE_NAMES,
            *(n.replace("_", "-") for n in STAGE_NAMES),
            "all",
            "gateway-simulator",
        ],
    )

    d = sub.add_parser("dlq", help="inspect and replay dead letters")
    dsub = d.add_subparsers(dest="dlq_command", required=True)
    ls = dsub.add_parser("list", help="list dead letters with their reasons")
    ls.add_argument("--all", action="store_true", help="include replayed ones")
    ls.add_argument("--stage")
    ls.add_argument("--reason")
    ls.add_argument("--json", action="store_true")
    show = dsub.add_parser("show", help="one dead letter, with its message and headers")
    show.add_argument("id", type=int)
    rp = dsub.add_parser("replay", help="publish dead letters back to their source topic")
    rp.add_argument("ids", type=int, nargs="*")
    rp.add_argument("--all", action="store_true", help="every dead letter not yet replayed")
    rp.add_argument("--stage")
    rp.add_argument("--reason")
    rp.add_argument("--force", action="store_true", help="replay again one already replayed")

    acc = sub.add_parser("account", help="account statements")
    accsub = acc.add_subparsers(dest="account_command", required=True)
    st = accsub.add_parser("statement", help="entries with running balance over a period")
    st.add_argument("account", help="account id, e.g. buyer:buyer-001:wallet:EUR")
    st.add_argument("--since", help="ISO 8601 time with zone (inclusive)")
    st.add_argument("--until", help="ISO 8601 time with zone (exclusive)")
    st.add_argument("--json", action="store_true")

    a = sub.add_parser("audit", help="check the money invariants")
    a.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="set everything up and push orders through the pipeline")
    demo.add_argument("--orders", type=int, default=300)
    demo.add_argument("--json", action="store_true", help="print one JSON summary at the end")
    demo.add_argument("--timeout", type=float, default=300.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level if args.command == "run" else "WARNING")
    if args.command == "services":
        from infra.services.manager import main_services

        return main_services(args.action)
    if args.command == "migrate":
        from workers.cli.setup import migrate_all

        return asyncio.run(migrate_all(settings))
    if args.command == "run":
        from workers.cli.run import run

        return asyncio.run(run(args.what.replace("-", "_"), settings))
    if args.command == "dlq":
        from workers.cli.dlq import main_dlq

        return asyncio.run(main_dlq(args, settings))
    if args.command == "account":
        from workers.cli.account import main_account

        return asyncio.run(main_account(args, settings))
    if args.command == "audit":
        from workers.ops.audit import main_audit

        return asyncio.run(main_audit(settings, as_json=args.json))
    if args.command == "demo":
        from workers.ops.demo import main_demo

        return asyncio.run(
            main_demo(settings, args.orders, as_json=args.json, timeout_s=args.timeout)
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
