"""The typed form of one segment filter: a frozen pydantic model per filter type.

A filter arrives as JSON (a page, a file, the CLI, a database row) and is parsed once into one
of these models; from then on the renderings in `filters.py` read attributes, never raw dicts.
Every field has limits (lengths, ranges, list sizes) and unknown fields are refused. Messages
are written for people: `definition.parse_definition` adds where the filter sits.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from core.importer import PLATFORMS
from core.tiers import TIER_NAMES

MAX_DAYS = 36_600  # a century: anything longer is a typo
UNITS = {"days": 1, "weeks": 7}
BUCKETS = 10_000
MAX_COUNT = 10**15  # counts and amounts beyond this are typos, and would lose precision as floats
MAX_EVENT_NAME = 200  # as long as an imported event name may be
MAX_VALUES = 1_000  # more than every IANA zone, country or language there is
MAX_PREDICTION_ID = 2**63 - 1


class _Spec(BaseModel):
    """Frozen, strict about unknown fields; every subclass sets `type` first."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _bounded(low: float, high: float, *, above_low: bool = False) -> BeforeValidator:
    """Numbers only, within [low, high] (or (low, high]), with the message a person reads.

    JSON true/false and "5" are not numbers; NaN and infinity are not finite. Runs before
    pydantic's own checks, whose Field(ge/le) limits are what the JSON Schema shows.
    """

    def check(value: Any, info: ValidationInfo) -> Any:
        name = f"'{info.field_name}'"
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value!r}")
        if above_low and value <= low:
            raise ValueError(f"{name} must be more than {low:g}")
        if value < 0 <= low:
            raise ValueError(f"{name} cannot be negative ({value:g})")
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low:g} and {high:g}, not {value:g}")
        return value

    return BeforeValidator(check)


def _prediction_id(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PREDICTION_ID:
        raise ValueError(f"'prediction' must be a prediction id, not {value!r}")
    return value


def _event_name(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'event' must name an event, not {value!r}")
    if len(value.strip()) > MAX_EVENT_NAME:
        raise ValueError(f"'event' has at most {MAX_EVENT_NAME} characters (this one has {len(value.strip()):,})")
    return value.strip()


Days = Annotated[float, Field(ge=0, le=MAX_DAYS), _bounded(0, MAX_DAYS)]
WindowDays = Annotated[float, Field(gt=0, le=MAX_DAYS), _bounded(0, MAX_DAYS, above_low=True)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT), _bounded(0, MAX_COUNT)]
Amount = Annotated[float, Field(ge=0, le=MAX_COUNT), _bounded(0, MAX_COUNT)]
Score = Annotated[float, Field(ge=0, le=100), _bounded(0, 100)]
Bucket = Annotated[int, Field(ge=0, le=BUCKETS - 1), _bounded(0, BUCKETS - 1)]
PredictionId = Annotated[int, BeforeValidator(_prediction_id), Field(ge=1, le=MAX_PREDICTION_ID)]
EventName = Annotated[str, BeforeValidator(_event_name), Field(min_length=1, max_length=MAX_EVENT_NAME)]
TimeOp = Literal["more_than", "less_than"]
Unit = Literal["days", "weeks"]


# --- relative times -------------------------------------------------------------------


class _RelativeTimeSpec(_Spec):
    """`op` more_than / less_than `value` `unit` ago."""

    op: TimeOp
    value: Days
    unit: Unit = "days"

    @model_validator(mode="after")
    def _within_a_century(self):
        high = MAX_DAYS / UNITS[self.unit]
        if self.value > high:
            raise ValueError(f"'value' must be between 0 and {high:g}, not {self.value:g}")
        return self


class LastUsedSpec(_RelativeTimeSpec):
    type: Literal["last_used"]


class FirstUsedSpec(_RelativeTimeSpec):
    type: Literal["first_used"]


class EventTimeSpec(_RelativeTimeSpec):
    """Did event E for the first / last time more / less than N days ago."""

    type: Literal["event_time"]
    event: EventName
    which: Literal["first", "last"] = "last"


# --- count and money ranges ------------------------------------------------------------


class _RangeSpec(_Spec):
    """An inclusive [min, max] range; either end may be open (None), not both."""

    @model_validator(mode="after")
    def _ordered(self):
        low, high = self.min, self.max  # type: ignore[attr-defined]
        if low is None and high is None:
            raise ValueError("give a minimum, a maximum or both")
        if low is not None and high is not None and low > high:
            raise ValueError(f"the minimum {low:g} is above the maximum {high:g}")
        return self


class SessionCountSpec(_RangeSpec):
    type: Literal["session_count"]
    min: Count | None = None
    max: Count | None = None


class PurchaseCountSpec(_RangeSpec):
    type: Literal["purchase_count"]
    min: Count | None = None
    max: Count | None = None


class MoneySpentSpec(_RangeSpec):
    type: Literal["money_spent"]
    min: Amount | None = None
    max: Amount | None = None


class RandomBucketSpec(_RangeSpec):
    type: Literal["random_bucket"]
    min: Bucket | None = None
    max: Bucket | None = None

    @model_validator(mode="after")
    def _closed(self):
        # An open end is the first or last bucket: the stored form always has both.
        object.__setattr__(self, "min", 0 if self.min is None else self.min)
        object.__setattr__(self, "max", BUCKETS - 1 if self.max is None else self.max)
        return self


class RecentSessionsSpec(_RangeSpec):
    """X sessions in the last Y days."""

    type: Literal["recent_sessions"]
    min: Count | None = None
    max: Count | None = None
    days: WindowDays


class DidEventSpec(_RangeSpec):
    """Did event E at least / at most N times, in total or in the last D days."""

    type: Literal["event"]
    event: EventName
    min: Count | None = None
    max: Count | None = None
    days: WindowDays | None = None

    @model_validator(mode="before")
    @classmethod
    def _at_least_once(cls, data: Any) -> Any:
        # "did event E" with no count means at least once
        if isinstance(data, dict) and data.get("min") is None and data.get("max") is None:
            return {**data, "min": 1}
        return data


# --- attributes --------------------------------------------------------------------------


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _listed(values: Any, noun: str) -> list[str]:
    """A list of non-blank strings (a lone string is a list of one), stripped, first use kept."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple) or not values:
        raise ValueError("'values' must be a non-empty list")
    if len(values) > MAX_VALUES:
        raise ValueError(f"'values' holds at most {MAX_VALUES:,} items (this one has {len(values):,})")
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_EVENT_NAME:
            raise ValueError(f"{value!r} is not a valid {noun}")
        cleaned.append(value.strip())
    return cleaned


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


class PlatformSpec(_Spec):
    type: Literal["platform"]
    values: tuple[str, ...] = Field(min_length=1, max_length=MAX_VALUES)

    @field_validator("values", mode="before")
    @classmethod
    def _known(cls, values: Any) -> tuple[str, ...]:
        canonical = {p.lower(): p for p in PLATFORMS}
        cleaned = []
        for value in _listed(values, "platform"):
            if value.lower() not in canonical:
                raise ValueError(f"unknown platform {value!r}; use {', '.join(PLATFORMS)}")
            cleaned.append(canonical[value.lower()])
        return _unique(cleaned)


class CountrySpec(_Spec):
    type: Literal["country"]
    values: tuple[str, ...] = Field(min_length=1, max_length=MAX_VALUES)

    @field_validator("values", mode="before")
    @classmethod
    def _codes(cls, values: Any) -> tuple[str, ...]:
        cleaned = []
        for value in _listed(values, "country code"):
            if not re.fullmatch(r"[A-Za-z]{2}", value):
                raise ValueError(f"{value!r} is not a two-letter country code (like US or FR)")
            cleaned.append(value.upper())
        return _unique(cleaned)


class LanguageSpec(_Spec):
    type: Literal["language"]
    values: tuple[str, ...] = Field(min_length=1, max_length=MAX_VALUES)

    @field_validator("values", mode="before")
    @classmethod
    def _codes(cls, values: Any) -> tuple[str, ...]:
        cleaned = _listed(values, "language code")
        for value in cleaned:
            if not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,4}", value):
                raise ValueError(f"{value!r} is not a language code (like en or pt-BR)")
        return _unique(cleaned)


class TimeZoneSpec(_Spec):
    type: Literal["timezone"]
    values: tuple[str, ...] = Field(min_length=1, max_length=MAX_VALUES)

    @field_validator("values", mode="before")
    @classmethod
    def _zones(cls, values: Any) -> tuple[str, ...]:
        cleaned = _listed(values, "time zone")
        for value in cleaned:
            if value not in _time_zones():
                raise ValueError(f"{value!r} is not an IANA time zone (like Europe/Paris)")
        return _unique(cleaned)


def _flag(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"'value' must be true or false, not {value!r}")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]


class PushEnabledSpec(_Spec):
    """A push token and opted in (a missing flag counts as no)."""

    type: Literal["push_enabled"]
    value: Flag = True


class EmailSubscribedSpec(_Spec):
    type: Literal["email_subscribed"]
    value: Flag = True


# --- likelihood --------------------------------------------------------------------------


class LikelihoodScoreSpec(_Spec):
    type: Literal["likelihood_score"]
    prediction: PredictionId
    min: Score = 0
    max: Score = 100

    @model_validator(mode="before")
    @classmethod
    def _open_ends(cls, data: Any) -> Any:
        # An open end is the end of the scale: the stored form always has both.
        if isinstance(data, dict):
            data = {**data, "min": data.get("min"), "max": data.get("max")}
            data["min"] = 0 if data["min"] is None else data["min"]
            data["max"] = 100 if data["max"] is None else data["max"]
        return data

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"the minimum score {self.min:g} is above the maximum {self.max:g}")
        return self


class LikelihoodCategorySpec(_Spec):
    type: Literal["likelihood_category"]
    prediction: PredictionId
    categories: tuple[str, ...] = Field(min_length=1, max_length=len(TIER_NAMES))

    @field_validator("categories", mode="before")
    @classmethod
    def _tiers(cls, categories: Any) -> tuple[str, ...]:
        if isinstance(categories, str):
            categories = [categories]
        if not isinstance(categories, list | tuple) or not categories:
            raise ValueError(f"'categories' must list at least one of {', '.join(TIER_NAMES)}")
        canonical = {name.lower(): name for name in TIER_NAMES}
        unknown = [c for c in categories if not isinstance(c, str) or c.lower() not in canonical]
        if unknown:
            raise ValueError(f"unknown likelihood category {unknown[0]!r}; use {', '.join(TIER_NAMES)}")
        chosen = {canonical[c.lower()] for c in categories}
        return tuple(n for n in TIER_NAMES if n in chosen)


SPECS: tuple[type[_Spec], ...] = (
    LikelihoodScoreSpec,
    LikelihoodCategorySpec,
    LastUsedSpec,
    FirstUsedSpec,
    SessionCountSpec,
    RecentSessionsSpec,
    DidEventSpec,
    EventTimeSpec,
    PurchaseCountSpec,
    MoneySpentSpec,
    PlatformSpec,
    CountrySpec,
    LanguageSpec,
    TimeZoneSpec,
    PushEnabledSpec,
    EmailSubscribedSpec,
    RandomBucketSpec,
)
"""Every filter type, in the order the page offers them."""

SPEC_BY_TYPE: dict[str, type[_Spec]] = {spec.model_fields["type"].annotation.__args__[0]: spec for spec in SPECS}

FilterSpec = Annotated[
    LikelihoodScoreSpec
    | LikelihoodCategorySpec
    | LastUsedSpec
    | FirstUsedSpec
    | SessionCountSpec
    | RecentSessionsSpec
    | DidEventSpec
    | EventTimeSpec
    | PurchaseCountSpec
    | MoneySpentSpec
    | PlatformSpec
    | CountrySpec
    | LanguageSpec
    | TimeZoneSpec
    | PushEnabledSpec
    | EmailSubscribedSpec
    | RandomBucketSpec,
    Field(discriminator="type"),
]
"""One filter, told apart by its `type`."""
