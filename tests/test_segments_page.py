"""The Segments page, driven through AppTest: its live numbers are core's numbers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import models, segments
from core.db import bulk_insert, bump_data_version, session_scope
from core.tiers import categories_for
from core.timeutil import utcnow

ROOT = Path(__file__).resolve().parent.parent
LAPSED = segments.definition_of(
    {"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks"},
    {"type": "last_used", "op": "less_than", "value": 3, "unit": "weeks"},
)


def _minute():
    return utcnow().replace(second=0, microsecond=0)


def _open_page(query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    if query_params is not None:
        at.query_params.clear()  # what st.switch_page(query_params=...) from Predictions does
    for key, value in (query_params or {}).items():
        at.query_params[key] = value
    at.switch_page("pages/segments.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _audience(at: AppTest) -> str:
    return at.metric[0].value


def _add(at: AppTest, kind: str) -> None:
    at.selectbox(key="seg_new_type").set_value(kind)
    at.button(key="seg_add_filter").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_build_and_save_the_lapsed_users_segment_in_one_pass(app_database):
    at = _open_page()
    assert _audience(at) == f"{segments.total_users(app_database):,} users"

    _add(at, "last_used")  # defaults to "more than 2 weeks ago"
    _add(at, "last_used")  # joins group 1
    at.selectbox(key="f2_op").set_value("less_than")
    at.number_input(key="f2_value").set_value(3)
    before = segments.count(LAPSED, app_database, _minute())
    at.run()
    after = segments.count(LAPSED, app_database, _minute())
    assert _audience(at) in {f"{before:,} users", f"{after:,} users"}
    assert "Last used the app between 2 and 3 weeks ago" in [m.value.lstrip("- ") for m in at.markdown]

    at.text_input(key="seg_name").set_value("Lapsed users - 2 weeks")
    at.button(key="seg_save").click()
    at.run()
    assert [s.value for s in at.success][0].startswith("Saved “Lapsed users - 2 weeks”")
    saved = segments.get_segment(app_database, "Lapsed users - 2 weeks")
    assert saved.definition == LAPSED
    assert _saving_state(at) == EDITING


NEW = {"name field": True, "Save segment": True, "Save changes": False, "Save as new…": False, "New segment": True}
EDITING = {"name field": False, "Save segment": False, "Save changes": True, "Save as new…": True, "New segment": True}


def _saving_state(at: AppTest) -> dict[str, bool]:
    """Which of the saving controls the page shows (a state is one of NEW and EDITING)."""
    keys = {widget.key for widget in [*at.button, *at.text_input]}
    return {
        "name field": "seg_name" in keys,
        "Save segment": "seg_save" in keys,
        "Save changes": "seg_save_changes" in keys,
        "Save as new…": "seg_save_new" in keys,
        "New segment": "seg_new" in keys,
    }


def test_a_new_segment_offers_only_save_segment(app_database):
    at = _open_page()
    assert _saving_state(at) == NEW
    assert not [m.value for m in at.markdown if m.value.startswith("Editing saved segment")]


def test_after_a_save_the_page_edits_that_segment_and_never_offers_a_second_save(app_database):
    at = _open_page()
    _add(at, "platform")
    at.text_input(key="seg_name").set_value("iOS users")
    at.button(key="seg_save").click()
    at.run()

    assert _saving_state(at) == EDITING
    assert "Editing saved segment **iOS users**" in [m.value for m in at.markdown]
    at.multiselect(key="f1_values").set_value(["iOS", "Android"])
    at.button(key="seg_save_changes").click()
    at.run()
    assert not at.error
    assert list(segments.get_segment(app_database, "iOS users").definition.groups[0].filters[0].values) == [
        "iOS",
        "Android",
    ]
    assert [s.name for s in segments.list_segments(app_database)] == ["iOS users"]


def test_save_as_new_keeps_the_original_and_edits_the_copy(app_database):
    original = segments.save_segment(
        app_database, "iOS users", segments.definition_of({"type": "platform", "values": ["iOS"]})
    )
    at = _open_page()
    at.button(key="seg_open").click()
    at.run()
    at.multiselect(key="f1_values").set_value(["Web"])
    at.run()

    at.text_input(key="seg_save_as_name").set_value("iOS users")  # taken
    at.button(key="seg_save_new").click()
    at.run()
    assert "a segment named “iOS users” already exists; choose another name" in [e.value for e in at.error]

    at.text_input(key="seg_save_as_name").set_value("Web users")
    at.button(key="seg_save_new").click()
    at.run()
    assert [s.value for s in at.success][0].startswith("Saved “Web users”")
    assert "Editing saved segment **Web users**" in [m.value for m in at.markdown]
    assert at.text_input(key="seg_save_as_name").value == ""
    assert segments.get_segment(app_database, original.id).definition == original.definition
    assert segments.get_segment(app_database, "Web users").definition.groups[0].filters[0].values == ("Web",)


def test_new_segment_starts_an_empty_unsaved_segment(app_database):
    segments.save_segment(app_database, "iOS users", segments.definition_of({"type": "platform", "values": ["iOS"]}))
    at = _open_page()
    at.button(key="seg_open").click()
    at.run()
    assert _saving_state(at) == EDITING

    at.button(key="seg_new").click()
    at.run()
    assert _saving_state(at) == NEW
    assert at.text_input(key="seg_name").value == ""
    assert _audience(at) == f"{segments.total_users(app_database):,} users"
    assert len(segments.list_segments(app_database)) == 1


def test_removing_a_filter_updates_the_count(app_database):
    at = _open_page()
    _add(at, "platform")  # iOS
    ios = segments.count(segments.definition_of({"type": "platform", "values": ["iOS"]}), app_database)
    assert _audience(at) == f"{ios:,} users"
    at.button(key="f1_remove").click()
    at.run()
    assert _audience(at) == f"{segments.total_users(app_database):,} users"


def test_an_exclusion_group_and_a_bad_value(app_database):
    at = _open_page()
    _add(at, "platform")
    at.selectbox(key="seg_new_target").set_value("new exclusion group")
    _add(at, "push_enabled")
    definition = segments.parse_definition(
        {
            "groups": [{"filters": [{"type": "platform", "values": ["iOS"]}]}],
            "exclude": [{"filters": [{"type": "push_enabled", "value": True}]}],
        }
    )
    assert _audience(at) == f"{segments.count(definition, app_database):,} users"
    at.multiselect(key="f1_values").set_value([])
    at.run()
    assert [e.value for e in at.error] == ["group 1, filter 1 (Platform): 'values' must be a non-empty list"]


@pytest.fixture
def scored(app_database):
    """A full prediction with a score for every demo user."""
    with session_scope(app_database) as session:
        prediction = models.Prediction(
            name="Purchase in next 30 days", event="purchase", window_days=30, as_of=utcnow()
        )
        session.add(prediction)
        session.flush()
        ids = np.array(session.scalars(models.User.__table__.select().with_only_columns(models.User.id)).all())
        scores = np.round(np.random.default_rng(5).random(len(ids)) * 100, 2)
        rows = zip(
            [prediction.id] * len(ids), ids.tolist(), scores.tolist(), categories_for(scores).tolist(), strict=True
        )
        bulk_insert(session.connection(), "prediction_scores", ("prediction_id", "user_id", "score", "category"), rows)
        bump_data_version(session)
        return prediction.id


def test_a_predictions_page_selection_arrives_as_a_likelihood_filter(app_database, scored):
    at = _open_page({"prediction": str(scored), "min": "75", "max": "100"})
    definition = segments.definition_of({"type": "likelihood_score", "prediction": scored, "min": 75, "max": 100})
    assert _audience(at) == f"{segments.count(definition, app_database):,} users"
    assert at.session_state["f1_range"] == (75.0, 100.0)
    assert _score_sliders(at) == [{"min": 75, "max": 100, "categories": []}]
    breakdown = next(d.value for d in at.dataframe if "Tier" in d.value.columns)
    assert list(breakdown["Users"]) == [0, 0, segments.count(definition, app_database), 0]


def test_open_a_saved_segment_and_delete_is_refused_while_a_campaign_uses_it(app_database):
    saved = segments.save_segment(app_database, "Lapsed users - 2 weeks", LAPSED)
    with session_scope(app_database) as session:
        session.add(
            models.Campaign(
                name="Lapsed user message - 2 weeks", segment_id=saved.id, channel="push_ios", message={}, schedule={}
            )
        )
    at = _open_page()
    at.button(key="seg_open").click()
    before = segments.count(LAPSED, app_database, _minute())
    at.run()
    after = segments.count(LAPSED, app_database, _minute())
    assert at.number_input(key="f2_value").value == 3
    assert _audience(at) in {f"{before:,} users", f"{after:,} users"}
    at.button(key="seg_delete").click()
    at.run()
    assert [e.value for e in at.error] == [
        "“Lapsed users - 2 weeks” cannot be deleted: the campaign “Lapsed user message - 2 weeks” uses it"
    ]
    assert segments.get_segment(app_database, saved.id)


def test_user_lookup_says_which_filter_fails(app_database):
    at = _open_page()
    _add(at, "platform")
    at.multiselect(key="f1_values").set_value(["Web"])
    at.run()
    user = segments.sample(segments.definition_of({"type": "platform", "values": ["iOS"]}), 1, app_database)
    at.text_input(key="seg_lookup").set_value(user["external_id"][0])
    at.run()
    assert [w.value for w in at.warning] == [
        f"{user['external_id'][0]} does not match: fails group 1, filter 1 (Platform): Platform is Web"
    ]


def test_the_audience_says_the_minute_it_was_counted_at(app_database):
    """Relative dates move with the clock: the count names its minute, and is exact at that minute."""
    at = _open_page()
    _add(at, "last_used")
    [note] = [c.value for c in at.caption if "relative dates as of " in c.value]
    minute = datetime.strptime(note.split("relative dates as of ")[1][:16], "%Y-%m-%d %H:%M")
    lapsed = segments.definition_of({"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks"})
    assert _audience(at) == f"{segments.count(lapsed, app_database, minute):,} users"
    assert f"Counted exactly at {minute:%H:%M} UTC" in at.metric[0].help


# --- filter edits in any order (issue: a range slider came back as one float and raised) ---------


def _score_sliders(at: AppTest) -> list[dict]:
    """The selection each likelihood-score slider component was sent, in page order."""
    import json

    def walk(node):
        for child in getattr(node, "children", {}).values():
            yield child
            yield from walk(child)

    return [json.loads(e.proto.json)["selection"] for e in walk(at.main) if getattr(e, "type", "") == "bidi_component"]


@pytest.fixture
def two_scored(app_database, scored):
    """Two full predictions scoring every demo user."""
    with session_scope(app_database) as session:
        second = models.Prediction(name="Purchase in next 7 days", event="purchase", window_days=7, as_of=utcnow())
        session.add(second)
        session.flush()
        ids = np.array(session.scalars(models.User.__table__.select().with_only_columns(models.User.id)).all())
        scores = np.round(np.random.default_rng(9).random(len(ids)) * 100, 2)
        rows = zip([second.id] * len(ids), ids.tolist(), scores.tolist(), categories_for(scores).tolist(), strict=True)
        bulk_insert(session.connection(), "prediction_scores", ("prediction_id", "user_id", "score", "category"), rows)
        bump_data_version(session)
        return scored, second.id


def _step(at: AppTest, step: str, predictions: tuple[int, int], database) -> AppTest:
    first, second = predictions
    if step.startswith("add "):
        _add(at, step[4:])
    elif step == "remove":
        removable = [b for b in at.button if b.key and b.key.startswith("f") and b.key.endswith("_remove")]
        if removable:
            removable[0].click()
            at.run()
    elif step == "change prediction":
        boxes = [b for b in at.selectbox if b.key and b.key.endswith("_prediction")]
        if boxes:
            boxes[0].set_value(second if boxes[0].value == first else first)
            at.run()
    elif step == "commit range":  # what releasing the score slider does
        scored_keys = _score_range_keys(at)
        if scored_keys:
            at.session_state[scored_keys[0]] = (20.0, 60.0)
            at.run()
    elif step == "bucket range":
        sliders = [s for s in at.slider if s.key and s.key.endswith("_range")]
        if sliders:
            sliders[0].set_value((100, 5000))
            at.run()
    elif step == "away and back":  # Predictions runs, then Segments again: widget state was dropped
        at.switch_page("pages/predictions.py")
        at.run()
        at.switch_page("pages/segments.py")
        at.run()
    elif step == "from predictions":
        at.switch_page("pages/predictions.py")
        at.run()
        at.button(key="create_segment").click()
        at.run()
        at.switch_page("pages/segments.py")  # AppTest's next run would go back to the page it last switched to
        at.run()
    elif step == "save and open":
        at.text_input(key="seg_name").set_value(f"segment {len(segments.list_segments(database))}")
        at.button(key="seg_save").click()
        at.run()
        at.button(key="seg_open").click()
        at.run()
    elif step == "new segment":
        if _has_button(at, "seg_new"):
            at.button(key="seg_new").click()
            at.run()
    else:
        raise AssertionError(step)
    return at


def _score_range_keys(at: AppTest) -> list[str]:
    state = at.session_state["seg_state"]
    items = [f for section in ("groups", "exclude") for g in state[section] for f in g["filters"]]
    return [f"f{f['uid']}_range" for f in items if f["type"] == "likelihood_score"]


def _has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def _check(at: AppTest, database, step: str) -> None:
    assert not at.exception, (step, [e.value for e in at.exception])
    if "seg_definition" in at.session_state and not at.error:
        definition = at.session_state["seg_definition"]
        assert _audience(at) == f"{segments.count(definition, database):,} users", step
    ranges = [at.session_state[k] for k in _score_range_keys(at)]
    for selection in _score_sliders(at):
        assert (selection["min"], selection["max"]) in {(round(lo), round(hi)) for lo, hi in ranges}, step


ORDERS = [
    ("add likelihood_score", "add random_bucket", "away and back", "remove", "away and back"),
    ("add random_bucket", "bucket range", "away and back", "add likelihood_score", "commit range", "away and back"),
    ("from predictions", "add random_bucket", "from predictions", "away and back", "change prediction"),
    ("add likelihood_score", "change prediction", "commit range", "save and open", "away and back", "remove"),
    ("from predictions", "commit range", "add platform", "save and open", "new segment", "from predictions"),
    ("add likelihood_category", "add likelihood_score", "remove", "change prediction", "away and back"),
    ("add random_bucket", "save and open", "away and back", "from predictions", "away and back", "remove"),
]


@pytest.mark.parametrize("order", ORDERS, ids=[" > ".join(o) for o in ORDERS])
def test_filters_edited_in_any_order_never_raise_and_keep_their_values(app_database, two_scored, order):
    at = _open_page()
    for step in order:
        _step(at, step, two_scored, app_database)
        _check(at, app_database, step)
