"""How a campaign is measured: its conversion event and window, its control group, its A/B/n variants.

Settings keys (campaign.settings):
    "conversion_event": str | None        # None: the prediction's event, else "session"
    "conversion_window_days": int         # 1-30, default 3: a conversion counts within N days of a send
    "control_percent": number             # 0-50, default 10: the share of the audience never messaged
Message key (campaign.message):
    "ab_variants": [{"name": "A", "share": 50, "title": ..., "body": ..., "offers": {...},
                     "delay_minutes": 0}, ...]   # 2-5 variants, shares summing to 100; blanks fall back

Who is held out, and who gets which variant, comes from the user's random bucket (users.random_bucket,
0-9999, stable per user), so a user stays in or out across every send of a campaign. Each campaign
ranks the 10,000 buckets in its own order (SHA-256 of the campaign id and the bucket), so two
campaigns hold out different users (a user held out of one campaign is held out of another only by
chance, 10% x 10%), and the control group is exactly `control_percent` of the buckets - its size
varies only by how users fall into buckets. The lowest ranks are the control group; the treated ranks
above them are split into variants by their shares. Hashing rather than a seeded shuffle keeps the
order identical on every machine and every NumPy version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from core.errors import UserError

BUCKETS = 10_000
DEFAULT_WINDOW_DAYS = 3
MAX_WINDOW_DAYS = 30
DEFAULT_CONTROL_PERCENT = 10.0
MAX_CONTROL_PERCENT = 50.0
DEFAULT_CONVERSION_EVENT = "session"  # when the campaign targets no prediction
MAX_VARIANTS = 5
MAX_DELAY_MINUTES = 24 * 60
VARIANT_NAME_LENGTH = 16  # outbox.variant is String(16)
CONTROL_STATUS = "control"  # an outbox row for a held-out user: recorded, never delivered

EVENT_KEY = "conversion_event"
WINDOW_KEY = "conversion_window_days"
CONTROL_KEY = "control_percent"
VARIANTS_KEY = "ab_variants"


@dataclass(frozen=True)
class Measurement:
    """What counts as a conversion for a campaign, for how long after a send, and who is held out."""

    conversion_event: str
    window_days: int = DEFAULT_WINDOW_DAYS
    control_percent: float = DEFAULT_CONTROL_PERCENT


@dataclass(frozen=True)
class Variant:
    """One A/B/n message variant: its share of the treated users and what it changes."""

    name: str
    share: float  # percent of the treated users
    title: str = ""  # blank: the campaign's own copy
    body: str = ""
    offers: dict[str, str] = field(default_factory=dict)  # per tier; missing tiers keep the campaign's
    delay_minutes: int = 0  # sent this long after the schedule's time: a second send time

    def message(self, base: dict) -> dict:
        """The campaign's message with this variant's copy, offers and nothing else changed."""
        merged = dict(base)
        merged.pop(VARIANTS_KEY, None)
        for key in ("title", "body"):
            if getattr(self, key).strip():
                merged[key] = getattr(self, key)
        if self.offers:
            merged["offers"] = {**(base.get("offers") or {}), **self.offers}
        return merged


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UserError(f"{what} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"{what} must be a number, not {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise UserError(f"{what} must be a finite number, not {value!r}")
    return number


def default_conversion_event(prediction_event: str | None) -> str:
    """The prediction's event when the campaign targets one, else a session."""
    return prediction_event or DEFAULT_CONVERSION_EVENT


def parse_measurement(settings: dict | None, prediction_event: str | None = None) -> Measurement:
    """The campaign's measurement from its settings (defaults for missing keys); UserError names the field."""
    settings = settings or {}
    event = settings.get(EVENT_KEY)
    if event is None or (isinstance(event, str) and not event.strip()):
        event = default_conversion_event(prediction_event)
    elif not isinstance(event, str) or len(event) > 100:
        raise UserError(f"conversion event must be an event name of at most 100 characters, not {event!r}")
    window = settings.get(WINDOW_KEY, DEFAULT_WINDOW_DAYS)
    window_number = _number(window, "conversion window (days)")
    if window_number != int(window_number) or not 1 <= window_number <= MAX_WINDOW_DAYS:
        raise UserError(f"conversion window must be a whole number of days from 1 to {MAX_WINDOW_DAYS}, not {window!r}")
    control = _number(settings.get(CONTROL_KEY, DEFAULT_CONTROL_PERCENT), "control group (%)")
    if not 0 <= control <= MAX_CONTROL_PERCENT:
        raise UserError(f"control group must be from 0% to {MAX_CONTROL_PERCENT:g}% of the audience, not {control:g}%")
    return Measurement(conversion_event=event.strip(), window_days=int(window_number), control_percent=control)


def parse_variants(message: dict | None) -> tuple[Variant, ...]:
    """The message's A/B/n variants (empty: one message for everyone); UserError names the variant and field."""
    raw = (message or {}).get(VARIANTS_KEY) or []
    if not isinstance(raw, list):
        raise UserError(f"variants must be a list of variants, not {type(raw).__name__}")
    if not raw:
        return ()
    if len(raw) < 2 or len(raw) > MAX_VARIANTS:
        raise UserError(f"a campaign has either no variants or 2 to {MAX_VARIANTS}, not {len(raw)}")
    variants: list[Variant] = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise UserError(f"variant {position} must be an object with a name and a share")
        name = str(item.get("name") or "").strip()
        where = f"variant {position}" + (f" ({name})" if name else "")
        if not name or len(name) > VARIANT_NAME_LENGTH:
            raise UserError(f"{where}: a name of 1 to {VARIANT_NAME_LENGTH} characters is required")
        share = _number(item.get("share"), f"{where} share (%)")
        if not 0 < share <= 100:
            raise UserError(f"{where}: the share must be above 0% and at most 100%, not {share:g}%")
        delay = _number(item.get("delay_minutes") or 0, f"{where} delay (minutes)")
        if delay != int(delay) or not 0 <= delay <= MAX_DELAY_MINUTES:
            raise UserError(f"{where}: the delay must be whole minutes from 0 to {MAX_DELAY_MINUTES}, not {delay:g}")
        offers = item.get("offers") or {}
        if not isinstance(offers, dict) or not all(isinstance(v, str) for v in offers.values()):
            raise UserError(f"{where}: offers must map a tier to a text, e.g. {{'Medium': '10% off'}}")
        texts = {key: item.get(key) or "" for key in ("title", "body")}
        if not all(isinstance(v, str) for v in texts.values()):
            raise UserError(f"{where}: title and body must be text")
        variants.append(
            Variant(
                name=name, share=share, offers={str(k): v for k, v in offers.items()}, delay_minutes=int(delay), **texts
            )
        )
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise UserError(f"variant names must differ: {', '.join(names)}")
    total = sum(v.share for v in variants)
    if abs(total - 100) > 1e-6:
        raise UserError(f"variant shares must add up to 100%, not {total:g}%")
    return tuple(variants)


def problems(settings: dict | None, message: dict | None) -> list[str]:
    """Blocking problems with a spec's measurement and variants, as sentences (the composer's check)."""
    found = []
    for parse, value in ((parse_measurement, settings), (parse_variants, message)):
        try:
            parse(value)
        except UserError as error:
            text = str(error)
            found.append(text[0].upper() + text[1:] + ".")
    return found


def frozen_at_launch(settings: dict, prediction_event: str | None) -> dict:
    """Settings with the measurement written out in full, so later changes of defaults or of the
    prediction never change what a running campaign measures."""
    measurement = parse_measurement(settings, prediction_event)
    return {
        **settings,
        EVENT_KEY: measurement.conversion_event,
        WINDOW_KEY: measurement.window_days,
        CONTROL_KEY: measurement.control_percent,
    }


def measurement_of(settings: dict | None, prediction_event: str | None = None) -> Measurement:
    """What a stored campaign measures. A campaign launched before control groups existed holds
    nobody out: starting one mid-way would hold out users who already had its messages."""
    settings = settings or {}
    if CONTROL_KEY not in settings:
        settings = {**settings, CONTROL_KEY: 0}
    return parse_measurement(settings, prediction_event)


@lru_cache(maxsize=256)
def bucket_ranks(campaign_id: int) -> np.ndarray:
    """Each bucket's rank (0-9999) in this campaign's own order: a permutation of the buckets."""
    digests = [hashlib.sha256(f"likely-campaign:{campaign_id}:{b}".encode()).digest()[:8] for b in range(BUCKETS)]
    keys = np.array([int.from_bytes(d, "big") for d in digests], dtype=np.uint64)
    ranks = np.empty(BUCKETS, dtype=np.int64)
    ranks[np.argsort(keys, kind="stable")] = np.arange(BUCKETS)
    ranks.setflags(write=False)
    return ranks


def control_cutoff(control_percent: float) -> int:
    """How many of the 10,000 buckets are held out."""
    return round(control_percent * BUCKETS / 100)


@dataclass(frozen=True)
class Assignment:
    """Per user (in the order given): held out or not, and the variant name (None: no variants / held out)."""

    control: np.ndarray  # bool
    variant: np.ndarray  # object: variant name or None


def assign(
    campaign_id: int, buckets: np.ndarray, control_percent: float, variants: tuple[Variant, ...] = ()
) -> Assignment:
    """Who is held out and who gets which variant, from the users' random buckets."""
    buckets = np.clip(np.asarray(buckets, dtype=np.int64), 0, BUCKETS - 1)
    ranks = bucket_ranks(campaign_id)[buckets]
    cutoff = control_cutoff(control_percent)
    control = ranks < cutoff
    names = np.full(len(buckets), None, dtype=object)
    if variants:
        # The treated ranks [cutoff, 10000) split by cumulative share.
        treated_span = BUCKETS - cutoff
        edges = cutoff + np.round(np.cumsum([v.share for v in variants]) / 100 * treated_span)
        index = np.searchsorted(edges, ranks, side="right").clip(0, len(variants) - 1)
        names = np.array([v.name for v in variants], dtype=object)[index]
        names[control] = None
    return Assignment(control=control, variant=names)
