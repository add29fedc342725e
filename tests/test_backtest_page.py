"""The Predictions page's backtest: run from the quality section or before training, shown next to the classics."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.predictions import BACKTEST_LABELS, find_prediction, stored_backtest, summary_sentences
from tests import prediction_fixtures

ROOT = Path(__file__).resolve().parent.parent
trained_app = prediction_fixtures.trained_app
trained_db_template = prediction_fixtures.trained_db_template
trained_engine = prediction_fixtures.trained_engine
FULL = "Purchase in next 30 days"


def _open() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/predictions.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_quality_section_runs_a_backtest_and_shows_it_next_to_the_classics(trained_app):
    at = _open()
    assert at.button(key="run_backtest").label == "Run a backtest"
    at.button(key="run_backtest").click().run()
    assert not at.exception and not at.error
    result = stored_backtest(find_prediction(trained_app, FULL).details)
    assert result is not None and (result.event, result.window_days) == ("purchase", 30)
    shown = "\n".join(m.value for m in at.markdown)
    for sentence in summary_sentences(result):
        assert f"- {sentence}" in shown
    [table] = [d.value for d in at.dataframe if "Model" in d.value.columns]
    assert list(table["Model"]) == list(BACKTEST_LABELS)
    assert list(table["AUC"]) == [s.auc for s in result.scores]
    assert at.button(key="run_backtest").label == "Run the backtest again"


def test_the_new_prediction_form_can_run_a_backtest_first(trained_app):
    at = _open()
    [first] = [c for c in at.checkbox if c.label == "Run a backtest first"]
    first.check()
    [name] = [t for t in at.text_input if t.label == "Name"]
    name.input("Backtested purchase")
    [train] = [b for b in at.button if b.label == "Train prediction"]
    train.click().run()
    assert not at.exception and not at.error
    result = stored_backtest(find_prediction(trained_app, "Backtested purchase").details)
    assert result is not None and result.as_of == find_prediction(trained_app, "Backtested purchase").as_of


def test_the_new_prediction_form_trains_without_a_backtest_by_default(trained_app):
    at = _open()
    [name] = [t for t in at.text_input if t.label == "Name"]
    name.input("Plain purchase")
    [train] = [b for b in at.button if b.label == "Train prediction"]
    train.click().run()
    assert not at.exception and not at.error
    assert stored_backtest(find_prediction(trained_app, "Plain purchase").details) is None
