"""CSV import: good files land exactly; every kind of bad file is refused with file, line and column."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from sqlalchemy import func, select

from core import models
from core.db import data_version, session_scope
from core.errors import UserError
from core.importer import import_events, import_users


def _write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(models.User)),
            session.scalar(select(func.count()).select_from(models.Event)),
            data_version(engine),
        )


def _user(engine, external_id: str) -> models.User:
    with session_scope(engine) as session:
        return session.scalars(select(models.User).where(models.User.external_id == external_id)).one()


USERS_CSV = """user_id,first_name,email,platform,country,language,timezone,push_opt_in,email_opt_in,created_at
a1,Ana,ana@example.com,ios,fr,fr,Europe/Paris,true,yes,2026-01-15T10:00:00+01:00
a2,Bo,,Android,US,en,America/Los_Angeles,0,false,2026-02-01
a3,,,web,,,,,,
"""

EVENTS_CSV = """user_id,event,timestamp,value,properties
a1,session,2026-03-01T18:45:00Z,,
a1,purchase,2026-03-01T19:00:00+02:00,42.5,"{""sku"": ""X1""}"
new-user,session,2026-03-02 08:00:00,,
"""


def test_users_import_creates_users_with_parsed_values(empty_engine, tmp_path):
    result = import_users(empty_engine, _write(tmp_path, "users.csv", USERS_CSV))
    assert (result.rows, result.created_users, result.updated_users) == (3, 3, 0)
    ana = _user(empty_engine, "a1")
    assert (ana.platform, ana.country, ana.timezone, ana.push_opt_in, ana.email_opt_in) == (
        "iOS",
        "FR",
        "Europe/Paris",
        True,
        True,
    )
    assert ana.created_at == datetime(2026, 1, 15, 9, 0)  # converted to UTC
    assert 0 <= ana.random_bucket < 10_000
    bo = _user(empty_engine, "a2")
    assert (bo.email, bo.push_opt_in, bo.created_at) == (None, False, datetime(2026, 2, 1))
    assert _user(empty_engine, "a3").platform == "Web"


def test_reimporting_users_updates_them(empty_engine, tmp_path):
    import_users(empty_engine, _write(tmp_path, "users.csv", USERS_CSV))
    result = import_users(empty_engine, _write(tmp_path, "again.csv", "user_id,timezone\na1,Asia/Tokyo\n"))
    assert (result.created_users, result.updated_users) == (0, 1)
    ana = _user(empty_engine, "a1")
    assert (ana.timezone, ana.first_name) == ("Asia/Tokyo", "Ana")


def test_events_import_creates_missing_users_and_refreshes_facts(empty_engine, tmp_path):
    import_users(empty_engine, _write(tmp_path, "users.csv", USERS_CSV))
    version = data_version(empty_engine)
    result = import_events(empty_engine, _write(tmp_path, "events.csv", EVENTS_CSV))
    assert (result.rows, result.created_users) == (3, 1)
    assert data_version(empty_engine) > version
    with session_scope(empty_engine) as session:
        purchase = session.scalars(select(models.Event).where(models.Event.name == "purchase")).one()
        assert purchase.ts == datetime(2026, 3, 1, 17, 0)
        assert purchase.value == 42.5
        assert purchase.properties == {"sku": "X1"}
        ana = _user(empty_engine, "a1")
        facts = session.get(models.UserFacts, ana.id)
        assert (facts.session_count, facts.purchase_count, facts.total_spent) == (1, 1, 42.5)
        assert facts.last_used_at == datetime(2026, 3, 1, 18, 45)
    assert _user(empty_engine, "new-user").platform is None


def test_an_uploaded_file_object_imports_like_a_path(empty_engine):
    upload = io.BytesIO(USERS_CSV.encode("utf-8-sig"))
    upload.name = "users.csv"
    assert import_users(empty_engine, upload).created_users == 3


BAD_USERS = [
    ("empty.csv", "", "empty.csv: the file is empty"),
    ("header.csv", "user_id,first_name\n", "there are no rows"),
    ("missing.csv", "first_name\nAna\n", "line 1: missing required column 'user_id'"),
    ("unknown.csv", "user_id,nickname\na,b\n", "line 1: unknown column 'nickname'"),
    (
        "zone.csv",
        "user_id,timezone\na,Europe/Paris\nb,Mars/Olympus\n",
        "zone.csv, line 3, column 'timezone': 'Mars/Olympus' is not an IANA time zone",
    ),
    ("dup.csv", "user_id\na\nb\na\n", "dup.csv, line 4, column 'user_id': duplicate user id 'a' (first on line 2)"),
    ("bool.csv", "user_id,push_opt_in\na,maybe\n", "line 2, column 'push_opt_in': 'maybe' is not true/false"),
    (
        "when.csv",
        "user_id,created_at\na,yesterday\n",
        "line 2, column 'created_at': 'yesterday' is not an ISO 8601 timestamp",
    ),
    (
        "platform.csv",
        "user_id,platform\na,Symbian\n",
        "line 2, column 'platform': 'Symbian' is not one of iOS, Android, Web",
    ),
    ("email.csv", "user_id,email\na,not-an-email\n", "line 2, column 'email'"),
    ("width.csv", "user_id,first_name\na,Ana,extra\n", "width.csv, line 2: has 3 fields, the header has 2"),
    (
        "long.csv",
        "user_id,first_name\na," + "x" * 10_000 + "\n",
        "line 2, column 'first_name': is 10,000 characters long",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_USERS, ids=[case[0] for case in BAD_USERS])
def test_bad_users_files_are_refused_and_change_nothing(demo_engine, tmp_path, name, content, message):
    before = _counts(demo_engine)
    with pytest.raises(UserError) as caught:
        import_users(demo_engine, _write(tmp_path, name, content))
    assert message in str(caught.value)
    assert _counts(demo_engine) == before


BAD_EVENTS = [
    (
        "stamp.csv",
        "user_id,event,timestamp\na,session,2026-13-01\n",
        "stamp.csv, line 2, column 'timestamp': '2026-13-01' is not an ISO 8601 timestamp",
    ),
    (
        "value.csv",
        "user_id,event,timestamp,value\na,purchase,2026-01-01,ten\n",
        "line 2, column 'value': 'ten' is not a number",
    ),
    (
        "nan.csv",
        "user_id,event,timestamp,value\na,purchase,2026-01-01,nan\n",
        "line 2, column 'value': 'nan' is not a number",
    ),
    (
        "json.csv",
        "user_id,event,timestamp,properties\na,view,2026-01-01,{oops\n",
        "line 2, column 'properties': is not valid JSON",
    ),
    (
        "array.csv",
        "user_id,event,timestamp,properties\na,view,2026-01-01,[1]\n",
        "line 2, column 'properties': must be a JSON object",
    ),
    ("noevent.csv", "user_id,event,timestamp\na,,2026-01-01\n", "line 2, column 'event': is empty"),
    ("required.csv", "user_id,event\na,session\n", "line 1: missing required column 'timestamp'"),
    ("latin1.csv", "user_id,event,timestamp\nJos\xe9,session,2026-01-01\n".encode("latin-1"), "not UTF-8 text"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_EVENTS, ids=[case[0] for case in BAD_EVENTS])
def test_bad_events_files_are_refused_and_change_nothing(demo_engine, tmp_path, name, content, message):
    before = _counts(demo_engine)
    with pytest.raises(UserError) as caught:
        import_events(demo_engine, _write(tmp_path, name, content))
    assert message in str(caught.value)
    assert "nothing was imported" in str(caught.value) or name in ("required.csv", "latin1.csv")
    assert _counts(demo_engine) == before


def test_an_error_late_in_a_long_file_still_writes_nothing(demo_engine, tmp_path):
    rows = [f"x{i},session,2026-01-01T00:00:00Z" for i in range(20_000)]
    rows.append("x1,session,not a time")
    before = _counts(demo_engine)
    with pytest.raises(UserError, match="line 20002, column 'timestamp'"):
        import_events(demo_engine, _write(tmp_path, "late.csv", "user_id,event,timestamp\n" + "\n".join(rows) + "\n"))
    assert _counts(demo_engine) == before


def test_many_errors_are_summarised(demo_engine, tmp_path):
    rows = "".join(f"u{i},session,bad\n" for i in range(25))
    with pytest.raises(UserError) as caught:
        import_events(demo_engine, _write(tmp_path, "many.csv", "user_id,event,timestamp\n" + rows))
    text = str(caught.value)
    assert text.count("is not an ISO 8601 timestamp") == 10
    assert "(and 15 more problems)" in text
