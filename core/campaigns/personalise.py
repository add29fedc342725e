"""A campaign's message for one user: the tier's variant and offer, rendered with their data.

A message is a JSON dict:
    {"title": str, "body": str,               # push title / email subject, and body
     "use_variants": bool,
     "variants": {"High": {"title", "body"}, "Medium": {...}, "Low": {...}},  # blanks fall back
     "offers": {"High": "5% off", "Medium": "10% off", "Low": "20% off"},
     "prediction_id": int | None}             # whose likelihood score and tier the copy sees
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from core.campaigns import templating
from core.tiers import TIER_NAMES, TIERS

if TYPE_CHECKING:  # spec imports this module (for DEFAULT_OFFERS)
    from core.campaigns.spec import Message

FIELDS = ("title", "body")
# A sliding scale: the likelier to buy, the smaller the discount needed (the playbook).
DEFAULT_OFFERS: dict[str, str] = {"High": "free delivery", "Medium": "10% off", "Low": "25% off"}


def field_label(channel: str, field: str) -> str:
    if field == "title":
        return "Subject" if channel == "email" else "Title"
    return "Body"


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    tier: str | None


def copy_for_tier(message: dict, tier: str | None) -> dict[str, str]:
    """The title and body a user of `tier` gets (their variant where written, else the main copy)."""
    copy = {f: message.get(f) or "" for f in FIELDS}
    if message.get("use_variants") and tier:
        variant = (message.get("variants") or {}).get(tier) or {}
        for f in FIELDS:
            if (variant.get(f) or "").strip():
                copy[f] = variant[f]
    return copy


def scores_for(engine: Engine, prediction_id: int | None, user_ids) -> pd.DataFrame:
    """score and category of each user (NaN / None when unscored), indexed by user id."""
    index = pd.Index(np.asarray(user_ids, dtype=np.int64), name="user_id")
    if prediction_id is None or len(index) == 0:
        return pd.DataFrame({"score": np.nan, "category": None}, index=index)
    with engine.connect() as connection:
        scores = pd.read_sql_query(
            text("SELECT user_id, score, category FROM prediction_scores WHERE prediction_id = :p"),
            connection,
            params={"p": int(prediction_id)},
        ).set_index("user_id")
    return scores.reindex(index)


def variables_for(user: pd.Series | dict, score: float | None, tier: str | None, message: dict) -> dict:
    """The Liquid variables of one user (see templating.VARIABLES)."""
    get = user.get

    def clean(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        return value.item() if isinstance(value, np.generic) else value

    has_score = score is not None and not (isinstance(score, float) and np.isnan(score))
    offers = message.get("offers") or {}
    return {
        "first_name": clean(get("first_name")),
        "email": clean(get("email")),
        "country": clean(get("country")),
        "language": clean(get("language")),
        "platform": clean(get("platform")),
        "timezone": clean(get("timezone")),
        "external_id": clean(get("external_id")),
        "user_id": clean(get("id")),
        "session_count": clean(get("session_count")),
        "purchase_count": clean(get("purchase_count")),
        "total_spent": round(float(get("total_spent") or 0), 2),
        "likelihood_score": round(float(score)) if has_score else None,
        "likelihood_tier": tier if has_score else None,
        "offer": offers.get(tier, "") if tier else "",
    }


class CompiledMessage:
    """A message parsed once (every tier's variant), rendered for many users."""

    def __init__(self, message: dict, channel: str):
        self.message = message
        self.channel = channel
        self._templates: dict[tuple[str | None, str], object] = {}
        for tier in (None, *TIER_NAMES):
            copy = copy_for_tier(message, tier)
            for f in FIELDS:
                self._templates[(tier, f)] = templating.compile_template(copy[f], self._label(tier, f))

    def _label(self, tier: str | None, field: str) -> str:
        label = field_label(self.channel, field)
        return f"{label} ({tier} variant)" if tier and self.message.get("use_variants") else label

    def render(self, user, score: float | None, tier: str | None) -> Rendered:
        tier = tier if tier in TIER_NAMES else None
        variables = variables_for(user, score, tier, self.message)
        title, body = (
            templating.render_compiled(self._templates[(tier, f)], variables, self._label(tier, f)).strip()
            for f in FIELDS
        )
        return Rendered(title=title, body=body, tier=tier)


def template_problems(message: dict, channel: str) -> dict[str, templating.TemplateProblem]:
    """Problems per field key ('title', 'body', 'High.title', ...): where the marketer typed them."""
    problems: dict[str, templating.TemplateProblem] = {}
    fields = [(f, message.get(f) or "") for f in FIELDS]
    if message.get("use_variants"):
        for tier in TIER_NAMES:
            variant = (message.get("variants") or {}).get(tier) or {}
            fields += [(f"{tier}.{f}", variant.get(f) or "") for f in FIELDS]
    for key, source in fields:
        problem = templating.check(source, key)
        if problem is not None:
            problems[key] = problem
    return problems


LIKELIHOOD_VARIABLES = ("offer", "likelihood_score", "likelihood_tier")


def likelihood_fields(message: Message) -> dict[str, list[str]]:
    """Field key ('title', 'High.body', ...) -> the likelihood variables its template uses.

    Asked of the template engine (the variables the parsed copy reads), never guessed from the
    text; a field that does not parse is left to `template_problems`.
    """
    fields = [(f, getattr(message, f)) for f in FIELDS]
    if message.use_variants:
        for tier, variant in message.variants.items():
            fields += [(f"{tier}.{f}", getattr(variant, f)) for f in FIELDS]
    used: dict[str, list[str]] = {}
    for key, source in fields:
        try:
            names = templating.compile_template(source, key).global_variables()
        except templating.TemplateError:
            continue
        wanted = [v for v in LIKELIHOOD_VARIABLES if v in names]
        if wanted:
            used[key] = wanted
    return used


def likelihood_without_prediction(message: Message) -> str | None:
    """The error when the copy uses the likelihood or the offer but no prediction gives them."""
    if message.prediction_id is not None:
        return None
    used = likelihood_fields(message)
    if not used:
        return None
    names = sorted({v for variables in used.values() for v in variables}, key=LIKELIHOOD_VARIABLES.index)
    listed = " and ".join(f"{{{{ {n} }}}}" for n in names)
    verb = "comes" if len(names) == 1 else "come"
    return f"The copy uses {listed}, which {verb} from a prediction: choose one under “Likelihood from prediction”."


def sample_tier_users(users: pd.DataFrame, scores: pd.DataFrame, seed: int = 0) -> dict[str, int]:
    """One user id per tier present in the audience (for the per-tier preview)."""
    out: dict[str, int] = {}
    rng = np.random.default_rng(seed)
    for tier in reversed(TIERS):
        ids = scores.index[scores["category"] == tier.name].intersection(users.index)
        if len(ids):
            out[tier.name] = int(ids[rng.integers(len(ids))])
    return out


def render_for_users(engine: Engine, message: dict, channel: str, user_ids) -> dict[int, Rendered]:
    """Each user's rendered message (raises TemplateError on a broken template)."""
    from core.campaigns.audience import users_frame

    ids = [int(i) for i in user_ids]
    users = users_frame(engine)
    ids = [i for i in ids if i in users.index]
    compiled = CompiledMessage(message, channel)
    scores = scores_for(engine, message.get("prediction_id"), ids)
    records = users.loc[ids].to_dict("records")
    return {
        i: compiled.render(user, score, tier)
        for i, user, score, tier in zip(
            ids, records, scores["score"].to_numpy(), scores["category"].to_numpy(), strict=True
        )
    }


def longest_copy(renderings: list[Rendered]) -> tuple[str, str]:
    """The longest title and the longest body among renderings (what length warnings judge)."""
    if not renderings:
        return "", ""
    return max((r.title for r in renderings), key=len), max((r.body for r in renderings), key=len)


def targetable_predictions(engine: Engine) -> pd.DataFrame:
    """Predictions whose scores may drive targeting and copy (kind 'full'), newest first."""
    with engine.connect() as connection:
        return pd.read_sql_query(
            text("SELECT id, name, event, window_days FROM predictions WHERE kind = 'full' ORDER BY id DESC"),
            connection,
        )
