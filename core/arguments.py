"""argparse types for the command line: every argument is checked before any command runs.

A bad value ends in argparse's own one-line error (exit 2) before the database is opened, so
nothing destructive can start on it (`seed --users -5` used to wipe the data, then report
"seeded -5 users").
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Ids are 64-bit integers in every backend; a larger number can name nothing.
LARGEST_ID = 2**63 - 1


def _whole_number(text: str) -> int:
    cleaned = text.strip().replace("_", "").replace(",", "")
    if not cleaned.lstrip("+-").isdigit() or len(cleaned) > 20:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(cleaned)


def bounded_int(low: int, high: int, what: str = "value"):
    """A type accepting whole numbers in [low, high]."""

    def parse(text: str) -> int:
        value = _whole_number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low:,} to {high:,}, not {value:,}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


count_arg = bounded_int(1, 100_000_000, "a count")
seed_arg = bounded_int(0, 2**32 - 1, "a random seed")
id_arg = bounded_int(1, LARGEST_ID, "an id")


def output_arg(text: str) -> str:
    """A file the command may create or overwrite ('-' is stdout): refused before any work starts."""
    if text == "-":
        return text
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("the output file name is empty")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {folder} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: the file is read-only")
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {folder} is not writable")
    return text


def row_id(value: object) -> int | None:
    """`value` as a row id when it is one (digits within 64 bits), else None: a name, or a number naming nothing."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= LARGEST_ID else None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 1 <= number <= LARGEST_ID else None
