"""`python -m infra.services up|down|status` (the same as `payflow services ...`)."""

import sys

from infra.services.manager import main_services

raise SystemExit(main_services(sys.argv[1] if len(sys.argv) > 1 else "status"))
