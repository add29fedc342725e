"""The campaign composer's state: one typed draft, whatever step is on screen.

The composer's widgets edit a `ComposerDraft` (kept whole in the session) and the draft becomes a
`CampaignSpec` only through `to_spec`, the one place the two meet. The draft keeps what a
marketer may come back to (the weekly days while "Once" is chosen, the number of days while
re-eligibility is "always"), which a spec has no room for. Saved drafts come back through
`from_spec`, so a round trip loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.campaigns import experiment
from core.campaigns.spec import (
    MAX_BODY,
    MAX_INTERVAL,
    MAX_OFFER,
    MAX_REELIGIBLE_DAYS,
    MAX_SENDS,
    MAX_TITLE,
    CampaignSpec,
    Channel,
    DeliverySettings,
    EndAfter,
    EndNever,
    EndOn,
    Message,
    Platform,
    Recurring,
    SendNow,
    SendOnce,
    Tier,
    Weekday,
    parse_campaign_spec,
)
from core.segments.definition import SegmentDefinition, predictions_used

Kind = Literal["now", "once", "recurring"]
Frequency = Literal["daily", "weekly", "monthly"]
EndKind = Literal["never", "on", "after"]
Reeligibility = Literal["always", "after", "never"]
Source = Literal["segment", "selection"]
DEFAULT_SEND_TIME = time(17, 45)
DEFAULT_WEEKDAYS: tuple[str, ...] = ("TH",)
VARIANT_NAMES = "ABCDE"


class VariantSlot(BaseModel):
    """One A/B/n variant as the composer edits it: a share may still be 0 or the names clash
    (experiment.variant_set_problems says so); `to_spec` makes it a spec.ABVariant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="", max_length=experiment.VARIANT_NAME_LENGTH)
    share: float = Field(default=0.0, ge=0, le=100)
    delay_minutes: int = Field(default=0, ge=0, le=experiment.MAX_DELAY_MINUTES)
    title: str = Field(default="", max_length=MAX_TITLE)
    body: str = Field(default="", max_length=MAX_BODY)
    offers: dict[Tier, Annotated[str, Field(max_length=MAX_OFFER)]] = Field(default_factory=dict)


DEFAULT_SLOTS = tuple(
    VariantSlot(name=name, share=50.0 if index < 2 else 0.0) for index, name in enumerate(VARIANT_NAMES)
)


class ComposerDraft(BaseModel):
    """Everything the composer's four steps hold; frozen: each change is a new draft (`with_`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: int | None = None  # the saved draft being edited
    version: int | None = None  # its version when opened (a stale save is refused)
    # target
    name: str = ""
    source: Source = "segment"
    segment_id: int | None = None
    selection: SegmentDefinition | None = None  # a Predictions selection carried by the link
    channel: Channel = "push"
    platforms: tuple[Platform, ...] = ()
    # message
    message: Message = Field(default_factory=Message)
    # schedule
    kind: Kind = "now"
    frequency: Frequency = "weekly"
    interval: int = Field(default=1, ge=1, le=MAX_INTERVAL)
    weekdays: tuple[Weekday, ...] = DEFAULT_WEEKDAYS
    month_day: int = Field(default=1, ge=1, le=31)
    send_time: time = DEFAULT_SEND_TIME
    start: date  # see `new`: the composer's clock is read by the page, once
    end_kind: EndKind = "never"
    end_date: date
    end_count: int = Field(default=10, ge=1, le=MAX_SENDS)
    local_time: bool = True
    # delivery
    reeligibility: Reeligibility = "always"
    reeligible_days: int = Field(default=14, ge=0, le=MAX_REELIGIBLE_DAYS)
    obeys_cap: bool = True
    obeys_quiet: bool = True
    # measurement (core/campaigns/experiment.py)
    conversion_event: str | None = None  # None: the prediction's event, else a session
    window_days: int = Field(default=experiment.DEFAULT_WINDOW_DAYS, ge=1, le=experiment.MAX_WINDOW_DAYS)
    control_percent: float = Field(default=experiment.DEFAULT_CONTROL_PERCENT, ge=0, le=experiment.MAX_CONTROL_PERCENT)
    # A/B/n variants: all five slots are kept, the first `variant_count` are used while `ab_test` is on
    ab_test: bool = False
    variant_count: int = Field(default=2, ge=2, le=experiment.MAX_VARIANTS)
    variant_slots: tuple[VariantSlot, ...] = Field(default=DEFAULT_SLOTS, min_length=5, max_length=5)

    @classmethod
    def new(cls, today: date) -> ComposerDraft:
        return cls(start=today, end_date=today + timedelta(days=90))

    def with_(self, **changes) -> ComposerDraft:
        """This draft with some fields changed (checked, as a new draft)."""
        return type(self).model_validate({**dict(self), **changes})

    def with_message(self, **changes) -> ComposerDraft:
        return self.with_(message=self.message.model_copy(update=changes))

    def with_slot(self, index: int, **changes) -> ComposerDraft:
        slots = list(self.variant_slots)
        slots[index] = slots[index].model_copy(update=changes)
        return self.with_(variant_slots=tuple(VariantSlot.model_validate(dict(s)) for s in slots))

    def used_slots(self) -> tuple[VariantSlot, ...]:
        return self.variant_slots[: self.variant_count] if self.ab_test else ()

    def variant_problems(self) -> list[str]:
        """The variants in use, taken together, as sentences (empty when they make a valid set)."""
        found = experiment.variant_set_problems([(slot.name, slot.share) for slot in self.used_slots()])
        return [f"{text[0].upper()}{text[1:]}." for text in found]

    def with_shares_split_evenly(self) -> ComposerDraft:
        count = self.variant_count
        draft = self
        for index in range(count):
            draft = draft.with_slot(index, share=float(100 // count + (1 if index < 100 % count else 0)))
        return draft

    def uses_selection(self) -> bool:
        return self.source == "selection" and self.selection is not None

    def audience_definition(self, segment_definitions: Mapping[int, SegmentDefinition]) -> SegmentDefinition | None:
        """The definition the draft targets now (None while no audience is chosen)."""
        if self.uses_selection():
            return self.selection
        return segment_definitions.get(self.segment_id) if self.segment_id is not None else None

    def with_audience_prediction(self, definition: SegmentDefinition | None, targetable: set[int]) -> ComposerDraft:
        """For a newly chosen audience: the copy's likelihood comes from the audience's own
        prediction when it has one (so `{{ offer }}` is never blank by default); else unchanged."""
        own = [p for p in predictions_used(definition) if p in targetable] if definition is not None else []
        return self.with_message(prediction_id=own[0]) if own else self

    def schedule(self) -> SendNow | SendOnce | Recurring:
        if self.kind == "now":
            return SendNow()
        at = self.send_time.strftime("%H:%M")
        if self.kind == "once":
            return SendOnce(kind="once", time=at, start=self.start, local_time=self.local_time)
        end = {"never": EndNever(), "on": EndOn(kind="on", date=self.end_date)}.get(self.end_kind) or EndAfter(
            kind="after", count=self.end_count
        )
        return Recurring(
            kind="recurring",
            frequency=self.frequency,
            interval=self.interval,
            weekdays=self.weekdays if self.frequency == "weekly" else (),
            month_day=self.month_day if self.frequency == "monthly" else None,
            time=at,
            start=self.start,
            end=end,
            local_time=self.local_time,
        )

    def settings(self) -> DeliverySettings:
        return DeliverySettings(
            reeligible=self.reeligibility != "never",
            reeligible_after_days=self.reeligible_days if self.reeligibility == "after" else None,
            obeys_frequency_cap=self.obeys_cap,
            obeys_quiet_hours=self.obeys_quiet,
            conversion_event=self.conversion_event,
            conversion_window_days=self.window_days,
            control_percent=self.control_percent,
        )

    def message_with_variants(self) -> dict:
        """The message with the A/B/n variants in use (a document: the spec checks it)."""
        variants = [dict(slot) | {"name": slot.name.strip()} for slot in self.used_slots()]
        return {**dict(self.message), "ab_variants": variants}

    def to_spec(self) -> CampaignSpec:
        """The campaign this draft describes (what is saved and launched)."""
        return parse_campaign_spec(
            {
                "name": self.name.strip(),
                "segment_id": None if self.uses_selection() else self.segment_id,
                "audience": self.selection if self.uses_selection() else None,
                "channel": self.channel,
                "platforms": self.platforms,
                "message": self.message_with_variants(),
                "schedule": self.schedule(),
                "settings": self.settings(),
            },
            what="campaign draft",
        )

    @classmethod
    def from_spec(cls, spec: CampaignSpec, campaign_id: int, version: int, today: date) -> ComposerDraft:
        """A saved campaign back in the composer."""
        fields: dict = {
            "campaign_id": campaign_id,
            "version": version,
            "name": spec.name,
            "source": "selection" if spec.segment_id is None and spec.audience is not None else "segment",
            "segment_id": spec.segment_id,
            "selection": spec.audience,
            "channel": spec.channel,
            "platforms": spec.platforms,
            "message": spec.message.model_copy(update={"ab_variants": ()}),  # the slots hold them
            "kind": spec.schedule.kind,
            "conversion_event": spec.settings.conversion_event,
            "window_days": spec.settings.conversion_window_days,
            "ab_test": bool(spec.message.ab_variants),
            "obeys_cap": spec.settings.obeys_frequency_cap,
            "obeys_quiet": spec.settings.obeys_quiet_hours,
            "reeligibility": "never"
            if not spec.settings.reeligible
            else ("after" if spec.settings.reeligible_after_days is not None else "always"),
        }
        if spec.settings.control_percent is not None:
            fields["control_percent"] = spec.settings.control_percent
        if spec.message.ab_variants:
            stored = [VariantSlot.model_validate(v.model_dump()) for v in spec.message.ab_variants]
            fields["variant_slots"] = (*stored, *DEFAULT_SLOTS[len(stored) :])
            fields["variant_count"] = len(stored)
        if spec.settings.reeligible_after_days is not None:
            fields["reeligible_days"] = spec.settings.reeligible_after_days
        schedule = spec.schedule
        if schedule.kind != "now":
            hours, minutes = (int(part) for part in schedule.time.split(":"))
            fields |= {"send_time": time(hours, minutes), "start": schedule.start, "local_time": schedule.local_time}
        if schedule.kind == "recurring":
            fields |= {"frequency": schedule.frequency, "interval": schedule.interval}
            fields["weekdays"] = schedule.weekdays or DEFAULT_WEEKDAYS
            fields["month_day"] = schedule.month_day or 1
            fields["end_kind"] = schedule.end.kind
            if schedule.end.kind == "on":
                fields["end_date"] = schedule.end.date
            if schedule.end.kind == "after":
                fields["end_count"] = schedule.end.count
        draft = cls.new(today)
        return draft.with_(**fields)


def selection_sentence(definition: SegmentDefinition, prediction_names: Mapping[int, str]) -> str:
    """A Predictions selection in words, naming the prediction: High likelihood of “Purchase in 30 days”."""
    spec = definition.groups[0].filters[0]
    name = prediction_names.get(spec.prediction, f"prediction {spec.prediction}")
    if spec.type == "likelihood_category":
        return f"{' or '.join(spec.categories)} likelihood of “{name}”"
    return f"likelihood score {spec.min:g} to {spec.max:g} of “{name}”"


def suggested_name(draft: ComposerDraft, segment_names: Mapping[int, str], prediction_names: Mapping[int, str]) -> str:
    """The greyed example in the name field, fitting where the marketer started."""
    if draft.uses_selection():
        spec = draft.selection.groups[0].filters[0]
        name = prediction_names.get(spec.prediction, "prediction")
        if spec.type == "likelihood_category":
            return f"{' and '.join(spec.categories)} likelihood - {name}"
        return f"Likelihood {spec.min:g}-{spec.max:g} - {name}"
    if draft.segment_id in segment_names:
        return f"{segment_names[draft.segment_id]} - message"
    return "e.g. Spring sale - weekly push"
