"""The Predictions page (AppTest) and the prediction CLI commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main as cli_main
from core.predictions import find_prediction, score_distribution
from pages.components.score_slider import readable_scale
from tests import prediction_fixtures

ROOT = Path(__file__).resolve().parent.parent
# the shared fixtures: the demo database with its demo predictions trained once
trained_app = prediction_fixtures.trained_app
trained_db_template = prediction_fixtures.trained_db_template
trained_engine = prediction_fixtures.trained_engine
FULL = "Purchase in next 30 days"
PREVIEW = "Add to cart in next 14 days (preview)"
SLIDER = "score_slider"


def _open(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/predictions.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _slider_data(at: AppTest) -> dict:
    """What the page sent the score slider component (its figures are computed from this in the browser)."""

    def walk(node):
        for child in getattr(node, "children", {}).values():
            yield child
            yield from walk(child)

    [slider] = [e for e in walk(at.main) if getattr(e, "type", "") == "bidi_component"]
    return json.loads(slider.proto.json)


def _commit(at: AppTest, low: int, high: int, categories=()) -> None:
    """What the browser does on release: the component's committed selection, then its callback's rerun."""
    at.session_state["score_range"] = (low, high)
    at.session_state["tier_pick"] = list(categories)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_page_opens_on_the_full_prediction_with_the_high_tier(trained_app):
    at = _open()
    full = find_prediction(trained_app, FULL)
    distribution = score_distribution(trained_app, full.id)
    assert at.selectbox(key="prediction_pick").value == full.id
    data = _slider_data(at)
    assert data["selection"] == {"min": 75, "max": 100, "categories": ["High"]}
    assert data["steps"] == distribution.score_steps().to_payload()
    assert at.query_params["prediction"] == str(full.id)
    assert at.query_params["categories"] == "High"


def test_the_log_scale_is_chosen_automatically_until_the_reader_sets_it(trained_app):
    at = _open()
    full = find_prediction(trained_app, FULL)
    bars = score_distribution(trained_app, full.id).histogram(categories=("High",))
    automatic = readable_scale(bars)
    assert at.toggle(key="hist_log").value is automatic
    assert _slider_data(at)["log_scale"] is automatic
    at.toggle(key="hist_log").set_value(not automatic).run()
    assert _slider_data(at)["log_scale"] is (not automatic)
    _commit(at, 0, 100)  # a selection the automatic rule would read differently keeps the reader's choice
    assert at.toggle(key="hist_log").value is (not automatic)


@pytest.mark.parametrize(
    ("tallest", "selected_tallest", "log"),
    [(20_000, 732, False), (20_000, 399, True), (20_000, 400, False), (100, 0, False), (5, 5, False)],
)
def test_a_log_scale_is_automatic_when_the_tallest_bar_is_over_50_times_the_selections(tallest, selected_tallest, log):
    bars = [
        {"users": tallest, "counted": 0},
        {"users": selected_tallest, "counted": selected_tallest},
        {"users": 3, "counted": 0},
    ]
    assert readable_scale(bars) is log


@pytest.mark.parametrize(("low", "high"), [(40, 90), (0, 100), (75, 75)])
def test_a_committed_range_reaches_the_url_the_session_and_the_buttons(trained_app, low, high):
    at = _open()
    _commit(at, low, high)
    assert _slider_data(at)["selection"] == {"min": low, "max": high, "categories": []}
    assert at.query_params["min"] == str(low) and at.query_params["max"] == str(high)
    assert "categories" not in at.query_params
    assert at.session_state["predictions_selection"] == {
        "prediction": at.query_params["prediction"],
        "min": str(low),
        "max": str(high),
    }


@pytest.mark.parametrize("tiers", [["Medium"], ["Medium", "High"], ["Low"]])
def test_committed_tiers_set_the_range_and_the_url(trained_app, tiers):
    from core.tiers import score_range_of

    at = _open()
    low, high = (int(v) for v in score_range_of(tiers))
    _commit(at, low, high, tiers)
    assert _slider_data(at)["selection"] == {"min": low, "max": high, "categories": tiers}
    assert at.query_params["categories"] == ",".join(tiers)


def test_a_shared_link_restores_the_selection(trained_app):
    full = find_prediction(trained_app, FULL)
    at = _open({"prediction": str(full.id), "min": "30", "max": "60"})
    assert _slider_data(at)["selection"] == {"min": 30, "max": 60, "categories": []}


def test_the_slider_callback_takes_the_browsers_committed_selection(trained_app, monkeypatch):
    """on_slider_commit reads what the component committed; a malformed commit changes nothing."""
    from pages.components import score_slider

    state = {SLIDER: {"selection": {"min": 20, "max": 70, "categories": []}}}
    monkeypatch.setattr(score_slider.st, "session_state", state)
    assert score_slider.committed_selection(SLIDER) == {"min": 20, "max": 70, "categories": []}
    for broken in ({"min": 70, "max": 20}, {"min": "x", "max": 3}, {"max": 3}, None, {"min": -1, "max": 3}):
        state[SLIDER] = {"selection": broken}
        assert score_slider.committed_selection(SLIDER) is None


@pytest.mark.parametrize(("name", "disabled"), [(FULL, False), (PREVIEW, True)])
def test_create_buttons_are_disabled_for_preview_predictions(trained_app, name, disabled):
    prediction = find_prediction(trained_app, name)
    at = _open({"prediction": str(prediction.id), "categories": "Low"})
    assert at.button(key="create_segment").disabled is disabled
    assert at.button(key="create_campaign").disabled is disabled
    reason_shown = any("preview prediction" in c.value for c in at.caption)
    assert reason_shown is disabled


def test_create_buttons_are_disabled_for_demo_predictions(trained_app):
    from core.predictions import get_prediction, train_prediction

    demo = get_prediction(trained_app, train_prediction(trained_app, "purchase", 7, kind="demo"))
    at = _open({"prediction": str(demo.id)})
    assert at.button(key="create_segment").disabled
    assert at.button(key="create_campaign").disabled
    assert any("demo prediction" in c.value for c in at.caption)


def test_the_playbook_shows_each_tier_with_editable_discounts(trained_app):
    at = _open()
    assert [at.number_input(key=f"discount_{tier}").value for tier in ("High", "Medium", "Low")] == [0.0, 10.0, 25.0]
    at.number_input(key="discount_Low").set_value(40.0).run()
    assert not at.exception
    assert any("discount costs" in m.value for m in at.markdown)


def test_update_retrains_the_prediction_in_place_from_the_page(trained_app):
    before = find_prediction(trained_app, FULL)
    at = _open()
    [update] = [p.proto.popover for p in at.get("popover") if p.proto.popover.label == "Update"]
    assert not update.disabled
    at.button(key="update_retrain").click().run()
    assert not at.exception and not at.error
    after = find_prediction(trained_app, FULL)
    assert after.id == before.id and after.updated_at > before.updated_at
    assert at.selectbox(key="prediction_pick").value == before.id
    assert _slider_data(at)["steps"] == score_distribution(trained_app, after.id).score_steps().to_payload()


def test_preview_predictions_cannot_be_updated_from_the_page(trained_app):
    at = _open()
    at.selectbox(key="prediction_pick").set_value(find_prediction(trained_app, PREVIEW).id).run()
    [update] = [p.proto.popover for p in at.get("popover") if p.proto.popover.label == "Update"]
    assert update.disabled and update.help == "A preview prediction's scores do not update"


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_predict_prints_name_quality_and_auc(trained_app, capsys):
    assert cli_main(["predict", "--event", "purchase", "--window-days", "14", "--name", "Two weeks"]) == 0
    out = capsys.readouterr().out
    assert "Two weeks" in out and "quality" in out and "AUC" in out


def test_cli_refresh_and_scores_export(trained_app, tmp_path, capsys):
    assert cli_main(["predict", "--refresh", FULL]) == 0
    target = tmp_path / "scores.csv"
    assert cli_main(["scores", FULL, "-o", str(target)]) == 0
    with open(target, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["user_id", "score", "category"]
    assert len(rows) - 1 == find_prediction(trained_app, FULL).audience_size
    assert {row[2] for row in rows[1:]} <= {"Low", "Medium", "High"}
    assert "wrote 3,000 scores" in capsys.readouterr().out


def test_cli_retrain_keeps_the_prediction_and_prints_its_new_figures(trained_app, capsys):
    before = find_prediction(trained_app, FULL)
    assert cli_main(["predict", "--retrain", FULL]) == 0
    out, progress = capsys.readouterr()
    after = find_prediction(trained_app, FULL)
    assert after.id == before.id
    assert f"retraining '{FULL}'" in progress
    assert out.strip().splitlines()[-1].startswith(f"{FULL} [id {before.id}, full]: quality {after.quality:.1f}%")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--event", "levitated", "--window-days", "30"], "does not occur"),
        (["predict", "--refresh", PREVIEW], "preview"),
        (["predict", "--retrain", PREVIEW], "only full predictions are retrained"),
        (["scores", "nope", "-o", "x.csv"], "no prediction"),
        (["predict", "--window-days", "30"], "needs --event"),
    ],
)
def test_cli_errors_are_one_line(trained_app, capsys, argv, message):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_create_segment_carries_the_selection_to_the_segment_builder(trained_app):
    full = find_prediction(trained_app, FULL)
    at = _open()
    _commit(at, 50, 100, ["Medium", "High"])
    at.button(key="create_segment").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["prediction"] == str(full.id)
    assert at.query_params["categories"] == "Medium,High"
    assert at.title[0].value != "Predictions"
