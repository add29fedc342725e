"""`backtest`: the standard protocol on the customer's own data, the product against the classics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.cli import main as cli_main
from core.importer import import_events
from core.predictions.backtest import MODELS, bootstrap_auc, run_backtest, summary_sentences, weighted_auc
from tests import cdnow
from tests import purchase_logs as logs

PLANTED_MARGIN = 0.05  # AUC points the product must beat "most recent first" by on the planted signal


@pytest.fixture(scope="module")
def planted_db(databases, tmp_path_factory) -> str:
    from tests.conftest import close_engine, open_engine

    url = databases.new("planted")
    engine = open_engine(url)
    import_events(engine, logs.write_csv(logs.planted_signal(), tmp_path_factory.mktemp("planted") / "events.csv"))
    close_engine(engine)
    return url


@pytest.fixture(scope="module")
def planted(planted_db):
    from tests.conftest import close_engine, open_engine

    engine = open_engine(planted_db)
    result = run_backtest(engine, "purchase", 30, as_of="1998-01-01")
    close_engine(engine)
    return result


def test_the_product_beats_recency_on_a_planted_signal_by_the_stated_margin(planted):
    assert planted.score("product").auc >= planted.score("recency").auc + PLANTED_MARGIN


@pytest.mark.parametrize("reference", ["base_rate", "recency", "rfm_logistic", "bgnbd"])
def test_the_product_ranks_at_least_as_well_as_each_reference_on_the_planted_signal(planted, reference):
    assert planted.score("product").auc >= planted.score(reference).auc


def test_the_protocol_trains_two_windows_back_and_evaluates_one_window_back(planted):
    assert planted.as_of.isoformat() == "1998-01-01T00:00:00"
    assert planted.evaluation_cutoff.isoformat() == "1997-12-02T00:00:00"
    assert planted.training_cutoff.isoformat() == "1997-11-02T00:00:00"
    assert [s.model for s in planted.scores] == [key for key, _label in MODELS]
    assert {s.observed_performers for s in planted.scores} == {planted.evaluation_performers}


def test_every_model_reports_an_interval_around_its_auc_and_a_recall_of_at_most_one(planted):
    for score in planted.scores:
        assert score.auc_low <= score.auc <= score.auc_high, score.model
        assert 0 <= score.high_tier_recall <= 1 and 0 < score.top_tenth_recall <= 1, score.model
        assert 0 < score.average_precision <= 1, score.model


def test_the_base_rate_ranks_nobody(planted):
    base = planted.score("base_rate")
    assert (base.auc, base.auc_low, base.auc_high, base.high_tier_users) == (0.5, 0.5, 0.5, 0)


def test_the_summary_says_how_much_better_than_most_recent_first(planted):
    ours, recency = planted.score("product"), planted.score("recency")
    gap = (ours.auc - recency.auc) * 100
    assert f"Ranks buyers better than 'most recent first' by {gap:.1f} AUC points" in summary_sentences(planted)[0]


def test_json_prints_one_line_with_every_model(planted_db, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", planted_db)
    from core import db

    db._engines.clear()
    assert cli_main(["backtest", "--event", "purchase", "--window-days", "30", "--as-of", "1998-01-01", "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert [s["model"] for s in result["scores"]] == [key for key, _label in MODELS]
    assert result["window_days"] == 30 and result["as_of"] == "1998-01-01T00:00:00"
    db._engines.clear()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--event", "signup", "--window-days", "30"], "event 'signup' does not occur in the data"),
        (["--event", "purchase", "--window-days", "181"], "choose 1 to 180 days"),
        (["--event", "purchase", "--window-days", "30", "--as-of", "1997-01-15"], "cannot learn 'purchase'"),
        (["--event", "purchase", "--window-days", "30", "--as-of", "2001-01-01"], "the data ends on 1997-12-31"),
    ],
)
def test_a_backtest_that_cannot_run_says_why_in_one_line(planted_db, monkeypatch, capsys, arguments, message):
    monkeypatch.setenv("DATABASE_URL", planted_db)
    from core import db

    db._engines.clear()
    assert cli_main(["backtest", *arguments]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0]
    db._engines.clear()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_auc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 8, 500).astype(float)  # many ties
    labels = rng.random(500) < 0.3
    assert weighted_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def test_weighted_auc_counts_a_row_weight_as_repeats():
    scores, labels, weights = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]), np.array([1, 3, 2, 1])
    repeated = np.repeat(np.arange(4), weights)
    assert weighted_auc(scores, labels, weights) == pytest.approx(roc_auc_score(labels[repeated], scores[repeated]))


def test_the_bootstrap_interval_of_a_perfect_ranking_is_one():
    labels = np.array([0] * 50 + [1] * 50)
    assert bootstrap_auc(labels, labels.astype(float), rounds=50, seed=0) == (1.0, 1.0)


# --- the real public purchase log (CDNOW), when the lifetimes wheel has been downloaded ---------

WHEEL = cdnow.find_wheel()


@pytest.fixture(scope="module")
def cdnow_db(databases, tmp_path_factory) -> str:
    from tests.conftest import close_engine, open_engine

    url = databases.new("cdnow")
    engine = open_engine(url)
    csv_path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    cdnow.write_events_csv(WHEEL, csv_path)
    import_events(engine, csv_path)
    close_engine(engine)
    return url


@pytest.mark.skipif(
    WHEEL is None,
    reason="no CDNOW data: `make test` downloads it (pip download --no-deps lifetimes==0.11.3 -d .venv/datasets)",
)
@pytest.mark.parametrize("window_days", [30, 60, 90])
def test_on_cdnow_the_product_matches_the_classics_and_adds_up(cdnow_db, window_days):
    from tests.conftest import close_engine, open_engine

    engine = open_engine(cdnow_db)
    result = run_backtest(engine, "purchase", window_days, as_of="1998-06-30T23:59:59Z", rounds=20)
    close_engine(engine)
    ours = result.score("product")
    assert ours.auc >= result.score("bgnbd").auc
    assert ours.auc >= result.score("rfm_logistic").auc
    assert abs(ours.expected_performers / ours.observed_performers - 1) <= 0.05


def test_the_committed_cdnow_excerpt_is_what_the_converter_writes():
    excerpt = Path(__file__).resolve().parent / "data" / "cdnow_first_500_customers.csv"
    lines = excerpt.read_text().splitlines()
    assert lines[0] == "user_id,event,timestamp,value"
    assert lines[1] == ",".join(next(cdnow.events_rows(iter([" 00001 19970101  1   11.77"]))))
