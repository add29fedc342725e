"""How a campaign is measured: its conversion event and window, its control group, its A/B/n variants.

The settings live on the spec's models (core/campaigns/spec.py): DeliverySettings.conversion_event
(None: the prediction's event, else "session"), .conversion_window_days (1-30, default 3: a
conversion counts within N days of a send) and .control_percent (0-50: the share of the audience
never messaged; None until launch, which writes the default 10); Message.ab_variants (none, or 2-5
ABVariant with shares summing to 100). This module holds their limits, the checks across variants,
and who is held out and who gets which variant.

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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # spec.py reads this module's limits: only types come back the other way
    from core.campaigns.spec import DeliverySettings

BUCKETS = 10_000
DEFAULT_WINDOW_DAYS = 3
MAX_WINDOW_DAYS = 30
DEFAULT_CONTROL_PERCENT = 10.0
MAX_CONTROL_PERCENT = 50.0
MAX_EVENT_NAME = 100
DEFAULT_CONVERSION_EVENT = "session"  # when the campaign targets no prediction
MAX_VARIANTS = 5
MAX_DELAY_MINUTES = 24 * 60
VARIANT_NAME_LENGTH = 16  # outbox.variant is String(16)
CONTROL_STATUS = "control"  # an outbox row for a held-out user: recorded, never delivered


@dataclass(frozen=True)
class Measurement:
    """What counts as a conversion for a campaign, for how long after a send, and who is held out."""

    conversion_event: str
    window_days: int = DEFAULT_WINDOW_DAYS
    control_percent: float = DEFAULT_CONTROL_PERCENT


class Shared(Protocol):
    """What the split needs of a variant (spec.ABVariant)."""

    name: str
    share: float


def default_conversion_event(prediction_event: str | None) -> str:
    """The prediction's event when the campaign targets one, else a session."""
    return prediction_event or DEFAULT_CONVERSION_EVENT


def variant_set_problems(variants: Sequence[tuple[str, float]]) -> list[str]:
    """What is wrong with a set of (name, share) variants taken together, as one line each."""
    if not variants:
        return []
    found = []
    if not 2 <= len(variants) <= MAX_VARIANTS:
        found.append(f"a campaign has either no variants or 2 to {MAX_VARIANTS}, not {len(variants)}")
    for position, (name, share) in enumerate(variants, start=1):
        where = f"variant {position}" + (f" ({name.strip()})" if name.strip() else "")
        if not 1 <= len(name.strip()) <= VARIANT_NAME_LENGTH:
            found.append(f"{where}: a name of 1 to {VARIANT_NAME_LENGTH} characters is required")
        if not 0 < share <= 100:
            found.append(f"{where}: the share must be above 0% and at most 100%, not {share:g}%")
    names = [name.strip() for name, _ in variants]
    if len(set(names)) != len(names):
        found.append(f"variant names must differ: {', '.join(names)}")
    total = sum(share for _, share in variants)
    if abs(total - 100) > 1e-6:
        found.append(f"variant shares must add up to 100%, not {total:g}%")
    return found


def measurement(settings: DeliverySettings, prediction_event: str | None, control_percent: float) -> Measurement:
    """The settings' measurement with the defaults filled in (`control_percent` when none is set)."""
    return Measurement(
        conversion_event=settings.conversion_event or default_conversion_event(prediction_event),
        window_days=settings.conversion_window_days,
        control_percent=control_percent if settings.control_percent is None else settings.control_percent,
    )


def frozen_at_launch(settings: DeliverySettings, prediction_event: str | None) -> DeliverySettings:
    """Settings with the measurement written out in full, so later changes of defaults or of the
    prediction never change what a running campaign measures."""
    found = measurement(settings, prediction_event, DEFAULT_CONTROL_PERCENT)
    return settings.model_copy(
        update={
            "conversion_event": found.conversion_event,
            "conversion_window_days": found.window_days,
            "control_percent": found.control_percent,
        }
    )


def measurement_of(settings: DeliverySettings, prediction_event: str | None = None) -> Measurement:
    """What a stored campaign measures. A campaign launched before control groups existed holds
    nobody out: starting one mid-way would hold out users who already had its messages."""
    return measurement(settings, prediction_event, 0.0)


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
    campaign_id: int, buckets: np.ndarray, control_percent: float, variants: Sequence[Shared] = ()
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
