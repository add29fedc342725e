"""BG/NBD on the CDNOW sample (2,357 customers, weeks): the published likelihood and parameters
of Fader, Hardie & Lee (2005), "Counting your customers the easy way"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.predictions.bgnbd import BgNbd, fit_bgnbd, log_likelihood

SUMMARY = Path(__file__).resolve().parent / "data" / "cdnow_sample_summary.csv"  # from the lifetimes package
PUBLISHED = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def cdnow():
    frame = pd.read_csv(SUMMARY)
    return frame["frequency"].to_numpy(), frame["recency"].to_numpy(), frame["T"].to_numpy()


def test_the_published_parameters_give_the_published_log_likelihood(cdnow):
    assert log_likelihood((PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b), *cdnow) == pytest.approx(
        -9582.4, abs=0.05
    )


@pytest.mark.parametrize(("name", "published"), [("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)])
def test_fitting_recovers_the_published_parameters(cdnow, name, published):
    assert getattr(fit_bgnbd(*cdnow), name) == pytest.approx(published, abs=0.002)


def test_the_conditional_expectation_matches_the_papers_example():
    # Customer with x=2, t_x=30.43, T=38.86: 1.226 expected purchases in the next 39 weeks.
    assert PUBLISHED.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=0.001)


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0, 30), (1, 5, 30), (4, 28, 30), (10, 2, 30)])
def test_a_purchase_in_the_window_needs_the_customer_alive(x, t_x, T):
    alive = PUBLISHED.p_alive([x], [t_x], [T])[0]
    buys = PUBLISHED.p_purchase_within(4, [x], [t_x], [T])[0]
    assert 0 < buys < alive <= 1
    assert (alive == 1) == (x == 0)


def test_the_chance_of_a_purchase_agrees_with_simulation():
    rng = np.random.default_rng(0)
    customers, weeks, window = 200_000, 30.0, 8.0
    rate = rng.gamma(PUBLISHED.r, 1 / PUBLISHED.alpha, customers)
    dropout = rng.beta(PUBLISHED.a, PUBLISHED.b, customers)
    x, last, alive = np.zeros(customers), np.zeros(customers), np.ones(customers, dtype=bool)
    bought = np.zeros(customers, dtype=bool)
    clock = rng.exponential(1 / rate)
    while True:
        active = alive & (clock < weeks + window)
        if not active.any():
            break
        in_history = active & (clock < weeks)
        x[in_history] += 1
        last[in_history] = clock[in_history]
        bought |= active & (clock >= weeks)
        alive[active] = rng.random(active.sum()) >= dropout[active]
        clock[active] += rng.exponential(1 / rate[active])
    group = (x == 1) & (last > 20)  # one group of identical histories is enough to compare
    expected = PUBLISHED.p_purchase_within(window, [1.0], [float(np.mean(last[group]))], [weeks])[0]
    assert bought[group].mean() == pytest.approx(expected, abs=0.02)
