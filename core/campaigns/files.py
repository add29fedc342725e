"""Campaigns as files: the JSON document `campaign create` reads and `campaign show` prints.

The document names things the way a person does (the segment and the prediction by name) and
becomes the same CampaignSpec the composer builds; launching it goes through the composer's
own check and launch (core.campaigns.store), so a file and the UI give the same campaign.
The format is documented in docs/campaigns.md.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from core import safejson, segments
from core.campaigns.spec import CampaignSpec, parse_campaign_spec
from core.db import session_scope
from core.errors import UserError
from core.models import Campaign, Prediction

# The file names the segment and the prediction as a person does; everything else is the spec's own.
FIELDS = {"name", "segment", "audience", "channel", "platforms", "message", "schedule", "settings"}


def read_document(path: str) -> dict:
    try:
        document = safejson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a campaign file") from None
    except safejson.JSONLimitError as error:
        raise UserError(f"{path}: {error}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: a campaign file is a JSON object (see docs/campaigns.md)")
    return document


def spec_from_document(engine: Engine, document: dict) -> CampaignSpec:
    """The composer's spec for a campaign file; a one-line UserError naming the field when wrong."""
    extra = sorted(set(document) - FIELDS)
    if extra:
        raise UserError(
            f"the campaign: unknown field(s) {', '.join(map(repr, extra))}; allowed: {', '.join(sorted(FIELDS))}"
        )
    if ("segment" in document) == ("audience" in document):
        raise UserError(
            "give the audience as 'segment' (a saved segment's name) or 'audience' (a definition), one of them"
        )
    raw = {key: value for key, value in document.items() if key != "segment"}
    if "segment" in document:
        name = document["segment"]
        if not isinstance(name, str):
            raise UserError("'segment' must be a segment's name")
        raw["segment_id"] = segments.get_segment(engine, name).id
    message = document.get("message", {})
    if isinstance(message, dict) and "prediction" in message:
        message = {key: value for key, value in message.items() if key != "prediction"}
        message["prediction_id"] = _prediction_id(engine, document["message"]["prediction"])
        raw["message"] = message
    elif isinstance(message, dict) and "prediction_id" in message:
        raise UserError("'message': name the prediction as 'prediction' (its name), not 'prediction_id'")
    return parse_campaign_spec(raw, what="the campaign")


def _prediction_id(engine: Engine, name) -> int:
    if not isinstance(name, str):
        raise UserError("'message.prediction' must be a prediction's name")
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
    stored = spec.to_json()
    document: dict = {"name": spec.name}
    if spec.segment_id is not None:
        document["segment"] = segments.get_segment(engine, spec.segment_id).name
    else:
        document["audience"] = stored["audience"]
    message = {key: value for key, value in stored["message"].items() if key != "prediction_id"}
    if spec.message.prediction_id is not None:
        with session_scope(engine) as session:
            message["prediction"] = session.scalar(
                select(Prediction.name).where(Prediction.id == spec.message.prediction_id)
            )
    settings = {key: value for key, value in stored["settings"].items() if key != "active_from"}
    document.update(
        channel=spec.channel,
        platforms=list(spec.platforms),
        message=message,
        schedule=stored["schedule"],
        settings=settings,
    )
    return document
