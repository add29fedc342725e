"""CLI: `seed`, `import users|events`, `setup` (what `make run` calls before starting the app)."""

from __future__ import annotations

from core.access import LOCAL_ADMIN, REPLACE_CONFIRMATION, audit, require_replace
from core.arguments import count_arg, seed_arg
from core.db import get_engine
from core.importer import import_events, import_users
from core.instants import instant_arg
from core.progress import printer
from core.seed import generate


def register(subparsers) -> None:
    seed = subparsers.add_parser("seed", help="replace all data with deterministic demo data")
    seed.add_argument("--users", type=count_arg, default=50_000, help="how many users (default 50,000)")
    seed.add_argument("--seed", type=seed_arg, default=7, help="random seed (default 7)")
    seed.add_argument("--anchor", type=instant_arg, help="the data's 'now' (default: today 00:00 UTC)")
    seed.set_defaults(handler=_seed)

    imp = subparsers.add_parser("import", help="import users or events from a CSV file (all or nothing)")
    imp.add_argument("kind", choices=["users", "events"])
    imp.add_argument("file")
    imp.set_defaults(handler=_import)

    setup = subparsers.add_parser("setup", help="create the database with demo data if it holds no users yet")
    setup.add_argument("--users", type=count_arg, default=50_000)
    setup.set_defaults(handler=_setup)


def _seed(args) -> int:
    require_replace(LOCAL_ADMIN, REPLACE_CONFIRMATION, get_engine())  # never over imported data
    result = generate(get_engine(), users=args.users, seed=args.seed, anchor=args.anchor, progress=printer("seed "))
    audit(get_engine(), LOCAL_ADMIN, "replace data", "all users and events", users=result.users, seed=args.seed)
    print(f"seeded {result.users:,} users and {result.events:,} events up to {result.anchor:%Y-%m-%d}")
    return 0


def _import(args) -> int:
    engine = get_engine()
    say = printer("import ")
    result = import_users(engine, args.file, say) if args.kind == "users" else import_events(engine, args.file, say)
    print(f"imported {result.rows:,} {args.kind} rows ({result.created_users:,} new users)")
    return 0


def _setup(args) -> int:
    from core.demo import ensure_demo_database  # trains models (scikit-learn): only `setup` pays for it

    ensure_demo_database(get_engine(), args.users, printer("setup "))
    return 0
