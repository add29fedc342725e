"""The Predictions page (AppTest) and the prediction CLI commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main as cli_main
from core.predictions import find_prediction, score_distribution
from tests import prediction_fixtures

ROOT = Path(__file__).resolve().parent.parent
# the shared fixtures: the demo database with its demo predictions trained once
trained_app = prediction_fixtures.trained_app
trained_db_template = prediction_fixtures.trained_db_template
trained_engine = prediction_fixtures.trained_engine
FULL = "Purchase in next 30 days"
PREVIEW = "Add to cart in next 14 days (preview)"
PANEL = ("Users selected", "Expected to perform", "Not expected to perform", "Expected conversion rate")


def _open(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/predictions.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _panel(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric if m.label in PANEL}


def _expected_panel(figures) -> dict[str, str]:
    return {
        "Users selected": f"{figures.selected:,}",
        "Expected to perform": f"{figures.expected_captured:,.0f}",
        "Not expected to perform": f"{figures.not_expected_targeted:,.0f}",
        "Expected conversion rate": f"{figures.conversion_rate:.1%}",
    }


def test_the_page_opens_on_the_full_prediction_with_the_high_tier(trained_app):
    at = _open()
    full = find_prediction(trained_app, FULL)
    assert at.selectbox(key="prediction_pick").value == full.id
    assert at.segmented_control(key="tier_pick").value == ["High"]
    assert _panel(at) == _expected_panel(score_distribution(trained_app, full.id).summary(categories=("High",)))
    assert at.query_params["prediction"] == str(full.id)


def test_log_scale_shows_the_histogram_on_a_log_axis_with_the_same_bars(trained_app):
    at = _open()

    def histogram() -> dict:
        chart = at.get("plotly_chart")[0]  # the score histogram comes first
        return json.loads(chart.proto.spec)

    linear = histogram()
    assert linear["layout"]["yaxis"]["type"] == "linear"
    at.toggle(key="hist_log").set_value(True).run()
    log = histogram()
    assert log["layout"]["yaxis"]["type"] == "log"
    assert log["layout"]["yaxis"]["title"]["text"] == "Users (log scale)"
    assert log["data"][0]["y"] == linear["data"][0]["y"]
    assert _panel(at) == _expected_panel(
        score_distribution(trained_app, find_prediction(trained_app, FULL).id).summary(categories=("High",))
    )


@pytest.mark.parametrize(("low", "high"), [(40, 90), (0, 100), (75, 75)])
def test_moving_the_slider_updates_the_panel_and_the_url(trained_app, low, high):
    at = _open()
    full = find_prediction(trained_app, FULL)
    at.slider(key="score_range").set_value((low, high)).run()
    assert _panel(at) == _expected_panel(score_distribution(trained_app, full.id).summary(low, high))
    assert at.segmented_control(key="tier_pick").value == []  # a hand-set range is no tier
    assert at.query_params["min"] == str(low) and at.query_params["max"] == str(high)


@pytest.mark.parametrize("tiers", [["Medium"], ["Medium", "High"], ["Low"]])
def test_the_category_picker_sets_the_range_and_the_panel(trained_app, tiers):
    at = _open()
    full = find_prediction(trained_app, FULL)
    at.segmented_control(key="tier_pick").set_value(tiers).run()
    figures = score_distribution(trained_app, full.id).summary(categories=tuple(tiers))
    assert _panel(at) == _expected_panel(figures)
    from core.tiers import score_range_of

    assert at.slider(key="score_range").value == tuple(int(v) for v in score_range_of(tiers))
    assert at.query_params["categories"] == ",".join(tiers)


def test_a_shared_link_restores_the_selection(trained_app):
    full = find_prediction(trained_app, FULL)
    at = _open({"prediction": str(full.id), "min": "30", "max": "60"})
    assert at.slider(key="score_range").value == (30, 60)
    assert _panel(at) == _expected_panel(score_distribution(trained_app, full.id).summary(30, 60))


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
    assert _panel(at) == _expected_panel(score_distribution(trained_app, after.id).summary(categories=("High",)))


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
    at.segmented_control(key="tier_pick").set_value(["Medium", "High"]).run()
    at.button(key="create_segment").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["prediction"] == str(full.id)
    assert at.query_params["categories"] == "Medium,High"
    assert at.title[0].value != "Predictions"
