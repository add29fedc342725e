"""The app as a whole: every page renders, the real server answers, the CLI works end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main as cli_main
from core.downloads import new_token
from core.worker_commands import app_command
from pages.download_link import ENDED

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["pages/predictions.py", "pages/segments.py", "pages/campaigns.py", "pages/data.py"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_an_exception(app_database, page):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_database(empty_app, page):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_data_page_shows_what_the_database_holds(app_database):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == "3,000"
    assert int(metrics["Events"].replace(",", "")) > 30_000


def test_data_page_refuses_regeneration_without_confirmation(app_database):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    submit = [b for b in at.get("button") if b.label == "Regenerate demo data"]
    assert submit, "the regenerate button is missing"
    submit[0].click().run()
    assert any("type REPLACE to confirm" in e.value for e in at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == "3,000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_real_server_answers_its_health_check(app_database):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": app_database.url.render_as_string(hide_password=False)}
    server = subprocess.Popen(
        app_command(port, "localhost", "--server.headless", "true"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(0.3)
        assert body == "ok"
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as response:
            assert response.status == 200
            assert "<html" in response.read().decode().lower()
        # server.py mounts the download route beside the app: an unknown link gets its one-line answer
        with pytest.raises(urllib.error.HTTPError) as ended:
            urllib.request.urlopen(f"http://localhost:{port}/downloads/{new_token()}/segment.csv", timeout=5)
        assert (ended.value.code, ended.value.read().decode()) == (404, ENDED)
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_cli_seed_and_import_report_what_they_did(empty_app, tmp_path, capsys):
    assert cli_main(["seed", "--users", "200", "--seed", "5", "--anchor", "2026-03-01"]) == 0
    assert "seeded 200 users" in capsys.readouterr().out
    events = tmp_path / "events.csv"
    events.write_text("user_id,event,timestamp\nu0000001,session,2026-02-28T10:00:00Z\nzz,session,2026-02-28\n")
    assert cli_main(["import", "events", str(events)]) == 0
    assert "imported 2 events rows (1 new users)" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,event,timestamp\nzz,session,soon\n")
    assert cli_main(["import", "events", str(bad)]) == 2
    assert "bad.csv, line 2, column 'timestamp'" in capsys.readouterr().err


def test_setup_seeds_only_an_empty_database(app_database, capsys):
    assert cli_main(["setup"]) == 0
    assert "nothing to generate" in capsys.readouterr().err


def test_data_page_sets_the_company_time_zone(app_database):
    from core.campaigns import company_timezone

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    zone_box = next(s for s in at.selectbox if s.label == "Company time zone")
    assert zone_box.value == "UTC"
    zone_box.select("Europe/Paris").run()
    next(b for b in at.button if b.label == "Save time zone").click().run()
    assert company_timezone(app_database) == "Europe/Paris"
    assert any("Europe/Paris" in s.value for s in at.success)
