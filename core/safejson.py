"""JSON from people and files, parsed with limits: one reader for properties, segment files and flags.

Python's `json` accepts NaN and Infinity, integers of any size (then fails converting one past
4,300 digits with a bare ValueError), and nesting until the interpreter's recursion limit. None of
that can be stored everywhere or read back: PostgreSQL refuses NUL characters, SQLite's integers
are 64-bit, and a float column cannot hold infinity. `loads` refuses all of it with a reason.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 10
MAX_CHARS = 1_000_000
LARGEST_INT = 2**63 - 1


class JSONLimitError(ValueError):
    """The text is not JSON we accept; the message is a predicate ("nests deeper than 10 levels") for "FILE: ..."."""


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -LARGEST_INT - 1 <= (value := int(text)) <= LARGEST_INT:
        raise JSONLimitError(f"holds the integer {text[:24]}{'…' if len(text) > 24 else ''}, beyond 64 bits")
    return value


def _number(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JSONLimitError(f"holds the number {text[:24]}, too large to store")
    return value


def _constant(name: str):
    raise JSONLimitError(f"holds {name}, which is not a number JSON allows")


def _check(value: Any, max_depth: int) -> None:
    """Depth within bounds and no NUL character anywhere (keys included); iterative, so no recursion limit."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise JSONLimitError(f"nests deeper than {max_depth} levels")
            children = list(item.items()) if isinstance(item, dict) else [(None, v) for v in item]
            for key, child in children:
                if key is not None and "\x00" in key:
                    raise JSONLimitError("contains a NUL character (\\u0000)")
                stack.append((child, depth + 1))
        elif isinstance(item, str) and "\x00" in item:
            raise JSONLimitError("contains a NUL character (\\u0000)")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, max_chars: int = MAX_CHARS) -> Any:
    """The parsed document, or JSONLimitError saying what is wrong (invalid, too long, too deep, NaN, huge integer, NUL)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise JSONLimitError("is not UTF-8 text") from None
    if len(text) > max_chars:
        raise JSONLimitError(f"is {len(text):,} characters long; the limit is {max_chars:,}")
    # Nesting is bounded before parsing too: the parser itself recurses once per level.
    if text.count("[") + text.count("{") > max_depth and _bracket_depth(text) > max_depth:
        raise JSONLimitError(f"nests deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_number, parse_constant=_constant)
    except JSONLimitError:
        raise
    except json.JSONDecodeError as error:
        raise JSONLimitError(f"is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except (ValueError, RecursionError):
        raise JSONLimitError("is not valid JSON") from None
    _check(value, max_depth)
    return value


def _bracket_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
