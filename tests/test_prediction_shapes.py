"""Every data shape the import accepts can be predicted: it trains and scores every user, or
says in one line why it cannot (exit 2), never a traceback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from core.cli import main as cli_main
from core.importer import import_events
from core.predictions import find_prediction, train_prediction
from core.predictions.features import FeatureSpec, informative_columns
from tests import purchase_logs as logs

DATA = Path(__file__).resolve().parent / "data"
CDNOW_500 = DATA / "cdnow_first_500_customers.csv"


def _daily_buyers() -> list[logs.Row]:
    """Everyone buys every day: nobody to tell apart."""
    return [(f"d{u:03d}", "purchase", logs._day(day), "5") for u in range(60) for day in range(0, 365)]


def _sessions_and_purchases() -> list[logs.Row]:
    return logs.planted_signal(users=300, seed=9)


# (shape, rows, predict arguments, expected: None = scores everyone, else a phrase of the one-line refusal)
SHAPES = [
    ("purchase log, day precision, no sessions or profiles", logs.repeat_buyers, ["--as-of", "1998-01-01"], None),
    ("as-of with Z", logs.repeat_buyers, ["--as-of", "1997-12-31T23:59:59Z"], None),
    ("as-of with an offset", logs.repeat_buyers, ["--as-of", "1997-12-31T21:00:00-02:00"], None),
    ("times to the second, no values", lambda: logs.repeat_buyers(day_precision=False, value=False), [], None),
    ("a few very heavy users", logs.with_heavy_users, ["--as-of", "1998-01-01"], None),
    ("sessions and purchases", _sessions_and_purchases, ["--as-of", "1998-01-01"], None),
    ("the CDNOW log's first 500 customers", lambda: CDNOW_500, ["--as-of", "1998-06-30"], None),
    ("one event per user", logs.one_event_users, ["--as-of", "1998-01-01"], "did it in the training window"),
    ("as-of before the data", logs.repeat_buyers, ["--as-of", "1996-06-01"], "users had any history"),
    ("window reaching before the data", logs.repeat_buyers, ["--as-of", "1997-01-20"], "users had any history"),
    ("everyone does it", _daily_buyers, ["--as-of", "1998-01-01"], "nearly everyone"),
    ("as-of long after the data", logs.repeat_buyers, ["--as-of", "1999-06-01"], "the data ends on 1997-12-"),
]


def _import(engine, rows, tmp_path: Path) -> None:
    built = rows()
    source = built if isinstance(built, Path) else logs.write_csv(built, tmp_path / "events.csv")
    import_events(engine, source)


def _count(engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar())


@pytest.mark.parametrize(("shape", "rows", "arguments", "refusal"), SHAPES, ids=[s[0] for s in SHAPES])
def test_every_shape_scores_every_user_or_says_why(empty_app, tmp_path, capsys, shape, rows, arguments, refusal):
    _import(empty_app, rows, tmp_path)
    code = cli_main(["predict", "--event", "purchase", "--window-days", "30", *arguments])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if refusal is None:
        assert code == 0, err
        users = _count(empty_app, "SELECT COUNT(*) FROM users")
        assert _count(empty_app, "SELECT COUNT(*) FROM prediction_scores") == users
        exported = tmp_path / "scores.csv"
        assert cli_main(["scores", "Purchase in next 30 days", "-o", str(exported)]) == 0
        assert len(pd.read_csv(exported)) == users
    else:
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 2 and len(errors) == 1, err
        assert errors[0].startswith("error: cannot learn 'purchase'") and refusal in errors[0], err
        assert _count(empty_app, "SELECT COUNT(*) FROM predictions") == 0


@pytest.mark.parametrize(
    ("as_of", "stored"),
    [
        (datetime(1998, 1, 1, tzinfo=UTC), datetime(1998, 1, 1)),
        (datetime(1998, 1, 1, 2, 0), datetime(1998, 1, 1, 2, 0)),
        ("1998-01-01T01:00:00+01:00", datetime(1998, 1, 1)),
        ("1998-01-01", datetime(1998, 1, 1)),
    ],
)
def test_as_of_in_any_iso_form_is_stored_as_naive_utc(empty_engine, tmp_path, as_of, stored):
    _import(empty_engine, logs.repeat_buyers, tmp_path)
    prediction = find_prediction(empty_engine, train_prediction(empty_engine, "purchase", 30, as_of=as_of))
    assert prediction.as_of == stored and prediction.as_of.tzinfo is None


def test_features_without_information_in_this_data_are_left_out(empty_engine, tmp_path):
    _import(empty_engine, lambda: logs.repeat_buyers(value=False), tmp_path)
    prediction = find_prediction(empty_engine, train_prediction(empty_engine, "purchase", 30, as_of="1998-01-01"))
    labels = FeatureSpec("purchase", 30).labels()
    used = set(prediction.details["features"])
    for column in ("sessions_total", "platform", "country", "push_opt_in", "tenure_days", "event_value"):
        assert labels[column] not in used, column
    for column in ("event_days", "days_since_last_event", "gap_mean", "btyd_p_active"):
        assert labels[column] in used, column


@pytest.mark.parametrize(
    ("values", "informative"),
    [
        ([1.0, 2.0, 3.0], True),
        ([2.0, 2.0, 2.0], False),  # constant
        ([float("nan")] * 3, False),  # all missing
        ([float("nan"), 4.0, 4.0], False),  # one value and missing
        ([float("nan"), 4.0, 5.0], True),
    ],
)
def test_informative_columns_need_two_distinct_known_values(values, informative):
    frame = pd.DataFrame({"x": values})
    assert informative_columns(frame, ["x"]) == (("x",) if informative else ())


def test_a_constant_category_is_left_out():
    frame = pd.DataFrame({"platform": pd.Categorical(["unknown"] * 3), "country": pd.Categorical(["DE", "FR", "DE"])})
    assert informative_columns(frame, ["platform", "country"]) == ("country",)
