"""Finding and driving Streamlit widgets in the browser, by label and data-testid (as Streamlit's
own e2e tests do). Every action waits for the app to finish the run it triggers."""

from __future__ import annotations

import re

from tests.browser.conftest import wait_for_app


def widget(page, testid: str, label: str, nth: int = 0):
    """The `nth` widget of this kind whose label is exactly `label`."""
    labelled = page.get_by_test_id("stWidgetLabel").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.get_by_test_id(testid).filter(has=labelled).nth(nth)


def metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").filter(has_text=label))
    return box.first.get_by_test_id("stMetricValue").inner_text().strip()


def number(text: str) -> int:
    """'1,234 users' -> 1234."""
    return int(re.search(r"[\d,]+", text).group().replace(",", ""))


def choose(page, label: str, option: str, nth: int = 0) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    _open_and_pick(page, widget(page, "stSelectbox", label, nth), option)
    wait_for_app(page)


def _open_and_pick(page, box, option: str, attempts: int = 3) -> None:
    """Open a dropdown and click `option`; a rerun that redraws the box can close the list
    just after it opened, so open it again when the option does not show."""
    wanted = page.get_by_role("option", name=option, exact=True)
    for attempt in range(attempts):
        box.click()
        try:
            wanted.wait_for(timeout=3_000)
        except Exception:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            wait_for_app(page)
            continue
        wanted.click()
        return


def selected(page, label: str, nth: int = 0) -> str:
    """The option a selectbox shows."""
    return widget(page, "stSelectbox", label, nth).get_by_role("combobox").input_value()


def tags(page, label: str, nth: int = 0) -> list[str]:
    """The options a multiselect holds."""
    box = widget(page, "stMultiSelect", label, nth)
    return [t.strip() for t in box.get_by_role("group", name="Selected values").locator("[data-tag]").all_inner_texts()]


def multi_choose(page, label: str, options: list[str], nth: int = 0) -> None:
    """Add `options` to the multiselect labelled `label`."""
    box = widget(page, "stMultiSelect", label, nth)
    for option in options:
        _open_and_pick(page, box, option)
        wait_for_app(page)
    page.keyboard.press("Escape")
    wait_for_app(page)


def fill(page, testid: str, label: str, value: str, nth: int = 0) -> None:
    """Type into a text input / text area / number input and commit it (Tab blurs it)."""
    field = widget(page, testid, label, nth).locator("input, textarea").first
    field.fill(value)
    field.press("Tab")
    wait_for_app(page)


def click(page, name: str, nth: int = 0) -> None:
    page.get_by_role("button", name=name, exact=True).nth(nth).click()
    wait_for_app(page)


def radio(page, label: str, option: str) -> None:
    group = widget(page, "stRadio", label)
    group.get_by_text(option, exact=True).click()
    wait_for_app(page)


def press(page, locator, *keys: str) -> None:
    """Focus `locator` and press `keys`, one at a time, each followed by the rerun it causes."""
    for key in keys:
        locator.focus()
        locator.press(key)
        wait_for_app(page)


def table(frame) -> list[dict[str, str]]:
    """The rows an st.dataframe shows, read from the grid's accessible table (the canvas's fallback)."""
    frame.scroll_into_view_if_needed()
    return frame.evaluate(
        """(el) => {
            const table = el.querySelector('table[role=grid]');
            const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
            return [...table.querySelectorAll('tbody tr')].map(tr =>
                Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.textContent.trim()])));
        }"""
    )
