"""Pydantic's errors as one plain sentence: the wording every parser at an edge shares.

A parser (a segment definition, a campaign spec) knows its places ("group 1, filter 2 (Last used
app)", "schedule", "message: variant 2") and strips them from the error's location; what is
left is a field inside that place, and `field_problem` says what is wrong with it. One table of
wordings, so the same mistake reads the same wherever it is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic_core import ErrorDetails

MAX_MESSAGE = 300


def shortened(message: str) -> str:
    """A message quoting a huge value stays readable: cut, with an ellipsis."""
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _choices(ctx: dict) -> str:
    """pydantic's "'a', 'b' or 'c'" as "a, b or c"."""
    return str(ctx.get("expected", "")).replace("'", "")


def _bound(ctx: dict, key: str) -> str:
    """A limit as people write it: 0, not 0.0; 10,000, not 10000."""
    limit = ctx.get(key)
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    return f"{limit:,}" if isinstance(limit, int | float) else str(limit)


# (the field's name, quoted; the error's context; the value given) -> what is wrong.
_Wording = Callable[[str, dict, Any], str]

_WORDINGS: dict[str, _Wording] = {
    "missing": lambda name, ctx, value: f"{name} is missing",
    "extra_forbidden": lambda name, ctx, value: f"unknown field {name}",
    "literal_error": lambda name, ctx, value: f"{name} must be {_choices(ctx)}, not {value!r}",
    "int_from_float": lambda name, ctx, value: f"{name} must be a whole number, not {value!r}",
    "int_parsing": lambda name, ctx, value: f"{name} must be a whole number, not {value!r}",
    "int_type": lambda name, ctx, value: f"{name} must be a number, not {value!r}",
    "float_type": lambda name, ctx, value: f"{name} must be a number, not {value!r}",
    "float_parsing": lambda name, ctx, value: f"{name} must be a number, not {value!r}",
    "greater_than_equal": lambda name, ctx, value: f"{name} must be at least {_bound(ctx, 'ge')}, not {value!r}",
    "greater_than": lambda name, ctx, value: f"{name} must be more than {_bound(ctx, 'gt')}, not {value!r}",
    "less_than_equal": lambda name, ctx, value: f"{name} must be at most {_bound(ctx, 'le')}, not {value!r}",
    "less_than": lambda name, ctx, value: f"{name} must be less than {_bound(ctx, 'lt')}, not {value!r}",
    "bool_type": lambda name, ctx, value: f"{name} must be true or false, not {value!r}",
    "bool_parsing": lambda name, ctx, value: f"{name} must be true or false, not {value!r}",
    "string_type": lambda name, ctx, value: f"{name} must be text, not {value!r}",
    "string_too_short": lambda name, ctx, value: f"{name} must be text that is not empty, not {value!r}",
    "string_too_long": lambda name, ctx, value: f"{name} has at most {_bound(ctx, 'max_length')} characters",
    "tuple_type": lambda name, ctx, value: f"{name} must be a list",
    "list_type": lambda name, ctx, value: f"{name} must be a list",
    "too_short": lambda name, ctx, value: (
        f"{name} holds at least {_bound(ctx, 'min_length')} items (this one has {_bound(ctx, 'actual_length')})"
    ),
    "too_long": lambda name, ctx, value: (
        f"{name} holds at most {_bound(ctx, 'max_length')} items (this one has {_bound(ctx, 'actual_length')})"
    ),
}


def field_problem(error: ErrorDetails, loc: Sequence[str | int]) -> str:
    """What is wrong, in one sentence, with the field at `loc` (the place already stripped off).

    A validator's own sentence is shown as it is: it names its field itself, as a person would."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    parts = [str(part) for part in loc]
    if parts and parts[-1] == "[key]":  # a dict key that is not one of the allowed ones
        field = ".".join(part for part in parts[:-2] if not part.isdigit())
        return f"{field} for {value!r}: use {_choices(ctx)}" if kind == "literal_error" else f"{field}: {error['msg']}"
    field = ".".join(part for part in parts if not part.isdigit())  # 'platforms', not 'platforms.0'
    if kind == "union_tag_invalid":
        tag = str(ctx.get("discriminator", "kind")).strip("'")
        name = repr(f"{field}.{tag}" if field else tag)
        return f"{name} must be one of {ctx.get('expected_tags')}, not {ctx.get('tag')!r}"
    if not field:
        return str(error["msg"])
    name = repr(field)  # a key a file made up may hold quotes or line breaks: shown escaped, on one line
    wording = _WORDINGS.get(kind)
    return wording(name, ctx, value) if wording else f"{name}: {error['msg']}"
