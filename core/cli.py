"""`python -m core ...`: the analyst's command line.

Each feature module contributes its sub-commands through a `register(subparsers)` function;
a command's handler returns the process exit code. User errors (`core.errors.UserError`) are
printed as one clear line on stderr with exit code 2, never as a stack trace. Anything
unexpected prints one line naming a log file that holds the traceback, with exit code 1.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError

from core.errors import UserError

COMMAND_MODULES = [  # in the order --help lists them: data, predictions, segments, campaigns
    "core.data_commands",
    "core.prediction_commands",
    "core.backtest_commands",
    "core.segment_commands",
    "core.campaign_commands",
    "core.worker_commands",
]
# Where tracebacks go; LIKELY_LOG_DIR overrides (the temporary folder when neither is writable).
DEFAULT_LOG_DIR = Path(__file__).resolve().parent.parent / "data" / "logs"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): what is wrong, and where to read more."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Likely: predictions, segments, campaigns.")
    parser.add_argument("--database-url", help="overrides DATABASE_URL for this command")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.database_url:
        return _run(args, argv)
    # The override lasts for this command only: a caller in the same process (the tests, or a
    # process that spawns children inheriting its environment) must not find DATABASE_URL changed.
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = args.database_url
    try:
        return _run(args, argv)
    finally:
        if before is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = before


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    """The command's exit code; every failure becomes one line on stderr."""
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None and error.errno not in (errno.ENOSPC, errno.EROFS):
            return _unexpected(error, argv)
        # The machine said no (a missing folder, a read-only file, a full disk): the person can fix that.
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except DBAPIError as error:
        if not _database_refused(error):
            return _unexpected(error, argv)
        print(f"error: the database refused: {_first_line(error)}; nothing was changed", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the last guard: a user never sees a traceback
        return _unexpected(error, argv)


# What a database says when the environment, not the code, is at fault: the person can act on it.
_REFUSALS = ("read-only", "readonly", "permission denied", "malformed", "not a database", "disk", "locked")


def _database_refused(error: DBAPIError) -> bool:
    return isinstance(error, OperationalError) or any(word in _first_line(error).lower() for word in _REFUSALS)


def _first_line(error: DBAPIError) -> str:
    return (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]


def _without_passwords(argv: list[str]) -> list[str]:
    """The command line as logged: a database URL's password masked."""
    from sqlalchemy import make_url

    def masked(url: str) -> str:
        try:
            return make_url(url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - not a URL: keep nothing of it
            return "<database url>"

    shown = []
    for index, arg in enumerate(argv):
        if arg.startswith("--database-url="):
            arg = "--database-url=" + masked(arg.split("=", 1)[1])
        elif index and argv[index - 1] == "--database-url":
            arg = masked(arg)
        shown.append(arg)
    return shown


def log_dir() -> Path:
    return Path(os.environ.get("LIKELY_LOG_DIR") or DEFAULT_LOG_DIR)


def _unexpected(error: BaseException, argv: list[str] | None) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    command = " ".join(_without_passwords(sys.argv[1:] if argv is None else argv))
    report = f"python -m core {command}\n{datetime.now(UTC).isoformat()}\n\n" + "".join(
        traceback.format_exception(error)
    )
    path = None
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f"likely-error-{stamp}-", suffix=".log", dir=folder)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(report)
            path = name
            break
        except OSError:
            continue
    where = f"the details are in {path}" if path else "no log file could be written"
    print(f"error: unexpected failure ({type(error).__name__}); {where}", file=sys.stderr)
    return 1
