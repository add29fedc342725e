"""Live drag: the score slider sizes a selection while the thumb moves, before anything is committed.

On Predictions the four figures, the bars, the label and the tier buttons follow the pointer; on
Segments the likelihood-score filter's slider sizes the whole segment. Releasing commits: the URL,
the page's own figures. The browser's arithmetic (score_slider.js) is run here for every
whole-score range and held to core's, number for number.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core import predictions as P
from core import segments
from core.db import get_engine
from core.segments.score_sizing import score_filter_sizing
from core.tiers import score_range_of
from pages.components.score_slider import LOG_SCALE_RATIO, readable_scale, tiers_payload
from tests.browser import ui
from tests.browser.conftest import screenshot, wait_for_app

SLIDER_JS = Path(__file__).resolve().parents[2] / "pages" / "components" / "score_slider.js"
RANGES = [(low, high) for low in range(101) for high in range(low, 101)]
TIER_SETS = [["Low"], ["Medium"], ["High"], ["Low", "Medium"], ["Medium", "High"], ["Low", "Medium", "High"]]


@pytest.fixture(scope="module")
def engine(browser_database):
    return get_engine(browser_database)


@pytest.fixture(scope="module")
def full(engine) -> P.PredictionInfo:
    return next(p for p in P.list_predictions(engine) if p.kind == "full")


def _run_slider_js(page, body: str, *args):
    """Evaluate `body` with score_slider.js's pure functions in scope (its default export renamed)."""
    source = SLIDER_JS.read_text(encoding="utf-8").replace("export default function", "function mount")
    return page.evaluate(
        "([source, body, args]) => new Function(source + '\\nreturn (' + body + ')(...arguments);')(...args)",
        [source, body, list(args)],
    )


# --- the browser's arithmetic equals core's -------------------------------------------------------


def test_every_whole_score_range_gives_core_figures_and_bars_in_the_browser(page, engine, full):
    distribution = P.score_distribution(engine, full.id)
    steps = distribution.score_steps().to_payload()
    selections = [{"min": low, "max": high, "categories": []} for low, high in RANGES]
    selections += [{"min": 0, "max": 100, "categories": tiers} for tiers in TIER_SETS]
    page.set_content("<html><body></body></html>")
    computed = _run_slider_js(
        page,
        """(steps, tiers, selections, ratio) => selections.map((s) => ({
            figures: predictionFigures(steps, tiers, s),
            counted: bars(steps, tiers, s).map((bar) => bar.counted),
            users: bars(steps, tiers, s).map((bar) => bar.users),
            log: logScale({steps, tiers, selection: s, log_scale: "auto", log_ratio: ratio}),
        }))""",
        steps,
        tiers_payload(),
        selections,
        LOG_SCALE_RATIO,
    )
    assert len(computed) == len(selections)
    for selection, browser in zip(selections, computed, strict=True):
        args = (selection["min"], selection["max"], tuple(selection["categories"]))
        assert browser["figures"] == dataclasses.asdict(distribution.summary(*args)), selection
        histogram = distribution.histogram(*args)
        assert browser["counted"] == [bar["counted"] for bar in histogram], selection
        assert browser["users"] == [bar["users"] for bar in histogram], selection
        assert browser["log"] is readable_scale(histogram), selection


def test_every_whole_score_range_sizes_the_segment_as_core_does(page, engine, full):
    definition = {
        "version": segments.VERSION,
        "match": "all",
        "groups": [
            {
                "match": "all",
                "filters": [
                    {"type": "likelihood_score", "prediction": full.id, "min": 40, "max": 100},
                    {"type": "platform", "values": ["iOS"]},
                ],
            }
        ],
        "exclude": [{"match": "all", "filters": [{"type": "country", "values": ["US"]}]}],
    }
    sizing = score_filter_sizing(segments.parse_definition(definition), ("groups", 0, 0), engine)
    page.set_content("<html><body></body></html>")
    sizes = _run_slider_js(
        page,
        "(sizing, ranges) => ranges.map(([min, max]) => segmentSize(sizing, {min, max, categories: []}))",
        sizing.to_payload(),
        RANGES,
    )
    assert sizes == [sizing.size(low, high) for low, high in RANGES]
    for low, high in [(0, 100), (40, 100), (63, 88), (75, 75)]:  # and core's sizing is the count
        changed = {
            **definition,
            "groups": [{**definition["groups"][0], "filters": list(definition["groups"][0]["filters"])}],
        }
        changed["groups"][0]["filters"][0] = {**changed["groups"][0]["filters"][0], "min": low, "max": high}
        assert sizing.size(low, high) == segments.count(segments.parse_definition(changed), engine)


# --- dragging in the page ----------------------------------------------------------------------


def _thumb(page, label: str, end: str):
    return page.get_by_role("slider", name=f"{label}: {end} score")


def _x_of(page, score: int, nth: int = 0) -> float:
    track = page.locator(".score-slider .track").nth(nth).bounding_box()
    return track["x"] + track["width"] * score / 100


def _press_and_move(page, thumb, to_x: float) -> None:
    box = thumb.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(to_x, box["y"] + box["height"] / 2, steps=8)


def _bar_states(page) -> list[str]:
    return page.locator(".score-slider").first.evaluate(
        "(el) => [...el.querySelectorAll('.bar')].map((bar) => bar.dataset.state)"
    )


def _expected_states(histogram: list[dict]) -> list[str]:
    """Highlighted when, and only when, its users are counted; partial when only some are."""
    return ["out" if not b["counted"] else "in" if b["counted"] == b["users"] else "partial" for b in histogram]


def _figure(page, testid: str) -> str:
    return page.get_by_test_id(testid).locator(".figure-value").inner_text().strip()


def _panel(page) -> dict[str, str]:
    return {name: _figure(page, f"figure-{name}") for name in ("selected", "captured", "not-expected", "rate")}


def _expected_panel(figures) -> dict[str, str]:
    return {
        "selected": f"{figures.selected:,}",
        "captured": f"{figures.expected_captured:,.0f}",
        "not-expected": f"{figures.not_expected_targeted:,.0f}",
        "rate": f"{figures.conversion_rate:.1%}",
    }


def test_dragging_on_predictions_updates_the_panel_before_release_and_commits_on_release(page, engine, full):
    distribution = P.score_distribution(engine, full.id)
    page.goto("/")
    wait_for_app(page)
    label = page.get_by_test_id("score-slider-label")
    high_button = page.locator(".score-slider button[data-tier=High]")
    assert label.inner_text() == "Selection: High likelihood"
    assert high_button.get_attribute("aria-pressed") == "true"
    assert _panel(page) == _expected_panel(distribution.summary(categories=("High",)))

    _press_and_move(page, _thumb(page, "Score range", "lowest"), _x_of(page, 40))
    # Held down: the browser alone has moved on; nothing is committed yet.
    assert _thumb(page, "Score range", "lowest").get_attribute("aria-valuenow") == "40"
    assert label.inner_text() == "Selection: scores 40–100"
    assert high_button.get_attribute("aria-pressed") == "false"
    assert _panel(page) == _expected_panel(distribution.summary(40, 100))
    assert "categories=High" in page.url and "min=40" not in page.url
    screenshot(page, "live-drag-predictions-mid-drag")

    page.mouse.up()
    wait_for_app(page)
    assert "min=40" in page.url and "max=100" in page.url
    assert _panel(page) == _expected_panel(distribution.summary(40, 100))
    assert _bar_states(page) == _expected_states(distribution.histogram(40, 100))

    # The keyboard moves a thumb a step, a page, or to an end, and commits each move.
    high_thumb = _thumb(page, "Score range", "highest")
    ui.press(page, high_thumb, "ArrowLeft", "PageDown")
    assert high_thumb.get_attribute("aria-valuenow") == "89"
    assert "max=89" in page.url
    assert _panel(page) == _expected_panel(distribution.summary(40, 89))
    assert _bar_states(page) == _expected_states(distribution.histogram(40, 89))
    ui.press(page, high_thumb, "End")
    ui.press(page, _thumb(page, "Score range", "lowest"), "Home")
    assert "categories=" in page.url and "min=" not in page.url  # 0-100 is exactly the three tiers
    assert label.inner_text() == "Selection: Low, Medium, High likelihood"


def test_a_touch_drag_moves_the_thumb_too(page, engine, full):
    page.goto(f"/?prediction={full.id}&min=20&max=60")
    wait_for_app(page)
    thumb = _thumb(page, "Score range", "highest")
    box = thumb.bounding_box()
    y = box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)
    cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": box["x"] + box["width"] / 2, "y": y}]}
    )
    for score in (62, 66, 70):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": _x_of(page, score), "y": y}]})
    expect(thumb).to_have_attribute("aria-valuenow", "70")  # touch moves arrive a frame later
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for_app(page)
    assert "max=70" in page.url


def test_dragging_the_segments_score_filter_sizes_the_whole_segment_live(page, engine, full):
    page.goto(f"/segments?prediction={full.id}&min=40&max=100")
    page.get_by_role("heading", name="Segments").wait_for()
    wait_for_app(page)
    ui.choose(page, "Filter", "Platform")
    ui.click(page, "Add filter")
    assert ui.tags(page, "Platform") == ["iOS"]
    score = {"type": "likelihood_score", "prediction": full.id, "min": 40, "max": 100}
    definition = segments.definition_of(score, {"type": "platform", "values": ["iOS"]})
    sizing = score_filter_sizing(definition, ("groups", 0, 0), engine)
    before = segments.count(definition, engine)
    assert ui.number(ui.metric(page, "Audience")) == before == sizing.size(40, 100)
    size = page.get_by_test_id("score-slider-segment-size").locator(".figure-value")
    assert ui.number(size.inner_text()) == before

    _press_and_move(page, _thumb(page, "Likelihood score", "highest"), _x_of(page, 80))
    assert _thumb(page, "Likelihood score", "highest").get_attribute("aria-valuenow") == "80"
    assert ui.number(size.inner_text()) == sizing.size(40, 80) != before
    assert ui.number(ui.metric(page, "Audience")) == before  # the server has not been asked yet
    screenshot(page, "live-drag-segments-mid-drag")

    page.mouse.up()
    wait_for_app(page)
    after = segments.count(
        segments.definition_of({**score, "max": 80}, {"type": "platform", "values": ["iOS"]}), engine
    )
    assert ui.number(ui.metric(page, "Audience")) == after == sizing.size(40, 80)
    assert ui.number(size.inner_text()) == after


def test_the_pressed_tiers_and_the_label_never_contradict_the_range(page, engine, full):
    """A hand-set range presses tiers only when it is exactly those tiers (so both count the same
    users), and pressing tiers keeps them one run whose span is the range the slider shows."""
    steps = P.score_distribution(engine, full.id).score_steps().to_payload()
    page.set_content("<html><body></body></html>")
    checks = _run_slider_js(
        page,
        """(steps, tiers, ranges) => ({
            ranges: ranges.map(([min, max]) => {
                const categories = categoriesOfRange(tiers, {min, max, categories: []});
                const asRange = predictionFigures(steps, tiers, {min, max, categories: []});
                const asTiers = categories.length ? predictionFigures(steps, tiers, {min, max, categories}) : asRange;
                return {categories, same: JSON.stringify(asRange) === JSON.stringify(asTiers),
                        label: selectionLabel({min, max, categories})};
            }),
            toggles: [[], ["Low"], ["Medium"], ["High"], ["Low", "Medium"], ["Medium", "High"], ["Low", "Medium", "High"]]
                .flatMap((pressed) => tiers.map((t) => {
                    const after = toggleTier(tiers, pressed, t.name);
                    return {pressed, tier: t.name, after, range: after.length ? rangeOfTiers(tiers, after) : null};
                })),
        })""",
        steps,
        tiers_payload(),
        RANGES,
    )
    names = ["Low", "Medium", "High"]
    for (low, high), check in zip(RANGES, checks["ranges"], strict=True):
        assert check["same"], (low, high)
        expected = names[names.index(check["categories"][0]) :] if check["categories"] else []
        assert check["categories"] == expected
        assert bool(check["categories"]) == (high == 100 and low in (0, 50, 75)), (low, high)
        assert check["label"].startswith("Selection: scores") != bool(check["categories"])
    for toggle in checks["toggles"]:
        after = toggle["after"]
        assert after == names[names.index(after[0]) : names.index(after[-1]) + 1] if after else True, toggle
        if after:  # the slider shows the span of the pressed run
            assert toggle["range"] == {"min": int(score_range_of(after)[0]), "max": int(score_range_of(after)[1])}
