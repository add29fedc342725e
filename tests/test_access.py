"""Access: localhost only by default; a login wall whenever [auth] is configured."""

from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def test_server_listens_on_localhost_only_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"


def test_no_secrets_are_committed():
    assert not (ROOT / ".streamlit" / "secrets.toml").exists()
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text()


def test_with_auth_configured_nothing_shows_before_login(app_database):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "test-secret",
        "client_id": "likely",
        "client_secret": "secret",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
    }
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Likely"]
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.metric  # no page ran


def test_without_auth_the_app_opens_directly(app_database):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert "Log in" not in [b.label for b in at.button]
