"""Streamed downloads: the offers (core.downloads), the CSV chunks, the route (pages/download_link.py)
and the Segments page's link to it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from core import access, downloads, segments
from core.access import Actor
from core.csvout import csv_chunks, write_csv
from core.downloads import Shelf, content_disposition, new_token
from core.segments.export import export_csv, export_csv_stream
from core.timeutil import utcnow
from pages.download_link import ENDED, ROUTES

ROOT = Path(__file__).resolve().parent.parent
BOSS = Actor("boss@x.io", "admin")
EVERYONE = segments.parse_definition(
    {"groups": [{"filters": [{"type": "last_used", "op": "less_than", "value": 100, "unit": "weeks"}]}]}
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _make(*chunks: bytes):
    return lambda: iter(chunks)


# --- the shelf of offers -----------------------------------------------------------------------


def test_an_offer_is_taken_by_its_token_and_its_path_names_the_file():
    shelf, token = Shelf(), new_token()
    path = shelf.offer(token, "Lapsed users é/2.csv", _make(b"a,b\r\n"))
    assert path == f"/downloads/{token}/Lapsed%20users%20%C3%A9%2F2.csv"
    offer = shelf.take(token)
    assert (offer.name, offer.media_type, b"".join(offer.make())) == ("Lapsed users é/2.csv", "text/csv", b"a,b\r\n")
    assert shelf.take(new_token()) is None


def test_an_offer_ends_after_its_time_unless_the_page_makes_it_again():
    clock = Clock()
    shelf, token = Shelf(clock), new_token()
    shelf.offer(token, "a.csv", _make(b"1"))
    clock.now += downloads.OFFER_TTL_S - 1
    shelf.offer(token, "a.csv", _make(b"2"))  # the page ran again: the same link, a fresh offer
    clock.now += downloads.OFFER_TTL_S - 1
    assert b"".join(shelf.take(token).make()) == b"2"
    clock.now += 1
    assert shelf.take(token) is None


def test_the_oldest_offers_end_first_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(downloads, "MAX_OFFERS", 3)
    shelf = Shelf()
    tokens = [new_token() for _ in range(4)]
    for token in tokens:
        shelf.offer(token, "a.csv", _make(b""))
    assert [shelf.take(token) is not None for token in tokens] == [False, True, True, True]


@pytest.mark.parametrize("token", ["", "short", "x" * 31, "a" * 40 + "/..", "a" * 129])
def test_a_guessable_or_odd_token_is_refused(token):
    with pytest.raises(ValueError, match="32 or more URL-safe characters"):
        Shelf().offer(token, "a.csv", _make(b""))


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("segment.csv", "attachment; filename=\"segment.csv\"; filename*=UTF-8''segment.csv"),
        ('Zoé "VIP".csv', "attachment; filename=\"Zo_ _VIP_.csv\"; filename*=UTF-8''Zo%C3%A9%20%22VIP%22.csv"),
        (
            "a\r\nSet-Cookie: x.csv",
            "attachment; filename=\"a__Set-Cookie_ x.csv\"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x.csv",
        ),
    ],
)
def test_the_saved_name_reaches_every_browser_and_never_breaks_the_header(name, header):
    assert content_disposition(name) == header


# --- CSV chunks --------------------------------------------------------------------------------


def test_chunks_join_to_the_bytes_the_writer_writes_and_report_the_rows_at_the_end():
    batches = [[["=1+1", "Zoé"], ["a,b", None]], [["x"], ['say "hi"']]]
    whole = io.BytesIO()
    write_csv(whole, ["name", "note"], batches)
    finished = []
    chunks = list(csv_chunks(["name", "note"], batches, done=finished.append))
    assert b"".join(chunks) == whole.getvalue()
    assert chunks[0] == b"name,note\r\n" and len(chunks) == 3
    assert finished == [3]


def test_chunks_are_made_as_they_are_read():
    pulled = []

    def batches():
        for k in range(3):
            pulled.append(k)
            yield [[f"row {k}"]]

    finished = []
    stream = csv_chunks(["name"], batches(), done=finished.append)
    assert next(stream) == b"name\r\n" and pulled == []
    assert next(stream) == b"row 0\r\n" and pulled == [0]
    stream.close()  # the browser went away: nothing more is made, and nothing is reported as done
    assert pulled == [0] and finished == []


# --- the route ---------------------------------------------------------------------------------


@pytest.fixture
def shelf(monkeypatch):
    fresh = Shelf()
    monkeypatch.setattr(downloads, "SHELF", fresh)
    monkeypatch.setattr("pages.download_link.SHELF", fresh)
    return fresh


@pytest.fixture
def client(shelf):
    return TestClient(Starlette(routes=ROUTES))


def _exports(engine) -> list[tuple]:
    log = access.audit_log(engine, actor=BOSS, action="export")
    return [(row.actor, row.target, row.details["rows"]) for row in log.itertuples()]


def test_a_segment_export_is_streamed_with_the_bytes_core_writes_and_audited_per_download(demo_engine, shelf, client):
    expected = io.BytesIO()
    rows = export_csv(EVERYONE, expected, demo_engine, segment_now := utcnow())
    path = shelf.offer(
        token := new_token(),
        "Everyone é.csv",
        lambda: export_csv_stream(EVERYONE, demo_engine, segment_now, actor=BOSS, subject="Everyone é"),
    )
    for _ in range(2):
        response = client.get(path)
        assert response.status_code == 200
        assert response.content == expected.getvalue()
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == content_disposition("Everyone é.csv")
        assert response.headers["cache-control"] == "no-store"
    assert rows > 1000 and shelf.take(token) is not None
    assert _exports(demo_engine)[:2] == [("boss@x.io", "Everyone é", rows)] * 2


def test_an_ended_or_unknown_link_says_so_in_one_line(client):
    response = client.get(f"/downloads/{new_token()}/segment.csv")
    assert (response.status_code, response.text) == (404, ENDED)
    assert ENDED.count("\n") == 1


def test_a_role_that_may_no_longer_export_is_refused_in_one_line_and_nothing_is_audited(demo_engine, shelf, client):
    before = _exports(demo_engine)
    viewer = Actor("ann@x.io", "viewer")
    path = shelf.offer(new_token(), "a.csv", lambda: export_csv_stream(EVERYONE, demo_engine, actor=viewer))
    response = client.get(path)
    assert response.status_code == 403
    assert response.text == "ann@x.io is a viewer: only an analyst or above may export CSVs\n"
    assert _exports(demo_engine) == before


# --- the Segments page -------------------------------------------------------------------------


def test_the_segments_page_links_to_a_streamed_export_of_what_it_shows(app_database, shelf, client):
    shelf.served = True
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/segments.py")
    at.run()
    at.selectbox(key="seg_new_type").set_value("last_used")  # "more than 2 weeks ago"
    at.button(key="seg_add_filter").click()
    at.run()
    assert not at.exception
    links = [element.proto.body for element in at.get("html") if "likelyDownload" in element.proto.body]
    assert len(links) == 1
    href = re.search(r'href="([^"]+)"', links[0]).group(1)
    assert re.fullmatch(r"/downloads/[A-Za-z0-9_\-]{43}/segment\.csv", href)
    response = client.get(href)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    shown = int(re.sub(r"\D", "", at.metric[0].value))
    assert 0 < len(rows) == shown < segments.total_users(app_database)
