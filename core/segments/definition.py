"""The segment definition: a small, versioned, JSON-serialisable document (see docs/segments.md).

```
{"version": 1, "match": "all" | "any",
 "groups":  [{"match": "all" | "any", "filters": [FILTER, ...]}, ...],
 "exclude": [{"match": "all" | "any", "filters": [FILTER, ...]}, ...]}
```
No groups (or only empty ones) means all users; empty groups are ignored, so a page can add a
group before its first filter. `validate` returns the normalised copy or raises a UserError
naming the group and filter at fault ("group 1, filter 2 (Last used app): ...").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core import safejson
from core.errors import UserError
from core.segments.filters import FILTERS, Filter, FilterError, _unit_word

VERSION = 1
MATCHES = ("all", "any")
SECTIONS = ("groups", "exclude")


def empty_definition() -> dict:
    """All users: no groups."""
    return {"version": VERSION, "match": "all", "groups": [], "exclude": []}


def definition_of(*filters: dict, match: str = "all") -> dict:
    """A one-group definition from filters (the common case)."""
    return {"version": VERSION, "match": "all", "groups": [{"match": match, "filters": list(filters)}], "exclude": []}


@dataclass(frozen=True)
class Located:
    """A filter and where it sits, for messages and the funnel."""

    section: str  # "groups" or "exclude"
    group: int  # 0-based
    index: int  # 0-based within the group
    spec: dict
    kind: Filter

    @property
    def where(self) -> str:
        prefix = "exclusion group" if self.section == "exclude" else "group"
        return f"{prefix} {self.group + 1}, filter {self.index + 1} ({self.kind.label})"


def _upgrade(definition: dict) -> dict:
    """Bring an older definition to VERSION (there is only version 1 so far)."""
    version = definition.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"segment definition version must be a whole number from 1, not {version!r}")
    if version > VERSION:
        raise UserError(f"segment definition version {version} is newer than this app understands ({VERSION})")
    return definition


def _match(value: Any, where: str) -> str:
    value = "all" if value is None else value
    if value not in MATCHES:
        raise UserError(f"{where}: 'match' must be all or any, not {value!r}")
    return value


def validate(definition: Mapping[str, Any]) -> dict:
    """The normalised definition, or a UserError naming the group and filter at fault."""
    if isinstance(definition, str):
        definition = loads(definition)
    if not isinstance(definition, Mapping):
        raise UserError(f"a segment definition must be a JSON object, not {type(definition).__name__}")
    definition = _upgrade(dict(definition))
    unknown = sorted(set(definition) - {"version", "match", "groups", "exclude"})
    if unknown:
        raise UserError(f"segment definition: unknown field {', '.join(repr(k) for k in unknown)}")
    result = {"version": VERSION, "match": _match(definition.get("match"), "segment"), "groups": [], "exclude": []}
    for section in SECTIONS:
        groups = definition.get(section) or []
        if not isinstance(groups, list):
            raise UserError(f"segment definition: '{section}' must be a list of groups")
        for g, group in enumerate(groups):
            prefix = "exclusion group" if section == "exclude" else "group"
            where = f"{prefix} {g + 1}"
            if not isinstance(group, Mapping):
                raise UserError(f"{where}: must be an object with 'match' and 'filters'")
            extra = sorted(set(group) - {"match", "filters"})
            if extra:
                raise UserError(f"{where}: unknown field {', '.join(repr(k) for k in extra)}")
            filters = group.get("filters") or []
            if not isinstance(filters, list):
                raise UserError(f"{where}: 'filters' must be a list")
            normalised = []
            for f, spec in enumerate(filters):
                normalised.append(_normalise_filter(spec, f"{where}, filter {f + 1}"))
            result[section].append({"match": _match(group.get("match"), where), "filters": normalised})
    return result


def _normalise_filter(spec: Any, where: str) -> dict:
    if not isinstance(spec, Mapping):
        raise UserError(f"{where}: a filter must be an object with a 'type'")
    kind = FILTERS.get(spec.get("type"))
    if kind is None:
        raise UserError(f"{where}: unknown filter type {spec.get('type')!r}; use one of {', '.join(FILTERS)}")
    try:
        return kind.normalize(spec)
    except FilterError as error:
        raise UserError(f"{where} ({kind.label}): {error}") from None


def validate_filter(spec: Mapping[str, Any]) -> dict:
    """One filter, normalised (for pages editing a single filter)."""
    return _normalise_filter(spec, "filter")


def loads(text: str) -> dict:
    try:
        return safejson.loads(text)
    except safejson.JSONLimitError as error:
        raise UserError(f"the segment definition {error}") from None


def dumps(definition: Mapping) -> str:
    return json.dumps(validate(definition), indent=2, ensure_ascii=False)


def located_filters(definition: dict) -> Iterator[Located]:
    """Every filter of a normalised definition with its place, groups first then exclusions."""
    for section in SECTIONS:
        for g, group in enumerate(definition[section]):
            for f, spec in enumerate(group["filters"]):
                yield Located(section, g, f, spec, FILTERS[spec["type"]])


def predictions_used(definition: Mapping) -> list[int]:
    """The prediction ids the definition's likelihood filters refer to, in order of first use."""
    seen: list[int] = []
    for item in located_filters(validate(definition)):
        for prediction in item.kind.predictions(item.spec):
            if prediction not in seen:
                seen.append(prediction)
    return seen


def is_empty(definition: Mapping) -> bool:
    """True when the definition keeps every user (no filters anywhere)."""
    return not any(True for _ in located_filters(validate(definition)))


def truncated(definition: dict, keep: int) -> dict:
    """The definition with only its first `keep` filters (reading order): a funnel step."""
    result = copy.deepcopy(definition)
    remaining = keep
    for section in SECTIONS:
        for group in result[section]:
            group["filters"] = group["filters"][: max(remaining, 0)]
            remaining -= len(group["filters"])
    return result


# --- sentences ---------------------------------------------------------------------------


def filter_sentence(spec: Mapping, names: Mapping[int, str] | None = None) -> str:
    spec = validate_filter(spec)
    return FILTERS[spec["type"]].sentence(spec, names or {})


def _merged_time_window(filters: list[dict]) -> tuple[str | None, list[dict]]:
    """'More than A ago' + 'less than B ago' on the same fact, in one AND group, read as 'between'."""
    for kind in ("last_used", "first_used"):
        older = [f for f in filters if f["type"] == kind and f["op"] == "more_than"]
        newer = [f for f in filters if f["type"] == kind and f["op"] == "less_than"]
        if len(older) == 1 and len(newer) == 1 and older[0]["unit"] == newer[0]["unit"]:
            a, b = older[0]["value"], newer[0]["value"]
            if a < b:
                verb = FILTERS[kind].verb(older[0])
                rest = [f for f in filters if f is not older[0] and f is not newer[0]]
                return f"{verb} between {a:g} and {_unit_word(b, older[0]['unit'])} ago", rest
    return None, filters


def _group_sentence(group: dict, names: Mapping[int, str]) -> str:
    filters = group["filters"]
    parts: list[str] = []
    if group["match"] == "all":
        merged, filters = _merged_time_window(filters)
        if merged:
            parts.append(merged)
    parts += [FILTERS[f["type"]].sentence(f, names) for f in filters]
    joiner = " and " if group["match"] == "all" else " or "
    return joiner.join(p if i == 0 else p[0].lower() + p[1:] for i, p in enumerate(parts))


def describe(definition: Mapping, names: Mapping[int, str] | None = None) -> list[str]:
    """The definition as sentences: one per group, 'Or:'/'And:' between groups, 'Except:' exclusions.

    `names` maps prediction ids to names; without it likelihood filters say "prediction #id".
    """
    definition = validate(definition)
    names = names or {}
    lines: list[str] = []
    groups = [g for g in definition["groups"] if g["filters"]]
    for i, group in enumerate(groups):
        sentence = _group_sentence(group, names)
        if i:
            sentence = ("And: " if definition["match"] == "all" else "Or: ") + sentence
        lines.append(sentence)
    if not lines:
        lines.append("All users")
    for group in definition["exclude"]:
        if group["filters"]:
            lines.append("Except: " + _group_sentence(group, names))
    return lines
