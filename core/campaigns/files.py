"""Campaigns as files: the JSON document `campaign create` reads and `campaign show` prints.

The document names things the way a person does (the segment and the prediction by name) and
becomes the same CampaignSpec the composer builds; launching it goes through the composer's
own check and launch (core.campaigns.store), so a file and the UI give the same campaign.
The format is documented in docs/campaigns.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, select

from core import segments
from core.campaigns.store import CampaignSpec, default_settings
from core.db import session_scope
from core.errors import UserError
from core.models import Campaign, Prediction

FIELDS = {"name", "segment", "audience", "channel", "platforms", "message", "schedule", "settings"}
MESSAGE_FIELDS = {"title", "body", "use_variants", "variants", "offers", "prediction"}
SETTINGS_FIELDS = set(default_settings())


def read_document(path: str) -> dict:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: a campaign file is a JSON object (see docs/campaigns.md)")
    return document


def _unknown(where: str, given: dict, allowed: set[str]) -> None:
    extra = sorted(set(given) - allowed)
    if extra:
        raise UserError(
            f"{where}: unknown field(s) {', '.join(map(repr, extra))}; allowed: {', '.join(sorted(allowed))}"
        )


def _typed(where: str, value, kind, what: str):
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UserError(f"{where} must be {what}")
    return value


def spec_from_document(engine: Engine, document: dict) -> CampaignSpec:
    """The composer's spec for a campaign file; a one-line UserError naming the field when wrong."""
    _unknown("the campaign", document, FIELDS)
    name = _typed("'name'", document.get("name", ""), str, "text")
    if ("segment" in document) == ("audience" in document):
        raise UserError(
            "give the audience as 'segment' (a saved segment's name) or 'audience' (a definition), one of them"
        )
    segment_id = None
    audience = None
    if "segment" in document:
        segment_id = segments.get_segment(engine, _typed("'segment'", document["segment"], str, "a segment's name")).id
    else:
        audience = segments.validate(_typed("'audience'", document["audience"], dict, "a segment definition"))
    platforms = _typed("'platforms'", document.get("platforms", []), list, 'a list such as ["iOS"]')
    message = dict(_typed("'message'", document.get("message", {}), dict, "an object"))
    _unknown("'message'", message, MESSAGE_FIELDS)
    prediction = message.pop("prediction", None)
    message["prediction_id"] = None if prediction is None else _prediction_id(engine, prediction)
    message.setdefault("offers", {})
    settings = _typed("'settings'", document.get("settings", {}), dict, "an object")
    _unknown("'settings'", settings, SETTINGS_FIELDS)
    return CampaignSpec(
        name=name,
        segment_id=segment_id,
        audience=audience,
        channel=_typed("'channel'", document.get("channel", "push"), str, "push, email or in_app"),
        platforms=list(platforms),
        message=message,
        schedule=_typed("'schedule'", document.get("schedule", {"kind": "now"}), dict, "an object"),
        settings={**default_settings(), **settings},
    )


def _prediction_id(engine: Engine, name) -> int:
    _typed("'message.prediction'", name, str, "a prediction's name")
    with session_scope(engine) as session:
        found = session.scalar(select(Prediction.id).where(Prediction.name == name))
    if found is None:
        raise UserError(f"'message.prediction': no prediction named {name!r} (python -m core predictions lists them)")
    return found


def find_campaign(engine: Engine, name_or_id: str) -> int:
    """A campaign's id from its exact name (or its id)."""
    with session_scope(engine) as session:
        found = session.scalar(select(Campaign.id).where(Campaign.name == name_or_id))
        if found is None and name_or_id.isdigit():
            found = session.scalar(select(Campaign.id).where(Campaign.id == int(name_or_id)))
    if found is None:
        raise UserError(f"no campaign named {name_or_id!r} (python -m core campaign list shows them)")
    return found


def document_from_spec(engine: Engine, spec: CampaignSpec) -> dict:
    """The file form of a stored campaign: what `campaign create` would read back."""
    document: dict = {"name": spec.name}
    if spec.segment_id is not None:
        document["segment"] = segments.get_segment(engine, spec.segment_id).name
    else:
        document["audience"] = spec.audience
    message = {k: v for k, v in (spec.message or {}).items() if k != "prediction_id"}
    prediction_id = (spec.message or {}).get("prediction_id")
    if prediction_id is not None:
        with session_scope(engine) as session:
            message["prediction"] = session.scalar(select(Prediction.name).where(Prediction.id == prediction_id))
    settings = {k: v for k, v in (spec.settings or {}).items() if k in SETTINGS_FIELDS}
    document.update(
        channel=spec.channel, platforms=spec.platforms, message=message, schedule=spec.schedule, settings=settings
    )
    return document
