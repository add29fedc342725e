"""Did it work? Control groups, conversions in a window, uplift against a reference, the demo's planted truth.

Delivery is simulated (status 'sent', sent_at = send_at, tests/results_fixtures.py) until the worker of
issue 13 lands: results read only the outbox's statuses, whoever sets them.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from scipy import stats
from sqlalchemy import func, select, text

from core import cli
from core.campaigns import CampaignSpec, demo_response, dispatch, experiment, launch
from core.campaigns.results import SUMMARY_COLUMNS, GroupResult, campaign_results, summary_frame
from core.campaigns.spec import ABVariant, parse_campaign_spec
from core.campaigns.uplift import compare, needed_users
from core.db import session_scope
from core.errors import UserError
from core.importer import stable_bucket
from core.models import Campaign, Event, OutboxMessage, Prediction, User
from tests.conftest import POSTGRES_URL, close_engine, open_engine
from tests.results_fixtures import ALL_USERS, planted_prediction, simulate_delivery

# ---------------------------------------------------------------- statistics against scipy

COUNTS = [  # treated, converted treated, control, converted control
    (9_000, 900, 1_000, 80),
    (500, 60, 500, 40),
    (20_000, 2_100, 2_000, 190),
    (1_500, 45, 150, 9),
    (3_000, 300, 3_000, 300),
]


@pytest.mark.parametrize("treated, converted_t, control, converted_c", COUNTS)
def test_uplift_interval_and_p_value_match_scipy(treated, converted_t, control, converted_c):
    result = compare(treated, converted_t, control, converted_c)
    p_t, p_c = converted_t / treated, converted_c / control
    # Wald interval of the difference: scipy's binomial variances and normal interval.
    spread = math.sqrt(stats.binom(treated, p_t).var() / treated**2 + stats.binom(control, p_c).var() / control**2)
    low, high = stats.norm.interval(0.95, loc=p_t - p_c, scale=spread)
    # Two-proportion z-test (pooled) == chi-square test of the 2x2 table without continuity correction.
    table = [[converted_t, treated - converted_t], [converted_c, control - converted_c]]
    p_value = stats.chi2_contingency(table, correction=False).pvalue
    ratio = stats.contingency.relative_risk(converted_t, treated, converted_c, control)
    ratio_ci = ratio.confidence_interval(0.95)

    assert result.uplift == pytest.approx(p_t - p_c, abs=1e-12)
    assert result.uplift_ci == pytest.approx((low, high), abs=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-6, abs=1e-12)
    assert result.relative_uplift == pytest.approx(ratio.relative_risk - 1, abs=1e-12)
    assert result.relative_uplift_ci == pytest.approx((ratio_ci.low - 1, ratio_ci.high - 1), abs=1e-9)


def test_a_group_table_row_holds_its_comparison_interval_and_revenue_in_the_shown_order():
    groups = {
        "High": GroupResult(1_100, 950, compare(*COUNTS[0]), 12.5, 11.0),
        "Low": GroupResult(0, 0, compare(0, 0, 0, 0), None, None),
    }
    frame = summary_frame(groups)
    assert frame.columns.tolist() == SUMMARY_COLUMNS
    high = frame.iloc[0].to_dict()
    c = groups["High"].comparison
    assert (high["group"], high["audience"], high["delivered"], high["treated"], high["control"]) == (
        "High",
        1_100,
        950,
        9_000,
        1_000,
    )
    assert (high["uplift_low"], high["uplift_high"]) == c.uplift_ci
    assert (high["revenue_per_user_treated"], high["verdict"]) == (12.5, c.verdict())
    assert frame.iloc[1]["verdict"] == "No control group to compare with."
    assert summary_frame({}).empty


@pytest.mark.parametrize(
    "rate_control, uplift, treated_share", [(0.10, 0.02, 0.9), (0.05, 0.01, 0.5), (0.30, -0.03, 0.8)]
)
def test_needed_sample_size_gives_eighty_percent_power(rate_control, uplift, treated_share):
    needed = needed_users(rate_control, uplift, treated_share)

    def power(users: int) -> float:
        treated, control = users * treated_share, users * (1 - treated_share)
        rate_treated = rate_control + uplift
        pooled = treated_share * rate_treated + (1 - treated_share) * rate_control
        null_se = math.sqrt(pooled * (1 - pooled) * (1 / treated + 1 / control))
        true_se = math.sqrt(rate_treated * (1 - rate_treated) / treated + rate_control * (1 - rate_control) / control)
        return stats.norm.cdf((abs(uplift) - stats.norm.ppf(0.975) * null_se) / true_se)

    assert power(needed) == pytest.approx(0.80, abs=0.005)
    assert power(needed * 0.8) < 0.78


def test_small_groups_say_so_and_give_the_sample_size_needed():
    small = compare(200, 24, 20, 2)
    assert not small.enough_data and small.needed_users > 220
    assert small.verdict().startswith("Too small to conclude: 220 users so far.")
    assert f"{small.needed_users:,} users would be needed" in small.verdict()
    clear = compare(20_000, 2_400, 2_000, 160)
    assert clear.significant and clear.needed_users is None
    assert clear.verdict() == f"The message raised conversion by 4.0 points (p = {clear.p_value:.3f})."
    assert compare(500, 50, 0, 0).verdict() == "No control group to compare with."


# ---------------------------------------------------------------- the control group


@pytest.mark.parametrize("percent", [0, 5, 10, 25, 50])
def test_control_group_has_the_requested_size_at_50000_users(percent):
    buckets = np.array([stable_bucket(f"user-{i}") for i in range(50_000)])  # how imports assign buckets
    for campaign_id in (1, 2, 3, 977):
        held_out = experiment.assign(campaign_id, buckets, percent).control
        assert abs(held_out.mean() * 100 - percent) <= 1.0, (campaign_id, held_out.mean())
        every_bucket = experiment.assign(campaign_id, np.arange(experiment.BUCKETS), percent).control
        assert every_bucket.sum() == percent * 100  # exactly the share of buckets; only users vary


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    campaign_id=st.integers(1, 10**6),
    control=st.integers(0, 5_000).map(lambda hundredths: hundredths / 100),
    shares=st.lists(st.integers(1, 60), min_size=2, max_size=5),
)
def test_every_bucket_gets_exactly_its_share(campaign_id, control, shares):
    """Over all 10,000 buckets the control group and each variant get their share to within a bucket."""
    shares = [100 * s / sum(shares) for s in shares]
    variants = tuple(ABVariant(name=f"V{i}", share=s) for i, s in enumerate(shares))
    assignment = experiment.assign(campaign_id, np.arange(experiment.BUCKETS), control, variants)
    assert assignment.control.sum() == round(control * 100)
    treated = experiment.BUCKETS - assignment.control.sum()
    for variant in variants:
        assert abs((assignment.variant == variant.name).sum() - variant.share / 100 * treated) <= 1
    assert (assignment.variant[assignment.control] == None).all()  # noqa: E711 - an object array


def test_different_campaigns_hold_out_different_users():
    buckets = np.arange(50_000) % experiment.BUCKETS
    first = experiment.assign(1, buckets, 10).control
    second = experiment.assign(2, buckets, 10).control
    both = (first & second).mean()
    assert 0.005 < both < 0.02  # about 10% x 10%, as for independent draws, not 10%


def _launch(engine, name, launched_at, schedule=None, settings=None, message=None, prediction_id=None) -> int:
    spec = CampaignSpec(
        name=name,
        audience=ALL_USERS,
        channel="in_app",
        # {{ offer }} comes from a prediction's tiers: without one the copy may not use it
        message={"title": "", "body": "Hello {{ first_name }}" + (", {{ offer }}" if prediction_id else "")}
        | {"prediction_id": prediction_id}
        | (message or {}),
        schedule=schedule or {"kind": "now"},
        settings={"reeligible": True, "reeligible_after_days": None} | (settings or {}),
    )
    return launch(spec, engine, now=launched_at)


def _rows(engine, campaign_id):
    with engine.connect() as connection:
        return connection.execute(
            select(
                OutboxMessage.occurrence,
                OutboxMessage.user_id,
                OutboxMessage.status,
                OutboxMessage.title,
                OutboxMessage.body,
                OutboxMessage.variant,
                OutboxMessage.send_at,
            ).where(OutboxMessage.campaign_id == campaign_id)
        ).all()


def test_control_users_stay_out_across_sends_and_are_never_given_a_message(demo_engine, demo_anchor):
    schedule = {
        "kind": "recurring",
        "frequency": "daily",
        "interval": 1,
        "time": "09:00",
        "start": demo_anchor.date().isoformat(),
        "end": {"kind": "never"},
        "local_time": False,
    }
    campaign = _launch(demo_engine, "Daily", demo_anchor, schedule, {"control_percent": 20})
    report = dispatch(demo_engine, until=demo_anchor + timedelta(days=3))
    rows = _rows(demo_engine, campaign)
    by_send: dict[str, set[int]] = {}
    for row in rows:
        if row.status == experiment.CONTROL_STATUS:
            by_send.setdefault(row.occurrence, set()).add(row.user_id)
    users = {row.user_id for row in rows}
    assert len(by_send) == 3 and len({frozenset(s) for s in by_send.values()}) == 1  # the same users every send
    control = next(iter(by_send.values()))
    with demo_engine.connect() as connection:
        buckets = dict(connection.execute(select(User.id, User.random_bucket)).all())
    expected = {u for u in users if experiment.bucket_ranks(campaign)[buckets[u]] < 2_000}
    assert control == expected
    assert abs(len(control) / len(users) - 0.20) < 0.03
    held = [r for r in rows if r.status == experiment.CONTROL_STATUS]
    assert all(r.title is None and r.body is None for r in held)  # nothing to deliver on any channel
    assert {r.status for r in rows} == {"queued", experiment.CONTROL_STATUS}
    assert report.held_out[campaign] == len(held)
    simulate_delivery(demo_engine)
    assert {r.status for r in _rows(demo_engine, campaign) if r.user_id in control} == {experiment.CONTROL_STATUS}


BAD_SETTINGS = [
    ({"control_percent": 60}, "delivery settings: 'control_percent' must be from 0% to 50% of the audience, not 60%"),
    ({"control_percent": -1}, "delivery settings: 'control_percent' must be from 0% to 50% of the audience, not -1%"),
    ({"control_percent": "ten"}, "delivery settings: 'control_percent' must be a number from 0 to 50, not 'ten'"),
    (
        {"conversion_window_days": 0},
        "delivery settings: 'conversion_window_days' must be a whole number from 1 to 30, not 0",
    ),
    (
        {"conversion_window_days": 2.5},
        "delivery settings: 'conversion_window_days' must be a whole number from 1 to 30, not 2.5",
    ),
    ({"conversion_event": 5}, "delivery settings: 'conversion_event' must be text, not 5"),
]
BAD_VARIANTS = [
    ([{"name": "A", "share": 100}], "message: 'ab_variants' must hold no variants or 2 to 5, not 1"),
    ([{"name": "A", "share": 50}, {"name": "B", "share": 40}], "message: variant shares must add up to 100%, not 90%"),
    ([{"name": "A", "share": 50}, {"name": "A", "share": 50}], "message: variant names must differ: A, A"),
    (
        [{"name": "A", "share": 50}, {"name": "B", "share": 50, "delay_minutes": -5}],
        "message: variant 2: 'delay_minutes' must be a whole number from 0 to 1440, not -5",
    ),
    (
        [{"name": "", "share": 50}, {"name": "B", "share": 50}],
        "message: variant 1: 'name' must be 1 to 16 characters, not ''",
    ),
]


@pytest.mark.parametrize(
    "settings, variants, error",
    [(s, None, e) for s, e in BAD_SETTINGS] + [({}, v, e) for v, e in BAD_VARIANTS],
)
def test_bad_measurement_or_variants_are_one_line_naming_the_place(demo_engine, demo_anchor, settings, variants, error):
    """The limits live on the spec's models: a bad document never makes a spec, and a campaigns row
    edited by hand to hold one is skipped by dispatch with the same line, writing nothing."""
    message = {"title": "", "body": "Hi", **({"ab_variants": variants} if variants else {})}
    document = {"name": "Bad", "audience": ALL_USERS, "channel": "in_app", "message": message}
    with pytest.raises(UserError) as refused:
        parse_campaign_spec({**document, "settings": {"reeligible": True, **settings}})
    assert str(refused.value) == error
    campaign = _launch(demo_engine, "Edited by hand", demo_anchor)
    with session_scope(demo_engine) as session:
        row = session.get(Campaign, campaign)
        row.settings, row.message = {**row.settings, **settings}, message
    report = dispatch(demo_engine, until=demo_anchor + timedelta(hours=1))
    assert report.problems == {campaign: error} and report.written == 0
    with session_scope(demo_engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_launch_freezes_the_measurement_with_the_predictions_event(demo_engine, demo_anchor):
    prediction = planted_prediction(demo_engine, event="purchase")
    with_prediction = _launch(demo_engine, "Targeted", demo_anchor, prediction_id=prediction)
    without = _launch(demo_engine, "Untargeted", demo_anchor, settings={"conversion_window_days": 7})
    with session_scope(demo_engine) as session:
        targeted = session.get(Campaign, with_prediction).settings
        untargeted = session.get(Campaign, without).settings
    assert (targeted["conversion_event"], targeted["conversion_window_days"], targeted["control_percent"]) == (
        "purchase",
        3,
        10.0,
    )
    assert (untargeted["conversion_event"], untargeted["conversion_window_days"]) == ("session", 7)


def test_a_campaign_launched_before_control_groups_holds_nobody_out(demo_engine, demo_anchor):
    """Its row has no control_percent: starting a control group mid-way would hold out users who
    already had its messages, so dispatch keeps messaging everyone."""
    campaign = _launch(demo_engine, "Older", demo_anchor)
    with session_scope(demo_engine) as session:
        row = session.get(Campaign, campaign)
        row.settings = {k: v for k, v in row.settings.items() if k not in ("control_percent", "conversion_event")}
    report = dispatch(demo_engine, until=demo_anchor + timedelta(hours=1))
    rows = _rows(demo_engine, campaign)
    assert report.held_out == {} and len(rows) == report.written > 0
    assert {r.status for r in rows} == {"queued"}
    assert campaign_results(campaign, demo_engine, now=demo_anchor + timedelta(days=4)).measurement == (
        experiment.Measurement(conversion_event="session", window_days=3, control_percent=0.0)
    )


# ---------------------------------------------------------------- variants


def test_variants_split_the_treated_users_and_send_at_their_own_time(demo_engine, demo_anchor):
    prediction = planted_prediction(demo_engine)
    variants = [
        {"name": "A", "share": 70, "offers": {"Medium": "10% off"}},
        {"name": "B", "share": 30, "offers": {"Medium": "20% off"}, "delay_minutes": 120},
    ]
    launched = demo_anchor + timedelta(hours=1)
    campaign = _launch(
        demo_engine,
        "A/B",
        launched,
        settings={"control_percent": 10},
        message={"ab_variants": variants},
        prediction_id=prediction,
    )
    dispatch(demo_engine, until=launched + timedelta(minutes=30))
    assert {r.variant for r in _rows(demo_engine, campaign)} == {"A", None}  # B is not due yet
    dispatch(demo_engine, until=launched + timedelta(hours=3))
    rows = _rows(demo_engine, campaign)
    treated = [r for r in rows if r.status == "queued"]
    share_b = sum(r.variant == "B" for r in treated) / len(treated)
    assert abs(share_b - 0.30) < 0.04
    assert {r.send_at for r in treated if r.variant == "A"} == {launched}
    assert {r.send_at for r in treated if r.variant == "B"} == {launched + timedelta(hours=2)}
    assert all(r.variant is None for r in rows if r.status == experiment.CONTROL_STATUS)
    medium = [r for r in treated if r.user_id % 3 == 1]  # planted_prediction: id % 3 == 1 is Medium
    assert {r.body.rsplit(", ", 1)[1] for r in medium if r.variant == "A"} == {"10% off"}
    assert {r.body.rsplit(", ", 1)[1] for r in medium if r.variant == "B"} == {"20% off"}

    simulate_delivery(demo_engine)
    results = campaign_results(campaign, demo_engine, now=launched + timedelta(days=4))
    assert set(results.by_variant) == {"A", "B"} and set(results.variants_vs_first) == {"B"}
    control = results.overall.comparison.control
    assert all(v.comparison.control == control for v in results.by_variant.values())
    assert sum(v.comparison.treated for v in results.by_variant.values()) == results.overall.comparison.treated


# ---------------------------------------------------------------- conversions in the window, by hand

T0 = datetime(2026, 1, 5, 10, 0)


def _hand_made(engine) -> int:
    """Two sends of a 3-day-window purchase campaign to six users; see the test for what counts."""
    with session_scope(engine) as session:
        users = [User(id=i, external_id=f"u{i}", random_bucket=i) for i in range(1, 7)]
        session.add_all(users)
        prediction = Prediction(name="P", event="purchase", window_days=14, kind="full", as_of=T0)
        session.add(prediction)
        session.flush()
        campaign = Campaign(
            name="By hand",
            audience=ALL_USERS,
            channel="in_app",
            message={"body": "x", "prediction_id": prediction.id},
            schedule={"kind": "now"},
            settings={"conversion_event": "purchase", "conversion_window_days": 3, "control_percent": 10},
            status="scheduled",
        )
        session.add(campaign)
        session.flush()
        second = T0 + timedelta(days=7)
        sends = [  # occurrence, user, status, tier
            (T0, 1, "sent", "High"),
            (T0, 2, "sent", "Low"),
            (T0, 3, "sent", "Low"),
            (T0, 4, "failed", "Low"),
            (T0, 5, "control", "High"),
            (T0, 6, "control", "Low"),
            (second, 1, "sent", "High"),
            (second, 2, "sent", "Low"),
            (second, 5, "control", "High"),
        ]
        session.add_all(
            OutboxMessage(
                campaign_id=campaign.id,
                occurrence=at.isoformat(),
                user_id=user,
                channel="in_app",
                send_at=at,
                status=status,
                tier=tier,
                sent_at=at if status == "sent" else None,
            )
            for at, user, status, tier in sends
        )
        events = [  # user, name, ts, value
            (1, "purchase", T0 + timedelta(hours=1), 10.0),  # converted, first send
            (2, "purchase", T0 + timedelta(days=3), 5.0),  # the window is [send, send + 3 days): outside
            (3, "purchase", T0 - timedelta(minutes=1), 7.0),  # before the send: outside
            (5, "purchase", T0 + timedelta(days=2), 30.0),  # control converted
            (6, "session", T0 + timedelta(hours=2), None),  # not the conversion event
            (2, "purchase", second + timedelta(hours=1), 20.0),  # converted, second send
            (1, "purchase", second + timedelta(days=2, hours=1), 99.0),  # after `now`: not yet
        ]
        session.add_all(Event(user_id=u, name=n, ts=ts, value=v) for u, n, ts, v in events)
        return campaign.id


def test_conversions_count_inside_the_window_and_up_to_now(empty_engine):
    campaign = _hand_made(empty_engine)
    now = T0 + timedelta(days=9)
    results = campaign_results(campaign, empty_engine, now=now)
    data = results.as_json()
    first, second = data["sends"]
    assert (first["treated"], first["control"], first["delivered"]) == (4, 2, 3)
    assert (first["converted_treated"], first["converted_control"]) == (1, 1)
    assert (first["revenue_per_user_treated"], first["revenue_per_user_control"]) == (2.5, 15.0)
    assert first["window_complete"] and not second["window_complete"]
    assert (second["treated"], second["control"], second["converted_treated"], second["converted_control"]) == (
        2,
        1,
        1,
        0,
    )
    # Overall each user once: treated 1 (first send) and 2 (second send) of 1-4; control 5 of 5-6.
    assert (data["audience"], data["treated"], data["control"], data["delivered"]) == (6, 4, 2, 3)
    assert (data["converted_treated"], data["converted_control"]) == (2, 1)
    assert data["uplift"] == pytest.approx(0.0)
    assert (data["revenue_per_user_treated"], data["revenue_per_user_control"]) == (7.5, 15.0)
    high = data["by_tier"]["High"]
    assert (high["treated"], high["control"], high["converted_treated"], high["converted_control"]) == (1, 1, 1, 1)
    assert list(data["by_tier"]) == ["High", "Low"]
    assert data["by_tier"]["Low"]["converted_treated"] == 1
    # The curve: each group's first conversions, cumulative over calendar time.
    curve = results.curve
    treated = curve[curve["group"] == "Treated"]
    assert treated["converted"].tolist() == [0, 1, 2] and treated["rate"].iloc[-1] == 0.5
    assert curve[curve["group"] == "Control"]["time"].iloc[-1] == T0 + timedelta(days=2)


def test_results_are_identical_on_sqlite_and_postgresql(databases, tmp_path):
    if not POSTGRES_URL:
        pytest.skip("set LIKELY_TEST_POSTGRES to compare with PostgreSQL")
    outputs = []
    for url in (f"sqlite:///{tmp_path / 'same.db'}", databases.new("same")):
        engine = open_engine(url)
        campaign = _hand_made(engine)
        outputs.append(campaign_results(campaign, engine, now=T0 + timedelta(days=9)))
        close_engine(engine)
    sqlite, postgres = outputs
    assert sqlite.as_json() == postgres.as_json()
    assert sqlite.curve.equals(postgres.curve)


# ---------------------------------------------------------------- the demo tells the truth


def _demo_campaign(engine, launched, prediction=None, name="Discount") -> int:
    """A send-now in-app campaign to every user with half held out, dispatched and delivered."""
    prediction = prediction or planted_prediction(engine)
    campaign = _launch(engine, name, launched, settings={"control_percent": 50}, prediction_id=prediction)
    dispatch(engine, until=launched, campaign_ids=[campaign])
    simulate_delivery(engine)
    return campaign


LAUNCHES = 8


def test_on_seeded_demo_runs_the_estimate_per_tier_contains_the_planted_uplift(demo_engine, demo_anchor):
    """Eight seeded launches (1,000 users per tier, half held out): a 95% interval misses 1 time in 20
    by design, so each tier's must contain the planted uplift at least 6 times in 8, and the mean
    estimate must sit within 2 points of it (one launch's interval is about +-6 points wide)."""
    prediction = planted_prediction(demo_engine)
    contained = {tier: 0 for tier in demo_response.PLANTED_UPLIFT if tier}
    estimates: dict[str, list[float]] = {tier: [] for tier in contained}
    for run in range(LAUNCHES):
        launched = demo_anchor + timedelta(days=10 * run, hours=1)
        campaign = _demo_campaign(demo_engine, launched, prediction, name=f"Discount {run}")
        assert demo_response.respond(demo_engine, launched + timedelta(days=4)) > 0
        results = campaign_results(campaign, demo_engine, now=launched + timedelta(days=4))
        assert set(results.by_tier) == set(contained)
        for tier, result in results.by_tier.items():
            low, high = result.comparison.uplift_ci
            contained[tier] += low <= demo_response.PLANTED_UPLIFT[tier] <= high
            estimates[tier].append(result.comparison.uplift)
    for tier, planted in demo_response.PLANTED_UPLIFT.items():
        if tier:
            assert contained[tier] >= 6, (tier, contained, estimates[tier])
            assert abs(np.mean(estimates[tier]) - planted) < 0.02, (tier, estimates[tier])
    assert np.mean(estimates["Medium"]) > np.mean(estimates["Low"]) > np.mean(estimates["High"])  # as planted


def test_the_demo_response_writes_each_event_once_whatever_the_calls(demo_engine, demo_anchor):
    launched = demo_anchor + timedelta(hours=1)
    _demo_campaign(demo_engine, launched)
    later = launched + timedelta(days=4)
    steps = [demo_response.respond(demo_engine, launched + timedelta(days=d)) for d in (1, 2, 2, 1, 4)]
    assert steps[2] == steps[3] == 0  # the same instant again, or an earlier one, plays nothing
    with demo_engine.connect() as connection:
        stepped = connection.execute(
            text("SELECT user_id, name, ts, value FROM events WHERE ts > :t ORDER BY 1, 3"), {"t": launched}
        ).all()
        connection.execute(text("DELETE FROM events WHERE ts > :t"), {"t": launched})
        connection.execute(text("DELETE FROM app_meta WHERE key = :k"), {"k": demo_response.WATERMARK_KEY})
        connection.commit()
    assert demo_response.respond(demo_engine, later) == sum(steps) == len(stepped)


def test_the_response_model_plays_only_in_a_demo_database(empty_engine):
    campaign = _hand_made(empty_engine)
    assert campaign and demo_response.respond(empty_engine, T0 + timedelta(days=9)) == 0


# ---------------------------------------------------------------- the command line


def test_cli_results_json_holds_the_promised_keys(app_database, demo_anchor, capsys):
    campaign = _demo_campaign(app_database, demo_anchor - timedelta(days=5))
    assert cli.main(["campaign", "results", "Discount", "--json"]) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    data = json.loads(line)
    expected = campaign_results(campaign, app_database).as_json()
    data.pop("as_of"), expected.pop("as_of")
    assert data == expected
    assert cli.main(["campaign", "results", "Discount", "--json", "--as-of", demo_anchor.isoformat()]) == 0
    as_of = json.loads(capsys.readouterr().out)
    assert as_of == campaign_results(campaign, app_database, now=demo_anchor).as_json()
    keys = {"treated", "control", "converted_treated", "converted_control", "uplift", "uplift_ci", "p_value"}
    assert keys <= set(data) and all(keys <= set(t) for t in data["by_tier"].values())
    assert len(data["uplift_ci"]) == 2


def test_cli_results_table_and_unknown_campaign(app_database, demo_anchor, capsys):
    _demo_campaign(app_database, demo_anchor - timedelta(days=5))
    assert cli.main(["campaign", "results", "Discount"]) == 0
    out = capsys.readouterr().out
    assert "converted = 'purchase' within 3 days" in out and "High tier" in out and "Overall" in out
    assert cli.main(["campaign", "results", "Discount", "--as-of", "yesterday"]) == 2
    assert capsys.readouterr().err.startswith("error: --as-of ")
    assert cli.main(["campaign", "results", "Nope"]) == 2
    assert capsys.readouterr().err == "error: no campaign named 'Nope'; `python -m core campaign list` shows them\n"


def test_events_only_data_without_sessions_measures_its_own_event(empty_engine):
    """A customer's export: one event type, no sessions, old dates, profiles with nothing but a platform
    (in-app messages reach a user on a known platform)."""
    import io

    from core.importer import import_events, import_users

    sent = datetime(2019, 3, 4, 12, 0)
    lines = ["user_id,event,timestamp,value"] + [
        f"c{i},order,{(sent + timedelta(hours=1 + i % 50)).isoformat()}Z,{10 + i % 7}" for i in range(0, 400, 3)
    ]
    lines += [f"c{i},order,{(sent - timedelta(days=30)).isoformat()}Z,5" for i in range(400)]
    profiles = "user_id,platform\n" + "\n".join(f"c{i},Web" for i in range(400))
    import_users(empty_engine, io.BytesIO(profiles.encode()))
    import_events(empty_engine, io.BytesIO("\n".join(lines).encode()))
    by_session = _launch(empty_engine, "Default event", sent)
    by_order = _launch(empty_engine, "Order event", sent, settings={"conversion_event": "order"})
    dispatch(empty_engine, until=sent)
    simulate_delivery(empty_engine)
    nothing = campaign_results(by_session, empty_engine, now=sent + timedelta(days=5)).as_json()
    assert nothing["conversion_event"] == "session" and nothing["audience"] == 400
    assert nothing["converted_treated"] + nothing["converted_control"] == 0
    assert nothing["verdict"] == "Nobody converted within the window yet (400 users)."
    orders = campaign_results(by_order, empty_engine, now=sent + timedelta(days=5)).as_json()
    assert orders["converted_treated"] + orders["converted_control"] == len(range(0, 400, 3))
    assert orders["revenue_per_user_treated"] is not None and orders["by_tier"] == {}
