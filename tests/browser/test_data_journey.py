"""Journey: an analyst checks what the database holds and imports a CSV in the browser."""

from __future__ import annotations

from tests.browser import ui
from tests.browser.conftest import ROOT, screenshot, wait_for_app


def _metric(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]', has_text=label)
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def test_data_page_shows_counts_and_imports_a_csv(page):
    page.goto("/data")
    wait_for_app(page)
    assert _metric(page, "Users") == "3,000"
    ui.radio(page, "What are you importing?", "users")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
        str(ROOT / "data" / "sample_users.csv")
    )
    wait_for_app(page)
    page.get_by_role("button", name="Import users").click()
    wait_for_app(page)
    page.get_by_text("Imported 4 users rows (4 new users).").wait_for()
    page.reload()
    wait_for_app(page)
    assert _metric(page, "Users") == "3,004"
    screenshot(page, "data")
