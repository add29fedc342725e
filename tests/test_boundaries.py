"""Hostile input at every boundary: one line saying what is wrong and where, exit 2, nothing changed.

Each table is one class of input, run through the command line as a user would. Every case
asserts the three things a refusal owes the user: the one-line message, the exit code, and
the database unchanged row for row (or, for a file that is not ours, byte for byte). The suite
runs on SQLite and, with LIKELY_TEST_POSTGRES set, on PostgreSQL.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests import boundary_fixtures
from tests.boundary_fixtures import file_digest, run_cli, snapshot
from tests.conftest import POSTGRES_URL

small_app = boundary_fixtures.small_app  # the fixture, shared with the property tests
MISSING = "/nonexistent-folder-for-likely-tests"
EVERYONE = {"version": 1, "match": "all", "groups": [], "exclude": []}
# JSON nested 40 deep: more than any definition needs, less than would crash a naive parser.
DEEP = "[" * 40 + "1" + "]" * 40


def _fill(args: list[str], tmp_path: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in args]


# --- command-line arguments ---------------------------------------------------------------------

ARGUMENTS = [
    (["seed", "--users", "-5"], "argument --users: a count must be from 1 to 100,000,000, not -5"),
    (["seed", "--users", "0"], "argument --users: a count must be from 1 to 100,000,000, not 0"),
    (["seed", "--users", "many"], "argument --users: 'many' is not a whole number"),
    (["seed", "--seed", "-1"], "argument --seed: a random seed must be from 0 to 4,294,967,295, not -1"),
    (["setup", "--users", "10000000000000"], "argument --users: a count must be from 1 to 100,000,000"),
    (["seed", "--anchor", "0001-01-01"], "argument --anchor: '0001-01-01' is outside the supported range"),
    (["segment", "count", "Everyone", "--now", "0001-01-01"], "argument --now: '0001-01-01' is outside"),
    (["segment", "count", "Everyone", "--now", "2199-12-31T23:00-05:00"], "argument --now: '2199-12-31T23:00-05:00'"),
    (["segment", "count", "Everyone", "--now", "yesterday"], "argument --now: 'yesterday' is not an ISO 8601 time"),
    (["predict", "--event", "purchase", "--window-days", "0"], "argument --window-days: --window-days must be from 1"),
    (["predict", "--event", "purchase", "--window-days", "7", "--as-of", "1899-12-31"], "argument --as-of:"),
    (["dispatch", "--campaign", "99999999999999999999"], "argument --campaign: an id must be from 1"),
    (["dispatch", "--campaign", "-3"], "argument --campaign: an id must be from 1"),
    (["bench", "--repeat", "0"], "argument --repeat: a count must be from 1"),
    (["bench-slider", "--moves", "-1"], "argument --moves: a count must be from 1"),
    (["segment", "export", "Everyone", "-o", f"{MISSING}/x.csv"], f"the folder {MISSING} does not exist"),
    (["segment", "export", "Everyone", "-o", "{tmp}"], "is a folder; give a file name"),
    (["scores", "1", "-o", f"{MISSING}/scores.csv"], f"the folder {MISSING} does not exist"),
]


@pytest.mark.parametrize(("args", "message"), ARGUMENTS, ids=[" ".join(a[:3]) for a, _ in ARGUMENTS])
def test_bad_arguments_are_refused_before_anything_runs(small_app, capsys, tmp_path, args, message):
    before = snapshot(small_app)
    outcome = run_cli(_fill(args, tmp_path), capsys)
    assert outcome.code == 2
    assert outcome.error_line.startswith("error: ") and message in outcome.error_line
    assert snapshot(small_app) == before


REFUSALS = [
    (["segment", "count", "99999999999999999999999"], "no saved segment named or numbered '99999999999999999999999'"),
    (["segment", "show", "18446744073709551617"], "no saved segment named or numbered"),
    (["scores", "99999999999999999999", "-o", "{tmp}/s.csv"], "no prediction named or numbered '99999999999999999999'"),
    (["import", "users", f"{MISSING}/users.csv"], f"{MISSING}/users.csv: No such file or directory"),
    (["import", "events", "{tmp}"], "Is a directory"),
    (["segment", "save", f"{MISSING}/segment.json"], "no such file"),
    (["dispatch", "--until", "0001-01-01"], "--until '0001-01-01' is outside the supported range"),
    (["predict", "--event", "purchase", "--window-days", "7", "--audience", DEEP], "--audience nests deeper than 10"),
    (["predict", "--event", "purchase", "--window-days", "7", "--audience", "[1e999]"], "1e999, too large to store"),
    (["predict", "--event", "purchase", "--window-days", "7", "--audience", '{"a": NaN}'], "holds NaN"),
]


@pytest.mark.parametrize(("args", "message"), REFUSALS, ids=[" ".join(a[:2]) + "…" for a, _ in REFUSALS])
def test_commands_refuse_bad_values_with_one_line(small_app, capsys, tmp_path, args, message):
    before = snapshot(small_app)
    outcome = run_cli(_fill(args, tmp_path), capsys)
    assert outcome.code == 2
    assert message in outcome.error_line
    assert snapshot(small_app) == before


def test_an_unexpected_failure_prints_one_line_naming_a_log_with_the_traceback(
    small_app, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("LIKELY_LOG_DIR", str(tmp_path / "logs"))

    def broken(*_args, **_kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("core.segments.list_segments", broken)
    url = small_app.url.render_as_string(hide_password=False)
    outcome = run_cli(["--database-url", url, "segment", "list"], capsys)
    assert outcome.code == 1
    line = outcome.error_line
    assert line.startswith("error: unexpected failure (KeyError); the details are in ")
    log = Path(line.rsplit(" ", 1)[1])
    assert log.parent == tmp_path / "logs"
    assert "Traceback" in log.read_text() and "KeyError: 'a bug'" in log.read_text()
    assert "Traceback" not in outcome.err
    # The URL is in the log with its password masked (the user name may equal the password, as in CI).
    assert small_app.url.password is None or f":{small_app.url.password}@" not in log.read_text()


# --- imports ------------------------------------------------------------------------------------

IMPORTS = [
    (
        "unclosed-quote",
        "users",
        'user_id,first_name\nu1,Ann\nu2,"Bob\nu3,Cy\nu4,Di\n',
        "users.csv, line 3, column 'first_name': a quote is not closed properly",
    ),
    (
        "field-past-its-line",
        "users",
        'user_id,first_name\nu1,"Ann\nSmith"\nu2,Bob\n',
        "users.csv, line 2, column 'first_name': a quoted field runs past the end of its line",
    ),
    (
        "quote-inside-field",
        "users",
        'user_id,first_name,email\nu1,"Bo"b,b@example.com\n',
        "users.csv, line 2, column 'first_name': a quote is not closed properly",
    ),
    (
        "nul-in-text",
        "users",
        "user_id,first_name\nu1,A\x00B\n",
        "line 2, column 'first_name': contains a NUL character",
    ),
    ("year-one", "users", "user_id,created_at\nu1,0001-01-01\n", "line 2, column 'created_at'"),
    ("nul-in-event", "events", "user_id,event,timestamp\nu1,vi\x00ew,2026-01-01\n", "column 'event': contains a NUL"),
    (
        "totals-overflow",
        "events",
        "user_id,event,timestamp,value\nu1,purchase,2026-01-01,1e308\n",
        "line 2, column 'value': '1e308' is out of range; values must be within ±1,000,000,000,000,000",
    ),
    (
        "value-infinite",
        "events",
        "user_id,event,timestamp,value\nu1,purchase,2026-01-01,inf\n",
        "'inf' is not a number",
    ),
    (
        "value-300-digits",
        "events",
        "user_id,event,timestamp,value\nu1,purchase,2026-01-01," + "9" * 300 + "\n",
        "column 'value': '9999999999999999999999999999999999999999' is out of range",
    ),
    (
        "value-subnormal",
        "events",
        "user_id,event,timestamp,value\nu1,purchase,2026-01-01,1e-320\n",
        "'1e-320' is too close to zero to store",
    ),
    ("timestamp-year-one", "events", "user_id,event,timestamp\nu1,view,0001-01-01\n", "line 2, column 'timestamp'"),
    (
        "timestamp-offset-past-the-edge",
        "events",
        "user_id,event,timestamp\nu1,view,2199-12-31T23:30:00-01:00\n",
        "line 2, column 'timestamp'",
    ),
    (
        "property-integer-beyond-64-bits",
        "events",
        'user_id,event,timestamp,properties\nu1,view,2026-01-01,"{""n"": 123456789012345678901234567890}"\n',
        "column 'properties': holds the integer 123456789012345678901234…, beyond 64 bits",
    ),
    (
        "property-nan",
        "events",
        'user_id,event,timestamp,properties\nu1,view,2026-01-01,"{""n"": NaN}"\n',
        "column 'properties': holds NaN, which is not a number JSON allows",
    ),
    (
        "property-infinity",
        "events",
        'user_id,event,timestamp,properties\nu1,view,2026-01-01,"{""n"": -Infinity}"\n',
        "column 'properties': holds -Infinity",
    ),
    (
        "property-deep",
        "events",
        'user_id,event,timestamp,properties\nu1,view,2026-01-01,"{""a"": ' + "[" * 30 + "]" * 30 + '}"\n',
        "column 'properties': nests deeper than 5 levels",
    ),
    (
        "property-nul",
        "events",
        'user_id,event,timestamp,properties\nu1,view,2026-01-01,"{""a"": ""x\\u0000y""}"\n',
        "column 'properties': contains a NUL character",
    ),
    ("not-utf8", "users", "user_id,first_name\nu1,Jos\xe9\n".encode("latin-1"), "not UTF-8 text"),
]


@pytest.mark.parametrize(("case", "kind", "content", "message"), IMPORTS, ids=[c[0] for c in IMPORTS])
def test_hostile_files_are_refused_whole_with_file_line_and_column(
    small_app, capsys, tmp_path, case, kind, content, message
):
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    before = snapshot(small_app)
    outcome = run_cli(["import", kind, str(path)], capsys)
    assert outcome.code == 2
    assert message in outcome.error_line
    assert snapshot(small_app) == before


def test_two_purchases_at_the_limit_keep_total_spent_finite(small_app, capsys, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp,value\nbig,purchase,2026-01-01,1e15\nbig,purchase,2026-01-02,1e15\n")
    assert run_cli(["import", "events", str(path)], capsys).code == 0
    with small_app.connect() as connection:
        total = connection.execute(
            text("SELECT f.total_spent FROM user_facts f JOIN users u ON u.id = f.user_id WHERE u.external_id = 'big'")
        ).scalar_one()
    assert total == 2e15


# --- segment save: atomic -----------------------------------------------------------------------


def _likelihood(prediction) -> dict:
    group = {
        "match": "all",
        "filters": [{"type": "likelihood_category", "prediction": prediction, "categories": ["High"]}],
    }
    return {**EVERYONE, "groups": [group]}


def _one_filter(spec: dict) -> dict:
    return {**EVERYONE, "groups": [{"match": "all", "filters": [spec]}]}


SEGMENT_FILES = [
    ("unknown-prediction", json.dumps(_likelihood(999)), "filter 1 (Event likelihood category): prediction 999 does not exist"),
    ("unknown-event", json.dumps(_one_filter({"type": "event", "event": "teleported"})), "no user ever did an event named 'teleported'"),
    ("wrong-type", json.dumps(_one_filter({"type": "session_count", "min": "lots"})), "'min' must be a number, not 'lots'"),
    ("unknown-filter", json.dumps(_one_filter({"type": "drop table users"})), "unknown filter type 'drop table users'"),
    ("groups-not-a-list", json.dumps({**EVERYONE, "groups": "x"}), "group"),
    ("huge-integer", json.dumps(_likelihood(1)).replace('"prediction": 1', '"prediction": 123456789012345678901234567890'), "beyond 64 bits"),
    ("nan", json.dumps(_one_filter({"type": "session_count", "min": 1})).replace('"min": 1', '"min": NaN'), "holds NaN"),
    ("deep", '{"version": 1, "groups": ' + DEEP + "}", "nests deeper than 10 levels"),
    ("not-json", "{version: 1", "is not valid JSON"),
    ("name-not-text", json.dumps({"name": 5, "definition": EVERYONE}), '"name" must be text, not int'),
    ("name-with-nul", json.dumps({"name": "a\u0000b", "definition": EVERYONE}), "contains a NUL character"),
    ("name-with-bell", json.dumps({"name": "a\u0007b", "definition": EVERYONE}), "cannot contain control characters"),
    ("latin-1", b'{"name": "Jos\xe9", "definition": {}}', "is not UTF-8 text"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "content", "message"), SEGMENT_FILES, ids=[c[0] for c in SEGMENT_FILES])
def test_a_definition_that_fails_any_check_stores_nothing(small_app, capsys, tmp_path, case, content, message):
    path = tmp_path / "segment.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    before = snapshot(small_app)
    outcome = run_cli(["segment", "save", str(path)], capsys)
    assert outcome.code == 2
    assert message in outcome.error_line
    assert snapshot(small_app) == before


# --- databases that are not ours, damaged, read-only or newer -----------------------------------


def _foreign_database(databases) -> str:
    """Another application's database: one table of notes, made without Likely."""
    url = databases.new("foreign")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        connection.execute(text("INSERT INTO notes (id, body) VALUES (1, 'keep me')"))
    engine.dispose()
    return url


def _photo(url: str):
    """The database as it is: bytes for a SQLite file (and its neighbours), rows for PostgreSQL."""
    if url.startswith("sqlite"):
        path = Path(url.split("sqlite:///", 1)[1])
        return file_digest(path), sorted(p.name for p in path.parent.glob(path.name + "*"))
    engine = create_engine(url)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


def test_another_applications_database_is_refused_and_left_unchanged(databases, capsys):
    url = _foreign_database(databases)
    before = _photo(url)
    outcome = run_cli(["--database-url", url, "segment", "list"], capsys)
    assert outcome.code == 2
    assert "belongs to another application (its tables: notes); Likely left it unchanged" in outcome.error_line
    assert _photo(url) == before


def test_a_newer_schema_is_refused_and_left_unchanged(databases, capsys):
    from tests.conftest import close_engine, open_engine

    url = databases.new("newer")
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'z_from_the_future'"))
    close_engine(engine)
    before = _photo(url)
    outcome = run_cli(["--database-url", url, "seed", "--users", "5"], capsys)
    assert outcome.code == 2
    assert "has schema version 'z_from_the_future', which this version of Likely does not know" in outcome.error_line
    assert _photo(url) == before


sqlite_only = pytest.mark.skipif(bool(POSTGRES_URL), reason="a file-level fault of SQLite")
postgres_only = pytest.mark.skipif(not POSTGRES_URL, reason="needs the PostgreSQL server")


def _damaged(databases, make) -> str:
    url = databases.new("damaged")
    path = Path(url.split("sqlite:///", 1)[1])
    make(path)
    return url


def _truncated(path: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x TEXT)")
    connection.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    connection.commit()
    connection.close()
    path.write_bytes(path.read_bytes()[:6000])


DAMAGED = [
    ("text-file", lambda p: p.write_text("name,email\nann,ann@example.com\n"), "is not a SQLite database (it is a text file)"),
    ("binary-file", lambda p: p.write_bytes(bytes(range(256)) * 8), "is not a SQLite database (it is a binary file)"),
    ("truncated", _truncated, "is damaged or unreadable (database disk image is malformed)"),
    ("folder", lambda p: p.mkdir(), "is a folder"),
]  # fmt: skip


@sqlite_only
@pytest.mark.parametrize(("case", "make", "message"), DAMAGED, ids=[c[0] for c in DAMAGED])
def test_a_file_that_is_not_a_usable_database_is_refused_untouched(databases, capsys, case, make, message):
    url = _damaged(databases, make)
    path = Path(url.split("sqlite:///", 1)[1])
    before = _photo(url) if path.is_file() else None
    outcome = run_cli(["--database-url", url, "segment", "list"], capsys)
    assert outcome.code == 2
    assert message in outcome.error_line
    assert (_photo(url) if path.is_file() else None) == before


@sqlite_only
def test_a_read_only_sqlite_file_is_refused_untouched(databases, capsys, monkeypatch):
    from tests.conftest import close_engine, open_engine

    url = databases.new("readonly")
    close_engine(open_engine(url))
    path = Path(url.split("sqlite:///", 1)[1])
    os.chmod(path, 0o444)
    real_access = os.access
    # The suite may run as root, for whom no file is read-only: the check itself is what is tested.
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(path) else real_access(p, mode))
    before = _photo(url)
    outcome = run_cli(["--database-url", url, "seed", "--users", "5"], capsys)
    assert outcome.code == 2
    assert "is read-only (Likely writes to its database); nothing was changed" in outcome.error_line
    assert _photo(url) == before


@postgres_only
def test_a_read_only_postgresql_database_is_refused_with_one_line(databases, capsys):
    from tests.conftest import close_engine, open_engine

    url = databases.new("readonly")
    close_engine(open_engine(url))
    name = url.rsplit("/", 1)[1]
    databases._admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    before = _photo(url)
    outcome = run_cli(["--database-url", url, "seed", "--users", "5"], capsys)
    assert outcome.code == 2
    assert "read-only transaction" in outcome.error_line
    assert _photo(url) == before


# --- delivery rules fail closed -----------------------------------------------------------------

RULE_ROWS = [
    ("frequency_cap", "not json at all", "the stored delivery rule 'frequency_cap' cannot be read"),
    ("frequency_cap", '["a", "list"]', "the stored delivery rule 'frequency_cap' cannot be read"),
    ("frequency_cap", '{"enabled": true, "messages": "lots"}', "the number of messages must be a whole number"),
    ("frequency_cap", '{"enabled": true, "per": "week"}', "the stored delivery rules hold unknown fields"),
    ("quiet_hours", '{"enabled": true, "start": "25:99"}', "Quiet hours: the start time '25:99'"),
]


@pytest.mark.parametrize(("key", "value", "message"), RULE_ROWS, ids=[f"{k}={v[:12]}" for k, v, _ in RULE_ROWS])
def test_a_delivery_rule_that_cannot_be_read_stops_dispatch(small_app, capsys, key, value, message):
    from core.models import AppMeta

    with small_app.begin() as connection:
        connection.execute(AppMeta.__table__.insert(), {"key": key, "value": value})
    before = snapshot(small_app)
    outcome = run_cli(["dispatch"], capsys)
    assert outcome.code == 2
    assert message in outcome.error_line and "set the delivery rules again on the Data page" in outcome.error_line
    assert snapshot(small_app) == before


def test_the_app_shows_a_refused_database_in_one_sentence_and_runs_no_page(databases, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import app_pointed_at

    url = _foreign_database(databases)
    before = _photo(url)
    engine = create_engine(url)
    try:
        with app_pointed_at(engine, monkeypatch):
            at = AppTest.from_file(str(boundary_fixtures.ROOT / "app.py"), default_timeout=60)
            at.run()
    finally:
        engine.dispose()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [plain_error(url)]
    assert _photo(url) == before


def plain_error(url: str) -> str:
    from core.markup import plain
    from core.migrations import _where

    engine = create_engine(url)
    try:
        where = _where(engine)
    finally:
        engine.dispose()
    return plain(
        f"{where} belongs to another application (its tables: notes); Likely left it unchanged. "
        "Point DATABASE_URL at a new file or a Likely database"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("garbage", "DATABASE_URL 'garbage' is not a database URL"),
        ("nosuchdb://user@host/db", "DATABASE_URL nosuchdb://user@host/db cannot be used"),
        ("sqlite:////proc/likely/app.db", "/proc/likely: No such file or directory"),  # a folder no one can make
    ],
    ids=["not-a-url", "unknown-kind", "unreachable-folder"],
)
def test_a_database_url_that_cannot_be_used_gets_one_line(capsys, url, message):
    outcome = run_cli(["--database-url", url, "segment", "list"], capsys)
    assert outcome.code == 2
    assert message in outcome.error_line


@pytest.mark.parametrize("before", [None, "sqlite:///{tmp}/elsewhere.db"], ids=["unset", "set"])
def test_database_url_overrides_the_environment_for_its_command_only(small_app, capsys, monkeypatch, tmp_path, before):
    before = before and before.replace("{tmp}", str(tmp_path))
    if before is None:
        monkeypatch.delenv("DATABASE_URL")
    else:
        monkeypatch.setenv("DATABASE_URL", before)
    url = small_app.url.render_as_string(hide_password=False)
    outcome = run_cli(["--database-url", url, "segment", "list"], capsys)
    assert outcome.code == 0 and "Everyone" in outcome.out
    assert os.environ.get("DATABASE_URL") == before
    assert not (tmp_path / "elsewhere.db").exists()
