"""The segment definition: a small, versioned document of filter groups (see docs/segments.md).

```
{"version": 1, "match": "all" | "any",
 "groups":  [{"match": "all" | "any", "filters": [FILTER, ...]}, ...],
 "exclude": [{"match": "all" | "any", "filters": [FILTER, ...]}, ...]}
```
No groups (or only empty ones) means all users; empty groups are ignored, so a page can add a
group before its first filter.

Parsed once at each edge (a page, the CLI, a file, a database row) by `parse_definition` into a
frozen `SegmentDefinition`; core functions take that model and never re-check it. A bad
document is one UserError naming the place: "group 1, filter 2 (Last used app): ...".
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from core import safejson
from core.errors import UserError
from core.segments.filter_specs import SPEC_BY_TYPE, FilterSpec
from core.segments.filters import FILTERS, Filter, _unit_word
from core.validation_messages import field_problem, shortened

VERSION = 1
SECTIONS = ("groups", "exclude")
MAX_GROUPS = 20  # per section: more is a generated document gone wrong, not an audience
MAX_FILTERS = 50  # per group


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Group(_Frozen):
    match: Literal["all", "any"] = "all"
    filters: tuple[FilterSpec, ...] = Field(default=(), max_length=MAX_FILTERS)

    @field_validator("match", "filters", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any, info) -> Any:
        if value is None:
            return "all" if info.field_name == "match" else ()
        return value


class SegmentDefinition(_Frozen):
    """Who a segment keeps: groups combined by `match`, minus anyone in an exclusion group."""

    version: int = Field(default=VERSION, ge=1, le=VERSION)
    match: Literal["all", "any"] = "all"
    groups: tuple[Group, ...] = Field(default=(), max_length=MAX_GROUPS)
    exclude: tuple[Group, ...] = Field(default=(), max_length=MAX_GROUPS)

    @field_validator("version", mode="before")
    @classmethod
    def _known_version(cls, version: Any) -> Any:
        if version is None:
            return VERSION
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"version must be a whole number from 1, not {version!r}")
        if version > VERSION:
            raise ValueError(f"version {version} is newer than this app understands ({VERSION})")
        return version  # only version 1 exists so far: nothing to upgrade

    @field_validator("match", "groups", "exclude", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any, info) -> Any:
        if value is None:
            return "all" if info.field_name == "match" else ()
        return value

    def to_json(self) -> dict:
        """The stored form (a JSON object for the database's JSON column and for files)."""
        return self.model_dump(mode="json")


# --- parsing: pydantic's errors as one line naming the place -------------------------------


def _one_line(error: ErrorDetails) -> str:
    """'group 1, filter 2 (Last used app): ...' from one pydantic error."""
    loc, kind = list(error["loc"]), error["type"]
    where, spec_type = "segment definition", None
    if loc and loc[0] in SECTIONS and len(loc) >= 2 and isinstance(loc[1], int):
        where = f"{'exclusion group' if loc[0] == 'exclude' else 'group'} {loc[1] + 1}"
        loc = loc[2:]
        if len(loc) >= 2 and loc[0] == "filters" and isinstance(loc[1], int):
            where += f", filter {loc[1] + 1}"
            loc = loc[2:]
            if kind == "union_tag_invalid":
                tag = (error.get("ctx") or {}).get("tag")
                return f"{where}: unknown filter type {tag!r}; use one of {', '.join(SPEC_BY_TYPE)}"
            if kind in ("union_tag_not_found", "model_attributes_type", "model_type", "dict_type"):
                return f"{where}: a filter must be an object with a 'type'"
            spec_type = str(loc.pop(0)) if loc and str(loc[0]) in SPEC_BY_TYPE else None
            if spec_type:
                where += f" ({FILTERS[spec_type].label})"
        elif not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
            return f"{where}: must be an object with 'match' and 'filters'"
    elif not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"a segment definition must be a JSON object, not {type(error.get('input')).__name__}"
    return f"{where}: {field_problem(error, loc)}"


def parse_definition(document: Any) -> SegmentDefinition:
    """A definition from JSON text or a decoded JSON object, or a UserError naming the place."""
    if isinstance(document, SegmentDefinition):
        return document
    if isinstance(document, str | bytes):
        document = loads(document)
    try:
        return SegmentDefinition.model_validate(document)
    except ValidationError as error:
        raise UserError(shortened(_one_line(error.errors(include_url=False)[0]))) from None


def parse_filter(spec: Any) -> FilterSpec:
    """One filter (for a page editing a single filter); the message says 'filter: ...'."""
    try:
        definition = parse_definition({"groups": [{"filters": [spec]}]})
    except UserError as error:
        raise UserError(str(error).replace("group 1, filter 1", "filter", 1)) from None
    return definition.groups[0].filters[0]


def loads(text: str | bytes) -> Any:
    try:
        return safejson.loads(text)
    except safejson.JSONLimitError as error:
        raise UserError(f"the segment definition {error}") from None


def dumps(definition: SegmentDefinition) -> str:
    return json.dumps(definition.to_json(), indent=2, ensure_ascii=False)


def empty_definition() -> SegmentDefinition:
    """All users: no groups."""
    return SegmentDefinition()


def definition_of(*filters: Mapping | FilterSpec, match: str = "all") -> SegmentDefinition:
    """A one-group definition from filters (the common case)."""
    specs = [f.model_dump() if isinstance(f, BaseModel) else f for f in filters]
    return parse_definition({"groups": [{"match": match, "filters": specs}]})


def definition_schema() -> dict:
    """The JSON Schema of the definition format (docs/segments.md shows it)."""
    return SegmentDefinition.model_json_schema(mode="validation")


@dataclass(frozen=True)
class Located:
    """A filter and where it sits, for messages and the funnel."""

    section: str  # "groups" or "exclude"
    group: int  # 0-based
    index: int  # 0-based within the group
    spec: FilterSpec
    kind: Filter

    @property
    def where(self) -> str:
        prefix = "exclusion group" if self.section == "exclude" else "group"
        return f"{prefix} {self.group + 1}, filter {self.index + 1} ({self.kind.label})"


def located_filters(definition: SegmentDefinition) -> Iterator[Located]:
    """Every filter with its place, groups first then exclusions."""
    for section in SECTIONS:
        for g, group in enumerate(getattr(definition, section)):
            for f, spec in enumerate(group.filters):
                yield Located(section, g, f, spec, FILTERS[spec.type])


def predictions_used(definition: SegmentDefinition) -> list[int]:
    """The prediction ids the definition's likelihood filters refer to, in order of first use."""
    seen: list[int] = []
    for item in located_filters(definition):
        for prediction in item.kind.predictions(item.spec):
            if prediction not in seen:
                seen.append(prediction)
    return seen


def is_empty(definition: SegmentDefinition) -> bool:
    """True when the definition keeps every user (no filters anywhere)."""
    return not any(True for _ in located_filters(definition))


def truncated(definition: SegmentDefinition, keep: int) -> SegmentDefinition:
    """The definition with only its first `keep` filters (reading order): a funnel step."""
    remaining = keep
    sections = {}
    for section in SECTIONS:
        groups = []
        for group in getattr(definition, section):
            filters = group.filters[: max(remaining, 0)]
            remaining -= len(filters)
            groups.append(group.model_copy(update={"filters": filters}))
        sections[section] = tuple(groups)
    return definition.model_copy(update=sections)


# --- sentences ---------------------------------------------------------------------------


def filter_sentence(spec: FilterSpec, names: Mapping[int, str] | None = None) -> str:
    return FILTERS[spec.type].sentence(spec, names or {})


def _merged_time_window(filters: list[FilterSpec]) -> tuple[str | None, list[FilterSpec]]:
    """'More than A ago' + 'less than B ago' on the same fact, in one AND group, read as 'between'."""
    for kind in ("last_used", "first_used"):
        older = [f for f in filters if f.type == kind and f.op == "more_than"]
        newer = [f for f in filters if f.type == kind and f.op == "less_than"]
        if len(older) == 1 and len(newer) == 1 and older[0].unit == newer[0].unit:
            a, b = older[0].value, newer[0].value
            if a < b:
                verb = FILTERS[kind].verb(older[0])
                rest = [f for f in filters if f is not older[0] and f is not newer[0]]
                return f"{verb} between {a:g} and {_unit_word(b, older[0].unit)} ago", rest
    return None, filters


def _group_sentence(group: Group, names: Mapping[int, str]) -> str:
    filters = list(group.filters)
    parts: list[str] = []
    if group.match == "all":
        merged, filters = _merged_time_window(filters)
        if merged:
            parts.append(merged)
    parts += [FILTERS[f.type].sentence(f, names) for f in filters]
    joiner = " and " if group.match == "all" else " or "
    return joiner.join(p if i == 0 else p[0].lower() + p[1:] for i, p in enumerate(parts))


def describe(definition: SegmentDefinition, names: Mapping[int, str] | None = None) -> list[str]:
    """The definition as sentences: one per group, 'Or:'/'And:' between groups, 'Except:' exclusions.

    `names` maps prediction ids to names; without it likelihood filters say "prediction #id".
    """
    names = names or {}
    lines: list[str] = []
    groups = [g for g in definition.groups if g.filters]
    for i, group in enumerate(groups):
        sentence = _group_sentence(group, names)
        if i:
            sentence = ("And: " if definition.match == "all" else "Or: ") + sentence
        lines.append(sentence)
    if not lines:
        lines.append("All users")
    for group in definition.exclude:
        if group.filters:
            lines.append("Except: " + _group_sentence(group, names))
    return lines
