"""Browser journeys: the real app (`streamlit run server.py`) driven in Debian's headless Chromium.

Each test session seeds a temporary database with the project's own commands, starts the app on
a free port, waits for its health check, and hands tests a Playwright page. A failing test leaves
a screenshot and the app's log in test-artifacts/.

Without Chromium the tests are skipped with a clear reason, unless REQUIRE_BROWSER=1 (set by
.ci/run), in which case they fail: CI must always run them.

With LIKELY_SCREENSHOTS=<folder> (`make screenshots`), the few screens the README shows are also
saved there as small PNGs.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.worker_commands import app_command

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
VIEWPORT = {"width": 1280, "height": 900}
README_SHOTS = os.environ.get("LIKELY_SCREENSHOTS")  # a folder, relative to the repository root
UNCAUGHT = "Uncaught app execution"  # what Streamlit logs when a page raised
_app_logs: list[Path] = []  # every app started in this session, for the log check after each test


@dataclass(frozen=True)
class LiveApp:
    url: str  # e.g. http://localhost:53121
    database_url: str  # the app's DATABASE_URL, for checking what it shows against core
    log: Path


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


def wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path, seconds: float = 90) -> None:
    """Return once the server at `base` answers its health check; fail if `process` ends or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            pytest.fail(f"the app did not start; see {log_path}")
        time.sleep(0.3)


def start_app(database_url: str, log_name: str):
    """Start the web server (server.py: the app and its download route) on a free port; yields a
    LiveApp once /_stcore/health says ok."""
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / log_name
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    _app_logs.append(log_path)
    port = _free_port()
    server = subprocess.Popen(
        app_command(
            port,
            "localhost",
            *("--server.headless", "true", "--server.fileWatcherType", "none"),
            *("--browser.gatherUsageStats", "false"),
        ),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://localhost:{port}"
    try:
        wait_until_healthy(base, server, log_path)
        yield LiveApp(base, database_url, log_path)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def browser_database(tmp_path_factory) -> str:
    """A fresh demo database made with the project's own commands; returns its DATABASE_URL."""
    if not CHROMIUM:
        pytest.fail("REQUIRE_BROWSER=1 but Chromium is not installed: install Debian's chromium package")
    database = tmp_path_factory.mktemp("browser") / "app.db"
    url = f"sqlite:///{database}"
    env = {**os.environ, "DATABASE_URL": url}
    _run(["seed", "--users", str(BROWSER_USERS), "--seed", "11"], env)
    _run(["setup"], env)  # trains the demo predictions
    return url


@pytest.fixture(scope="session")
def live_app(browser_database):
    """The real app on a free port, shared by the journeys (each makes uniquely named things)."""
    yield from start_app(browser_database, "app.log")


@pytest.fixture(autouse=True)
def app_log_stays_clean():
    """Fail a journey when an app logged an uncaught exception while it ran (a user saw a traceback)."""
    sizes = {path: path.stat().st_size for path in _app_logs if path.exists()}
    yield
    for path in [p for p in _app_logs if p.exists()]:
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(sizes.get(path, 0))
            logged = handle.read()
        if UNCAUGHT in logged:
            start = logged.index(UNCAUGHT)
            pytest.fail(f"{path.name} logged an uncaught exception:\n{logged[start : start + 2000]}")


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


def open_page(browser, app: LiveApp, request):
    """A new browser session (its own Streamlit session) on `app`; screenshots itself on failure."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, base_url=app.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        try:
            screenshot(page, f"FAILED-{request.node.name}")
        except Exception as error:  # the page may be gone; the test's own error matters more
            print(f"no failure screenshot: {error}")
    context.close()


@pytest.fixture
def page(browser, live_app, request):
    yield from open_page(browser, live_app, request)


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script (or a fragment) and the page is idle.

    Like Streamlit's own e2e tests: give a just-triggered rerun a moment to start, then wait for
    the app element to say it is connected and `notRunning`, twice in a row a short while apart
    (a widget change can start a second run right after the first, e.g. st.switch_page).
    """
    page.wait_for_timeout(250)
    idle = "[data-testid='stApp'][data-test-connection-state='CONNECTED'][data-test-script-state='notRunning']"
    for _ in range(2):
        page.wait_for_selector(idle, state="attached", timeout=timeout_ms)
        page.wait_for_timeout(150)
    page.wait_for_selector(idle, state="attached", timeout=timeout_ms)


def wait_for_lazy_elements(page, timeout_ms: int = 30_000) -> None:
    """Wait until every element on the screen has its code: Streamlit loads a grid's or a chart's
    lazily and shows a skeleton in its place meanwhile, so an idle app may not have drawn it yet."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stMain] [data-testid=stSkeleton]')", timeout=timeout_ms
    )


def full_height(page, cap: int = 8_000) -> int:
    """The height the viewport needs to show the whole page (Streamlit scrolls inside stMain)."""
    return min(
        cap,
        page.evaluate(
            "() => { const m = document.querySelector('[data-testid=stMain]'); return m ? m.scrollHeight : 0 }"
        )
        or VIEWPORT["height"],
    )


def screenshot(page, name: str, readme: tuple | None = None) -> Path:
    """A whole-page screenshot in test-artifacts/ (git-ignored).

    With `readme` = (top locator, bottom locator) and LIKELY_SCREENSHOTS set, the main area from the
    top of one to the bottom of the other is also saved as `<LIKELY_SCREENSHOTS>/<name>.png`,
    palette-compressed: the README's images.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], full_height(page))})
    try:
        page.wait_for_timeout(400)  # charts redraw for the new size
        page.screenshot(path=str(path))
        if readme is not None and README_SHOTS:
            folder = ROOT / README_SHOTS
            folder.mkdir(parents=True, exist_ok=True)
            _save_small_png(page.screenshot(clip=_region(page, *readme)), folder / f"{name}.png")
    finally:
        page.set_viewport_size(size)
    return path


def _region(page, top, bottom, margin: int = 24) -> dict:
    """The content column (without stMain's side padding) from `top` down to `bottom`."""
    main = page.get_by_test_id("stMain").bounding_box()
    first, last = top.bounding_box(), bottom.bounding_box()
    x = max(main["x"], first["x"] - margin)
    y = max(0, first["y"] - margin)
    width = main["width"] - 2 * (x - main["x"])
    return {"x": x, "y": y, "width": width, "height": last["y"] + last["height"] + margin - y}


def _save_small_png(png: bytes, target: Path) -> None:
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with Streamlit; without it keep Chromium's PNG
        target.write_bytes(png)
        return
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(target, optimize=True)
