"""Saved segments, the CSV export and the `segment` CLI commands."""

from __future__ import annotations

import csv
import io
import json

import pytest

from core import models, segments
from core.cli import main as cli_main
from core.db import session_scope
from core.errors import UserError
from core.segments.export import EXPORT_COLUMNS, export_csv, export_csv_stream, neutralise
from tests import segment_fixtures
from tests.segment_fixtures import NOW

world = segment_fixtures.world

LAPSED = segments.definition_of(
    {"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks"},
    {"type": "last_used", "op": "less_than", "value": 3, "unit": "weeks"},
)


def test_save_list_open_rename_duplicate(demo_engine):
    saved = segments.save_segment(demo_engine, "  Lapsed users -  2 weeks ", LAPSED, "the tutorial's segment")
    assert saved.name == "Lapsed users - 2 weeks"
    assert segments.get_segment(demo_engine, "lapsed users - 2 weeks").id == saved.id
    assert segments.get_segment(demo_engine, saved.id).definition == LAPSED
    renamed = segments.rename_segment(demo_engine, saved.id, "Lapsed 14-21 days")
    assert renamed.name == "Lapsed 14-21 days" and renamed.version == saved.version + 1
    first, second = (
        segments.duplicate_segment(demo_engine, renamed.id),
        segments.duplicate_segment(demo_engine, renamed.id),
    )
    assert (first.name, second.name) == ("Lapsed 14-21 days (copy)", "Lapsed 14-21 days (copy 2)")
    assert [s.name for s in segments.list_segments(demo_engine)] == [  # by name, ignoring case
        "Lapsed 14-21 days",
        "Lapsed 14-21 days (copy 2)",
        "Lapsed 14-21 days (copy)",
    ]


@pytest.mark.parametrize("name", ["Lapsed users - 2 weeks", "lapsed USERS - 2 weeks", " Lapsed users - 2 weeks "])
def test_a_duplicate_name_is_refused_and_changes_nothing(demo_engine, name):
    segments.save_segment(demo_engine, "Lapsed users - 2 weeks", LAPSED)
    with pytest.raises(UserError, match="a segment named “Lapsed users - 2 weeks” already exists"):
        segments.save_segment(demo_engine, name, segments.empty_definition())
    other = segments.save_segment(demo_engine, "Other", segments.empty_definition())
    with pytest.raises(UserError, match="already exists"):
        segments.rename_segment(demo_engine, other.id, name)
    assert [s.name for s in segments.list_segments(demo_engine)] == ["Lapsed users - 2 weeks", "Other"]


def test_bad_names_and_definitions_are_refused(demo_engine):
    with pytest.raises(UserError, match="give the segment a name"):
        segments.save_segment(demo_engine, "   ", LAPSED)
    with pytest.raises(UserError, match="at most 200 characters"):
        segments.save_segment(demo_engine, "x" * 201, LAPSED)
    with pytest.raises(UserError, match="group 1, filter 1"):
        segments.save_segment(demo_engine, "Bad", segments.definition_of({"type": "platform", "values": ["Amiga"]}))
    with pytest.raises(UserError, match="no saved segment named or numbered 'Nope'"):
        segments.get_segment(demo_engine, "Nope")
    assert segments.list_segments(demo_engine) == []


def test_delete_is_refused_while_campaigns_use_the_segment(demo_engine):
    saved = segments.save_segment(demo_engine, "Lapsed users - 2 weeks", LAPSED)
    with session_scope(demo_engine) as session:
        for name in ("Lapsed user message - 2 weeks", "Win-back email"):
            session.add(models.Campaign(name=name, segment_id=saved.id, channel="push_ios", message={}, schedule={}))
    with pytest.raises(UserError) as error:
        segments.delete_segment(demo_engine, saved.id)
    assert str(error.value) == (
        "“Lapsed users - 2 weeks” cannot be deleted: the campaigns “Lapsed user message - 2 weeks”, "
        "“Win-back email” use it"
    )
    assert segments.get_segment(demo_engine, saved.id).name == "Lapsed users - 2 weeks"
    with session_scope(demo_engine) as session:
        session.query(models.Campaign).delete()
    segments.delete_segment(demo_engine, saved.id)
    assert segments.list_segments(demo_engine) == []


def test_updates_refuse_a_stale_version(demo_engine):
    saved = segments.save_segment(demo_engine, "Lapsed", LAPSED)
    updated = segments.update_segment(
        demo_engine, saved.id, segments.empty_definition(), expected_version=saved.version
    )
    assert updated.version == saved.version + 1 and segments.is_empty(updated.definition)
    with pytest.raises(UserError, match="changed by someone else"):
        segments.update_segment(demo_engine, saved.id, LAPSED, expected_version=saved.version)


# --- export ----------------------------------------------------------------------------------


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("via_sql", [False, True])
def test_export_columns_rows_and_scores(world, via_sql):
    engine, predictions = world
    definition = segments.definition_of(
        {"type": "likelihood_score", "prediction": predictions["full"], "min": 0, "max": 100},
        {"type": "platform", "values": ["iOS", "Android"]},
    )
    buffer = io.StringIO()
    written = export_csv(definition, buffer, engine, NOW, via_sql=via_sql)
    rows = _rows(buffer.getvalue())
    assert written == len(rows) == segments.count(definition, engine, NOW) == 4
    assert list(rows[0]) == [name for name, _, _ in EXPORT_COLUMNS] + [
        "Purchase in 30 days score",
        "Purchase in 30 days category",
    ]
    by_id = {row["user_id"]: row for row in rows}
    assert set(by_id) == {"u1", "u2", "u5", "u6"}
    assert (by_id["u1"]["Purchase in 30 days score"], by_id["u1"]["Purchase in 30 days category"]) == ("75.0", "High")
    assert by_id["u2"]["Purchase in 30 days score"] == "74.99"
    assert by_id["u1"]["last_used_at"] == "2026-01-01 12:00:00"
    assert by_id["u1"]["session_count"] == "3"
    assert (by_id["u1"]["push_opt_in"], by_id["u2"]["email_opt_in"]) == ("true", "false")
    assert by_id["u2"]["email"] == ""


def test_export_neutralises_formulas_but_keeps_numbers(world):
    engine, predictions = world
    definition = segments.empty_definition()
    rows = {row["user_id"]: row for row in _rows(_export(engine, definition))}
    assert rows["u5"]["email"] == "'=HYPERLINK(1)"
    assert rows["u5"]["first_name"] == "'+Eve"
    assert rows["u3"]["first_name"] == "'@bob"
    assert rows["u2"]["first_name"] == "'-5"  # text that looks like a number is still text
    assert rows["u6"]["first_name"] == "Zoé"
    assert rows["u4"]["first_name"] == "" and rows["u4"]["session_count"] == "0"
    assert [neutralise(v) for v in ["\tx", "\rx", "a=b", "", None]] == ["'\tx", "'\rx", "a=b", "", None]
    assert b"".join(export_csv_stream(definition, engine, NOW)).decode("utf-8") == _export(engine, definition)


def _export(engine, definition) -> str:
    buffer = io.StringIO()
    export_csv(definition, buffer, engine, NOW)
    return buffer.getvalue()


def test_sparse_and_dense_segments_export_the_same_users_as_sql(demo_engine):
    for definition in (
        segments.definition_of({"type": "random_bucket", "min": 0, "max": 99}),  # sparse: id lists
        segments.definition_of({"type": "random_bucket", "min": 0, "max": 8999}),  # dense: id ranges
    ):
        by_memory, by_sql = io.StringIO(), io.StringIO()
        rows = export_csv(definition, by_memory, demo_engine)
        export_csv(definition, by_sql, demo_engine, via_sql=True)
        assert by_memory.getvalue() == by_sql.getvalue()
        assert rows == segments.count(definition, demo_engine) == by_memory.getvalue().count("\n") - 1


# --- the rest of the API -----------------------------------------------------------------------


def test_reach_breakdown_lookup_funnel_and_sample(world):
    engine, predictions = world
    everyone = segments.empty_definition()
    assert segments.reachable_counts(everyone, engine, NOW) == {
        "push_ios": 2,  # u1, u5: token and opt-in
        "push_android": 0,  # u2 has no token, u6 did not opt in
        "push_web": 0,  # u3 did not opt in
        "email": 2,  # u1, u3: an address and subscribed (u6 subscribed without an address)
        "in_app": 6,
    }
    breakdown = segments.likelihood_breakdown(everyone, predictions["preview"], engine, NOW)
    assert [(r["tier"], r["users"]) for r in breakdown] == [("Low", 1), ("Medium", 2), ("High", 2), ("Unscored", 1)]

    answer = segments.explain_user(LAPSED, "u1", engine, NOW)
    assert not answer.matches
    assert answer.reasons == ["fails group 1, filter 1 (Last used app): Last used the app more than 2 weeks ago"]
    assert segments.explain_user(LAPSED, "u2", engine, NOW).matches
    excluded = segments.parse_definition({"exclude": [{"filters": [{"type": "country", "values": ["FR"]}]}]})
    assert segments.explain_user(excluded, "u2", engine, NOW).reasons == ["removed by exclusion group 1"]
    assert segments.explain_user(LAPSED, "nobody", engine, NOW).reasons == ["no user has the id 'nobody'"]

    steps = segments.funnel(LAPSED, engine, NOW)
    assert [(s.alone, s.after) for s in steps] == [(3, 3), (4, 2)]
    assert list(segments.sample(LAPSED, 10, engine, NOW)["external_id"]) == ["u2", "u3"]
    assert len(segments.sample(segments.empty_definition(), 3, engine, NOW)) == 3


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_save_count_list_export(app_database, tmp_path, capsys):
    source = tmp_path / "lapsed.json"
    source.write_text(json.dumps({"name": "Lapsed users - 2 weeks", "definition": LAPSED.to_json()}))
    assert cli_main(["segment", "save", str(source)]) == 0
    assert "saved segment “Lapsed users - 2 weeks”" in capsys.readouterr().out
    # Relative dates are evaluated at the current minute: the CLI agrees with core at either minute.
    before = segments.count(LAPSED, app_database)

    assert cli_main(["segment", "count", "Lapsed users - 2 weeks"]) == 0
    counted = int(capsys.readouterr().out.strip())

    assert cli_main(["segment", "list"]) == 0
    assert "Lapsed users - 2 weeks" in capsys.readouterr().out

    out = tmp_path / "lapsed.csv"
    assert cli_main(["segment", "export", "Lapsed users - 2 weeks", "-o", str(out)]) == 0
    exported = len(_rows(out.read_text(encoding="utf-8")))
    assert f"exported {exported:,} users" in capsys.readouterr().out
    after = segments.count(LAPSED, app_database)
    assert before > 0 and {counted, exported} <= {before, after}

    assert cli_main(["segment", "save", str(source)]) == 2
    assert "already exists" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"groups": [{"filters": [{"type": "last_used", "op": "more_than", "value": -1}]}]}))
    assert cli_main(["segment", "save", str(bad)]) == 2
    assert "group 1, filter 1 (Last used app): 'value' cannot be negative" in capsys.readouterr().err
    assert cli_main(["segment", "count", "Nope"]) == 2
