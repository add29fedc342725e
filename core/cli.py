"""`python -m core ...`: the analyst's command line.

Each feature module contributes its sub-commands through a `register(subparsers)` function;
a command's handler returns the process exit code. User errors (`core.errors.UserError`) are
printed as one clear line on stderr with exit code 2, never as a stack trace.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import UserError

COMMAND_MODULES = [  # in the order --help lists them: data, predictions, segments, campaigns
    "core.data_commands",
    "core.prediction_commands",
    "core.segment_commands",
    "core.campaign_commands",
    "core.worker_commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Likely: predictions, segments, campaigns.")
    parser.add_argument("--database-url", help="overrides DATABASE_URL for this command")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.database_url:
        import os

        os.environ["DATABASE_URL"] = args.database_url
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
