"""Browser journeys: the real app (`streamlit run app.py`) driven in Debian's headless Chromium.

Each test session seeds a temporary database with the project's own commands, starts the app on
a free port, waits for its health check, and hands tests a Playwright page. A failing test leaves
a screenshot and the app's log in test-artifacts/.

Without Chromium the tests are skipped with a clear reason, unless REQUIRE_BROWSER=1 (set by
.ci/run), in which case they fail: CI must always run them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BROWSER_USERS = 3_000


def pytest_collection_modifyitems(config, items):
    browser_items = [item for item in items if "tests/browser" in str(item.fspath)]
    for item in browser_items:
        item.add_marker(pytest.mark.browser)
    if CHROMIUM:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        return  # the fixture fails loudly instead
    skip = pytest.mark.skip(reason="Chromium is not installed (apt-get install chromium): browser journeys skipped")
    for item in browser_items:
        item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], env: dict) -> None:
    subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, check=True, capture_output=True)


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """The real app on a free port, against a fresh demo database; yields its base URL."""
    if not CHROMIUM:
        pytest.fail("REQUIRE_BROWSER=1 but Chromium is not installed: install Debian's chromium package")
    ARTIFACTS.mkdir(exist_ok=True)
    database = tmp_path_factory.mktemp("browser") / "app.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    _run(["seed", "--users", str(BROWSER_USERS), "--seed", "11"], env)
    _run(["setup"], env)  # trains the demo predictions
    port = _free_port()
    log = open(ARTIFACTS / "app.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.terminate()
            pytest.fail(f"the app did not start; see {ARTIFACTS / 'app.log'}")
        time.sleep(0.3)
    yield base
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, live_app, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, base_url=live_app)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


def wait_for_app(page, settle_ms: int = 300) -> None:
    """Wait until Streamlit has finished running the script (no 'Running' indicator)."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_timeout(settle_ms)
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            const running = document.querySelector('[data-testid="stStatusWidget"] button, [data-testid="stStatusWidgetRunningIcon"]');
            return app && !running && app.getAttribute('data-test-script-state') !== 'running';
        }""",
        timeout=60_000,
    )
    page.wait_for_timeout(settle_ms)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
