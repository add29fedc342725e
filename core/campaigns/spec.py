"""A campaign's spec as typed values: target, message, schedule and delivery settings.

Parsed once at each edge (the composer's draft, a campaigns row, a file) into frozen pydantic
models; the store, the schedule and the pages read attributes, never raw dicts. Every field has
limits and unknown fields are refused; a bad document is one UserError naming the place
("schedule: 'interval' must be between 1 and 366, not 0"). Whether a well-formed spec can be
*launched* (an audience that exists, a send still ahead, copy that renders) is a separate
question, answered by `store.validate` with every problem at once.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from core.campaigns import experiment
from core.campaigns.audience import CAMPAIGN_CHANNELS, PLATFORMS
from core.campaigns.personalise import DEFAULT_OFFERS
from core.campaigns.schedule import WEEKDAYS
from core.errors import UserError
from core.instants import EARLIEST, LATEST
from core.segments.definition import SegmentDefinition
from core.segments.filter_specs import MAX_PREDICTION_ID
from core.validation_messages import field_problem, shortened

MAX_NAME = 200
MAX_TITLE = 1_000  # far above any channel's limit: limits.py warns about lengths that matter
MAX_BODY = 20_000
MAX_OFFER = 200
MAX_INTERVAL = 366
MAX_SENDS = 10_000
MAX_REELIGIBLE_DAYS = 3_650

Tier = Literal["High", "Medium", "Low"]
Channel = Literal[tuple(CAMPAIGN_CHANNELS)]  # type: ignore[valid-type]
Platform = Literal[PLATFORMS]  # type: ignore[valid-type]
Weekday = Literal[WEEKDAYS]  # type: ignore[valid-type]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict:
        """The stored form (a JSON object for the database's JSON columns and for files)."""
        return self.model_dump(mode="json")


def _clock(value: Any) -> Any:
    """A time of day as HH:MM, 00:00 to 23:59."""
    text = str(value).strip() if isinstance(value, str) else None
    parts = text.split(":") if text else []
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"'time' must be a time of day as HH:MM (like 17:45), not {value!r}")
    if not (int(parts[0]) < 24 and int(parts[1]) < 60):
        raise ValueError(f"'time' must be a time of day as HH:MM (like 17:45), not {value!r}")
    return text


def _day(value: Any, info) -> Any:
    """An ISO date within the supported range (core.instants)."""
    name = info.field_name
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"'{name}' must be a date as YYYY-MM-DD, not {value!r}") from None
    if not EARLIEST.date() <= day <= LATEST.date():
        raise ValueError(f"'{name}' must be within the supported years {EARLIEST.year}-{LATEST.year}, not {day}")
    return day


def _whole(low: int, high: int) -> BeforeValidator:
    def check(value: Any, info) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"'{info.field_name}' must be a whole number from {low} to {high}, not {value!r}")
        return value

    return BeforeValidator(check)


Clock = Annotated[str, BeforeValidator(_clock)]
Day = Annotated[date, BeforeValidator(_day)]


# --- schedule ----------------------------------------------------------------------------


class EndNever(_Frozen):
    kind: Literal["never"] = "never"


class EndOn(_Frozen):
    kind: Literal["on"]
    date: Day


class EndAfter(_Frozen):
    kind: Literal["after"]
    count: Annotated[int, _whole(1, MAX_SENDS)]


End = Annotated[EndNever | EndOn | EndAfter, Field(discriminator="kind")]


class SendNow(_Frozen):
    """Once, to everyone at the same instant, at launch."""

    kind: Literal["now"] = "now"


class SendOnce(_Frozen):
    """Once, on `start` at `time` (each user's local wall clock, or the company zone's)."""

    kind: Literal["once"]
    time: Clock
    start: Day
    local_time: StrictBool = True


class Recurring(_Frozen):
    """RFC 5545 recurrence from `start` at `time` (see schedule.py)."""

    kind: Literal["recurring"]
    frequency: Literal["daily", "weekly", "monthly"]
    interval: Annotated[int, _whole(1, MAX_INTERVAL)] = 1
    weekdays: tuple[Weekday, ...] = Field(default=(), max_length=7)  # weekly
    month_day: Annotated[int, _whole(1, 31)] | None = None  # monthly
    time: Clock
    start: Day
    end: End = EndNever()
    local_time: StrictBool = True

    @field_validator("weekdays", mode="after")
    @classmethod
    def _in_week_order(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d for d in WEEKDAYS if d in days)


Schedule = Annotated[SendNow | SendOnce | Recurring, Field(discriminator="kind")]


# --- message -----------------------------------------------------------------------------


class TierCopy(_Frozen):
    """One tier's own title and body; a blank field falls back to the main copy."""

    title: str = Field(default="", max_length=MAX_TITLE)
    body: str = Field(default="", max_length=MAX_BODY)


def _variant_name(value: Any) -> Any:
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not 1 <= len(text) <= experiment.VARIANT_NAME_LENGTH:
        raise ValueError(f"'name' must be 1 to {experiment.VARIANT_NAME_LENGTH} characters, not {value!r}")
    return text


def _share(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise ValueError(f"'share' must be a percent above 0 and at most 100, not {value!r}")
    return float(value)


class ABVariant(_Frozen):
    """One A/B/n variant of the message: its share of the treated users and what it changes.

    Blank copy and missing offers fall back to the message's own; `delay_minutes` tests a second send time."""

    name: Annotated[str, BeforeValidator(_variant_name)]
    share: Annotated[float, BeforeValidator(_share)]  # percent of the treated users
    title: str = Field(default="", max_length=MAX_TITLE)
    body: str = Field(default="", max_length=MAX_BODY)
    offers: dict[Tier, Annotated[str, Field(max_length=MAX_OFFER)]] = Field(default_factory=dict)
    delay_minutes: Annotated[int, _whole(0, experiment.MAX_DELAY_MINUTES)] = 0

    def message(self, base: Message) -> Message:
        """The campaign's message with this variant's copy and offers, and nothing else changed."""
        changes: dict = {"ab_variants": ()}
        for key in ("title", "body"):
            if getattr(self, key).strip():
                changes[key] = getattr(self, key)
        if self.offers:
            changes["offers"] = {**base.offers, **self.offers}
        return base.model_copy(update=changes)


def _variant_count(value: Any) -> Any:
    if isinstance(value, list | tuple) and len(value) and not 2 <= len(value) <= experiment.MAX_VARIANTS:
        raise ValueError(f"'ab_variants' must hold no variants or 2 to {experiment.MAX_VARIANTS}, not {len(value)}")
    return value


class Message(_Frozen):
    """The copy (Liquid), per-tier variants, offers by tier, whose likelihood the copy sees, A/B/n variants."""

    title: str = Field(default="", max_length=MAX_TITLE)  # push title / email subject
    body: str = Field(default="", max_length=MAX_BODY)
    use_variants: StrictBool = False
    variants: dict[Tier, TierCopy] = Field(default_factory=dict)
    offers: dict[Tier, Annotated[str, Field(max_length=MAX_OFFER)]] = Field(
        default_factory=lambda: dict(DEFAULT_OFFERS)
    )
    prediction_id: Annotated[int, Field(ge=1, le=MAX_PREDICTION_ID)] | None = None
    ab_variants: Annotated[tuple[ABVariant, ...], BeforeValidator(_variant_count)] = ()

    @model_validator(mode="after")
    def _variants_fit_together(self) -> Message:
        found = experiment.variant_set_problems([(v.name, v.share) for v in self.ab_variants])
        if found:
            raise ValueError(found[0])
        return self

    def offers_apply(self) -> bool:
        """Offers reach the copy only through a prediction's tiers."""
        return self.prediction_id is not None


# --- delivery settings -------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    """An event name trimmed; a blank one is no choice (the default event)."""
    if not isinstance(value, str):
        return value
    return value.strip() or None


def _control_percent(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(
            f"'control_percent' must be a number from 0 to {experiment.MAX_CONTROL_PERCENT:g}, not {value!r}"
        )
    if not 0 <= value <= experiment.MAX_CONTROL_PERCENT:
        raise ValueError(
            f"'control_percent' must be from 0% to {experiment.MAX_CONTROL_PERCENT:g}% of the audience, not {value:g}%"
        )
    return float(value)


class DeliverySettings(_Frozen):
    """Re-eligibility and whether the campaign obeys the company's delivery rules."""

    reeligible: StrictBool = True
    reeligible_after_days: Annotated[int, _whole(0, MAX_REELIGIBLE_DAYS)] | None = None
    obeys_frequency_cap: StrictBool = True
    obeys_quiet_hours: StrictBool = True
    active_from: str | None = Field(default=None, max_length=40)  # set at launch and resume
    # How the campaign is measured (core/campaigns/experiment.py), written out in full at launch.
    conversion_event: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, max_length=experiment.MAX_EVENT_NAME
    )  # None: the prediction's event, else a session
    conversion_window_days: Annotated[int, _whole(1, experiment.MAX_WINDOW_DAYS)] = experiment.DEFAULT_WINDOW_DAYS
    # None: not chosen. At launch that becomes the default share; a row launched before control
    # groups existed has none and holds nobody out (experiment.measurement_of).
    control_percent: Annotated[float | None, BeforeValidator(_control_percent)] = None


# --- the spec ----------------------------------------------------------------------------


class CampaignSpec(_Frozen):
    """Everything the composer collects; what a campaigns row holds."""

    name: str = Field(default="", max_length=MAX_NAME)
    segment_id: Annotated[int, Field(ge=1, le=MAX_PREDICTION_ID)] | None = None
    audience: SegmentDefinition | None = None  # a definition, when not a saved segment (a Predictions selection)
    channel: Channel = "push"
    platforms: tuple[Platform, ...] = ()  # empty: every platform
    message: Message = Field(default_factory=Message)
    schedule: Schedule = Field(default_factory=SendNow)
    settings: DeliverySettings = Field(default_factory=DeliverySettings)

    @field_validator("name", mode="before")
    @classmethod
    def _one_line_name(cls, name: Any) -> Any:
        return " ".join(name.split()) if isinstance(name, str) else name

    @field_validator("platforms", mode="after")
    @classmethod
    def _known_order(cls, platforms: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p for p in PLATFORMS if p in platforms)

    def to_row(self) -> dict:
        """The campaigns row's columns."""
        return self.to_json()


# --- parsing: pydantic's errors as one line naming the place -------------------------------

_PLACES = {"message": "message", "schedule": "schedule", "settings": "delivery settings", "audience": "audience"}


def _one_line(error: ErrorDetails, what: str) -> str:
    """'schedule: 'interval' must be ...' from one pydantic error: the place, then the field's problem."""
    loc = [str(part) for part in error["loc"]]
    where = what
    if loc and loc[0] in _PLACES:
        where = _PLACES[loc[0]]
        loc = loc[1:]
    if loc and loc[0] in ("now", "once", "recurring"):  # the union's tag is not a place for people
        loc = loc[1:]
    if len(loc) >= 2 and loc[0] == "end" and loc[1] in ("never", "on", "after"):
        loc = ["end", *loc[2:]]
    if len(loc) >= 2 and loc[0] == "ab_variants" and loc[1].isdigit():  # the variant, by position
        where, loc = f"{where}: variant {int(loc[1]) + 1}", loc[2:]
    return f"{where}: {field_problem(error, loc)}"


def parse_campaign_spec(document: Any, what: str = "campaign") -> CampaignSpec:
    """A spec from a decoded JSON object (a row, a file, a draft), or a UserError naming the place."""
    if isinstance(document, CampaignSpec):
        return document
    if isinstance(document, dict) and isinstance(document.get("audience"), dict):
        from core.segments.definition import parse_definition

        try:  # the audience's own messages name the group and filter
            document = {**document, "audience": parse_definition(document["audience"])}
        except UserError as error:
            raise UserError(f"{what}: audience: {error}") from None
    try:
        return CampaignSpec.model_validate(document)
    except ValidationError as error:
        raise UserError(shortened(_one_line(error.errors(include_url=False)[0], what))) from None


def parse_schedule(document: Any) -> SendNow | SendOnce | Recurring:
    """A schedule alone (e.g. a campaigns row's schedule column for dispatch)."""
    if isinstance(document, SendNow | SendOnce | Recurring):
        return document
    return parse_campaign_spec({"schedule": document}).schedule


def parse_message(document: Any) -> Message:
    """A message alone (e.g. a campaigns row's message column for dispatch)."""
    if isinstance(document, Message):
        return document
    return parse_campaign_spec({"message": document or {}}).message


def parse_settings(document: Any) -> DeliverySettings:
    if isinstance(document, DeliverySettings):
        return document
    return parse_campaign_spec({"settings": document or {}}).settings
