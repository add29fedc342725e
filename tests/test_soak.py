"""Soak: 10,000 mixed operations through core on one database, then every saved object is checked.

A bounded, seeded loop (counts, segment saves/edits/renames/duplicates/deletes, exports,
campaign drafts/launches/pauses, dispatch) that keeps its own record of what should be stored,
and stops by itself. At the end, what the database holds must equal that record exactly.
"""

from __future__ import annotations

import io
import random
from datetime import timedelta

from sqlalchemy import func, select

from core import models, segments
from core.campaigns import CampaignSpec, dispatch, get_campaign, launch, save_draft, transition
from core.db import session_scope
from core.errors import UserError
from core.segments.export import export_csv
from core.timeutil import utcnow

OPERATIONS = int(__import__("os").environ.get("SOAK_OPS", 10_000))
PLATFORMS = ["iOS", "Android", "Web"]


def _definition(rng: random.Random) -> segments.SegmentDefinition:
    filters = [
        {"type": "last_used", "op": "more_than", "value": rng.randint(0, 6), "unit": "weeks"},
        {"type": "platform", "values": rng.sample(PLATFORMS, rng.randint(1, 3))},
        {"type": "last_used", "op": "less_than", "value": rng.randint(1, 120), "unit": "days"},
    ]
    chosen = rng.sample(filters, rng.randint(1, 3))
    return segments.definition_of(*chosen, match=rng.choice(["all", "any"]))


def test_ten_thousand_mixed_operations_leave_every_saved_object_intact(demo_engine):
    rng = random.Random(2026)
    now = utcnow()
    saved: dict[int, dict] = {}  # segment id -> {"name", "definition"}
    campaigns: dict[int, dict] = {}  # campaign id -> {"name", "status", "title"}
    tally: dict[str, int] = {}
    refused = 0
    for step in range(OPERATIONS):
        roll = rng.random()
        try:
            if roll < 0.60:
                op = "count"
                definition = (
                    saved[rng.choice(list(saved))]["definition"] if saved and rng.random() < 0.5 else _definition(rng)
                )
                assert 0 <= segments.count(definition, demo_engine, now) <= 3_000
            elif roll < 0.70:
                op = "save segment"
                name = f"Segment {step}"
                definition = _definition(rng)
                row = segments.save_segment(demo_engine, name, definition)
                saved[row.id] = {"name": name, "definition": row.definition}
            elif roll < 0.75 and saved:
                op = "edit segment"
                segment_id = rng.choice(list(saved))
                row = segments.update_segment(demo_engine, segment_id, _definition(rng))
                saved[segment_id]["definition"] = row.definition
            elif roll < 0.78 and saved:
                op = "rename segment"
                segment_id = rng.choice(list(saved))
                target = rng.choice([saved[i]["name"] for i in saved])  # sometimes a taken name: refused
                new_name = target if rng.random() < 0.3 else f"Renamed {step}"
                segments.rename_segment(demo_engine, segment_id, new_name)
                saved[segment_id]["name"] = new_name
            elif roll < 0.80 and saved:
                op = "duplicate segment"
                source = rng.choice(list(saved))
                row = segments.duplicate_segment(demo_engine, source, f"Copy {step}")
                saved[row.id] = {"name": row.name, "definition": saved[source]["definition"]}
            elif roll < 0.82 and saved:
                op = "delete segment"
                segment_id = rng.choice(list(saved))
                segments.delete_segment(demo_engine, segment_id)  # refused while a campaign uses it
                del saved[segment_id]
            elif roll < 0.84 and saved:
                op = "export"
                out = io.StringIO()
                definition = saved[rng.choice(list(saved))]["definition"]
                export_csv(definition, out, demo_engine, now)
                assert out.getvalue().count("\n") == segments.count(definition, demo_engine, now) + 1
            elif roll < 0.87 and saved:
                op = "save campaign"
                name = f"Campaign {step}"
                spec = CampaignSpec(
                    name=name,
                    segment_id=rng.choice(list(saved)),
                    platforms=["iOS"],
                    message={"title": f"Hello {step}", "body": "Hi {{ first_name | default: 'there' }}"},
                    schedule={
                        "kind": "recurring",
                        "frequency": "weekly",
                        "interval": 1,
                        "weekdays": ["TH"],
                        "time": "17:45",
                        "start": (now - timedelta(days=8)).date().isoformat(),
                        "end": {"kind": "never"},
                        "local_time": True,
                    },
                )
                if rng.random() < 0.5:
                    campaign_id = save_draft(spec, demo_engine)
                    campaigns[campaign_id] = {"name": name, "status": "draft", "title": f"Hello {step}"}
                else:
                    campaign_id = launch(spec, demo_engine, now=now - timedelta(days=8))
                    campaigns[campaign_id] = {"name": name, "status": "scheduled", "title": f"Hello {step}"}
            elif roll < 0.895 and campaigns:
                op = "pause/resume/stop"
                campaign_id = rng.choice(list(campaigns))
                action = rng.choice(["pause", "resume", "stop"])
                campaigns[campaign_id]["status"] = transition(campaign_id, action, demo_engine)
            elif roll < 0.90 and campaigns:
                op = "dispatch"
                dispatch(demo_engine, until=now)
            else:
                op = "count"
                segments.count(_definition(rng), demo_engine, now)
        except UserError:
            refused += 1  # a refused operation must change nothing: checked below
        tally[op] = tally.get(op, 0) + 1

    assert sum(tally.values()) == OPERATIONS
    assert (
        tally["count"] > 0.4 * OPERATIONS and tally["save segment"] > 0.05 * OPERATIONS and tally.get("dispatch", 0) > 0
    )
    assert 0 < refused < OPERATIONS // 10

    stored = {s.id: {"name": s.name, "definition": s.definition} for s in segments.list_segments(demo_engine)}
    assert stored == saved
    for campaign_id, expected in campaigns.items():
        spec, record = get_campaign(campaign_id, demo_engine)
        assert (spec.name, record["status"], spec.message.title) == (
            expected["name"],
            expected["status"],
            expected["title"],
        )
    with session_scope(demo_engine) as session:
        assert session.scalar(select(func.count()).select_from(models.Campaign)) == len(campaigns)
        outbox = session.scalar(select(func.count()).select_from(models.OutboxMessage))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(models.OutboxMessage.campaign_id, models.OutboxMessage.occurrence, models.OutboxMessage.user_id)
                .distinct()
                .subquery()
            )
        )
    assert outbox == distinct > 0
