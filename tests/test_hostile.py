"""Hostile input: each gets a clear message or is rendered harmless, and changes nothing else."""

from __future__ import annotations

import ast
import csv
import io
import re
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import models, segments
from core.campaigns import CampaignSpec, get_campaign, save_draft, set_company_timezone
from core.campaigns.limits import phone_mockup_html
from core.campaigns.store import company_timezone
from core.db import session_scope
from core.errors import UserError
from core.importer import import_events, import_users
from core.segments.export import export_csv_stream
from core.timeutil import utcnow

ROOT = Path(__file__).resolve().parent.parent
EVERYONE = segments.empty_definition()
USER_PAGES = sorted(p for p in (ROOT / "pages").rglob("*.py") if p.name != "__init__.py")
SCRIPT_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_names_with_html_are_stored_verbatim_and_never_rendered_as_html(demo_engine):
    saved = segments.save_segment(demo_engine, SCRIPT_NAME, EVERYONE)
    assert segments.get_segment(demo_engine, saved.id).name == SCRIPT_NAME
    campaign_id = save_draft(CampaignSpec(name=SCRIPT_NAME, segment_id=saved.id), demo_engine)
    assert get_campaign(campaign_id, demo_engine)[0].name == SCRIPT_NAME


def test_the_phone_mockup_escapes_every_piece_of_user_text():
    markup = phone_mockup_html("iOS", "ios_lock", SCRIPT_NAME, "<b>bold</b> & {{ liquid }}")
    assert "<script>" not in markup and "<img" not in markup and "<b>" not in markup
    assert "&lt;script&gt;" in markup and "&amp;" in markup


def _unsafe_html_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and any(k.arg == "unsafe_allow_html" and getattr(k.value, "value", False) is True for k in node.keywords)
    ]


@pytest.mark.parametrize("page", sorted((ROOT / "pages").glob("*.py")), ids=lambda p: p.name)
def test_pages_pass_only_escaped_mockups_to_unsafe_html(page):
    for call in _unsafe_html_calls(page):
        content = call.args[0] if call.args else None
        assert isinstance(content, ast.Call), f"{page.name}:{call.lineno} passes raw text as HTML"
        name = content.func.attr if isinstance(content.func, ast.Attribute) else content.func.id
        assert name == "phone_mockup_html", f"{page.name}:{call.lineno} passes {name}() output as HTML"


# Streamlit calls that read their text (first argument, `label` or `body`) as Markdown.
MARKDOWN_CALLS = {
    "markdown", "write", "caption", "success", "error", "warning", "info", "toast", "title", "header",
    "subheader", "expander", "popover", "metric", "status", "tabs", "button", "checkbox", "toggle", "radio",
    "selectbox", "multiselect", "text_input", "text_area", "number_input", "slider", "select_slider",
    "date_input", "time_input", "download_button", "link_button", "form_submit_button", "file_uploader",
    "segmented_control", "pills",
}  # fmt: skip
# Page helpers that hand their text to one of those later (flash messages shown after a rerun).
DEFERRED_CALLS = {"_flash"}
# Expressions that carry text a person typed or a file brought: names (segments, campaigns,
# predictions, events, uploads), first names, rendered copy, and error messages, which quote names.
USER_TEXT = re.compile(
    r"(\bname\b|\.name\b|\bnames?\[|['\"]name['\"]|first_name|\berror\b|\bproblem\b|\.message\b|"
    r"\bline\b|\.title\b|\.body\b|segments\.describe\()"
)
# App-made text that the pattern above would mistake for user text: tier names are constants,
# and the phone mock-up escapes every piece of user text itself (tests/test_hostile.py).
APP_TEXT = re.compile(r"^(TIER_BY_NAME\[|', '\.join\(\(TIER_BY_NAME|limits\.phone_mockup_html\()")


def _is_plain(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "plain"


def _unescaped_user_text(node: ast.expr) -> list[ast.expr]:
    """Parts of a text expression that carry user text without going through plain()."""
    if _is_plain(node) or isinstance(node, ast.Constant):
        return []
    if isinstance(node, ast.JoinedStr):
        return [
            part
            for value in node.values
            if isinstance(value, ast.FormattedValue)
            for part in _unescaped_user_text(value.value)
        ]
    if isinstance(node, ast.BinOp):
        return _unescaped_user_text(node.left) + _unescaped_user_text(node.right)
    if isinstance(node, ast.IfExp):
        return _unescaped_user_text(node.body) + _unescaped_user_text(node.orelse)
    source = ast.unparse(node)
    return [node] if USER_TEXT.search(source) and not APP_TEXT.match(source) else []


def _markdown_texts(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in MARKDOWN_CALLS and isinstance(node.func, ast.Attribute) or name in DEFERRED_CALLS:
            yield from node.args[:2] if name in DEFERRED_CALLS else node.args[:1]
            yield from (k.value for k in node.keywords if k.arg in ("label", "body"))


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: p.name)
def test_pages_escape_user_text_before_markdown_reads_it(page):
    tree = ast.parse(page.read_text(encoding="utf-8"))
    leaks = [
        f"{page.name}:{part.lineno}: {ast.unparse(part)}"
        for text in _markdown_texts(tree)
        for part in _unescaped_user_text(text)
    ]
    assert leaks == [], "user text reaches Markdown without plain(): " + "; ".join(leaks)


def test_formula_cells_are_imported_as_text_and_neutralised_on_export(empty_engine, tmp_path):
    path = tmp_path / "users.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "first_name", "email"])
        writer.writerow(["=1+1", '=HYPERLINK("http://evil","x")', "@SUM(A1)@example.com"])
        writer.writerow(["plain", "+33 6 12", "-x@example.com"])
    import_users(empty_engine, path)
    rows = list(csv.DictReader(io.StringIO(b"".join(export_csv_stream(EVERYONE, empty_engine)).decode("utf-8"))))
    by_id = {row["user_id"]: row for row in rows}
    assert by_id["'=1+1"]["first_name"] == '\'=HYPERLINK("http://evil","x")'
    assert by_id["'=1+1"]["email"] == "'@SUM(A1)@example.com"
    assert by_id["plain"]["first_name"] == "'+33 6 12"
    assert by_id["plain"]["email"] == "'-x@example.com"


def test_a_ten_thousand_character_property_is_refused(demo_engine, tmp_path):
    path = tmp_path / "events.csv"
    huge = '{"k": "' + "x" * 10_000 + '"}'
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [["user_id", "event", "timestamp", "properties"], ["u1", "view", "2026-01-01", huge]]
        )
    with pytest.raises(UserError, match="line 2, column 'properties': is 10,009 characters long; the limit is 10,000"):
        import_events(demo_engine, path)


def test_a_large_events_file_imports_in_bounded_memory(empty_engine, tmp_path, monkeypatch):
    monkeypatch.setattr("core.importer.CHUNK_ROWS", 2_000)
    rows = 50_000
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("user_id,event,timestamp,value\n")
        for i in range(rows):
            handle.write(f"user-{i % 5_000},purchase,2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,{i % 97}.5\n")
    file_mb = path.stat().st_size / 1e6
    tracemalloc.start()
    try:
        result = import_events(empty_engine, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rows == rows and result.created_users == 5_000
    with session_scope(empty_engine) as session:
        assert session.scalar(select(func.count()).select_from(models.Event)) == rows
    # The rows are never all held at once: the peak stays near one 2,000-row batch plus the user map.
    assert peak / 1e6 < 8, f"peak {peak / 1e6:.1f} MB for a {file_mb:.1f} MB file"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe/Pariss", "../../etc/passwd", "", "UTC+99"])
def test_time_zones_that_do_not_exist_are_refused_and_change_nothing(demo_engine, zone):
    before = company_timezone(demo_engine)
    with pytest.raises(UserError, match="not a known IANA time zone"):
        set_company_timezone(zone, demo_engine)
    assert company_timezone(demo_engine) == before


@pytest.mark.parametrize(
    "definition",
    [
        {"version": 1, "match": "all", "groups": [{"match": "all", "filters": [{"type": "drop table users"}]}]},
        {
            "version": 1,
            "match": "all",
            "groups": [{"match": "all", "filters": [{"type": "session_count", "op": "at_least", "value": 1e308}]}],
        },
        {
            "version": 1,
            "match": "all",
            "groups": [{"match": "all", "filters": [{"type": "country", "values": ["FR'; DROP TABLE users; --"]}]}],
        },
        {"version": 1, "match": "all", "groups": "not a list"},
        {"version": 99, "match": "all", "groups": []},
    ],
    ids=["unknown-type", "huge-number", "sql-in-value", "bad-shape", "future-version"],
)
def test_malformed_or_crafted_definitions_never_reach_the_database_unchecked(demo_engine, definition):
    users_before = segments.count(EVERYONE, demo_engine)
    try:
        result = segments.count(segments.parse_definition(definition), demo_engine)
    except UserError as error:
        assert str(error)  # a message, not a crash
    else:
        assert result == 0  # a crafted value is just a value that matches nobody
    with pytest.raises(UserError):
        segments.save_segment(demo_engine, "crafted", segments.parse_definition({**definition, "groups": "x"}))
    assert segments.count(EVERYONE, demo_engine) == users_before


def test_data_too_big_for_memory_is_counted_and_exported_in_sql(demo_engine, monkeypatch):
    """Above LIKELY_IN_MEMORY_USERS the in-memory store is never loaded; SQL gives the same answers."""
    from core.segments import store
    from core.segments.export import export_chunks

    lapsed = segments.definition_of(
        {"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks"},
        {"type": "platform", "values": ["iOS"]},
    )
    now = utcnow()  # one instant for every count below: "more than 2 weeks" moves with the clock
    expected_count = segments.count(lapsed, demo_engine, now)
    expected_ids = segments.matching_user_ids(lapsed, demo_engine, now)
    monkeypatch.setattr(store, "IN_MEMORY_USER_LIMIT", 100)

    def no_store(*_args, **_kwargs):
        raise AssertionError("the in-memory store was loaded")

    monkeypatch.setattr(store.UserStore, "__init__", no_store)
    store.clear_cache()
    assert segments.count(lapsed, demo_engine, now) == expected_count > 0
    assert segments.matching_user_ids(lapsed, demo_engine, now).tolist() == expected_ids.tolist()
    assert sum(len(columns[0]) for columns in export_chunks(lapsed, demo_engine, now)) == expected_count
