"""Random input at the three busiest boundaries: CSV imports, `segment save` and the copy check.

Each input either succeeds or gets a clear one-line refusal (exit 2, a UserError); never an
escaped exception (exit 1, a traceback), and never a partial write: after a refusal the
database is unchanged row for row.
"""

from __future__ import annotations

import contextlib
import io
import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.campaigns import templating
from core.campaigns.templating import TemplateError
from core.cli import main
from core.errors import UserError
from core.importer import EVENT_COLUMNS, USER_COLUMNS, import_events, import_users
from core.segments import FILTERS
from tests.boundary_fixtures import snapshot

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# --- CSV bytes ----------------------------------------------------------------------------------

CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "u1",
            "u2",
            "Ann",
            '"',
            '""',
            '"quoted"',
            '"open',
            "a,b",
            "x\ny",
            "\r",
            "\x00",
            "é",
            "🎉",
            "session",
            "purchase",
            "2026-01-01",
            "2026-01-01T10:00:00Z",
            "0001-01-01",
            "9999-12-31T23:59:59+14:00",
            "1e308",
            "-1e308",
            "nan",
            "inf",
            "1e-320",
            "59.90",
            "9" * 40,
            "true",
            "maybe",
            "iOS",
            "FR",
            "Europe/Paris",
            '{"a": 1}',
            '{"a": NaN}',
            "[1]",
            '{"n": 123456789012345678901234567890}',
            "{" * 30,
            '"{""a"": ""b""}"',
        ]
    ),  # fmt: skip
    st.text(max_size=12),
)


VALID_CELLS = {
    "user_id": st.sampled_from(["u1", "u2", "u3", "cust-9", "=1+1"]),
    "first_name": st.text(max_size=10).filter(lambda t: not set(t) & set('",\r\n\x00')),
    "email": st.sampled_from(["", "a@example.com", "zoë@exämple.fr"]),
    "platform": st.sampled_from(["", "iOS", "android", "Web"]),
    "country": st.sampled_from(["", "FR", "us"]),
    "language": st.sampled_from(["", "fr", "en"]),
    "timezone": st.sampled_from(["", "Europe/Paris", "Pacific/Auckland"]),
    "push_opt_in": st.sampled_from(["", "true", "0", "yes"]),
    "email_opt_in": st.sampled_from(["", "false", "1"]),
    "created_at": st.sampled_from(["", "2026-01-01", "1900-01-01T00:00:00Z", "2199-12-31T23:59:59Z"]),
    "event": st.sampled_from(["session", "purchase", "viewed_item"]),
    "timestamp": st.sampled_from(["2026-01-01", "2026-03-01T18:45:00+01:00", "1900-01-01T00:00:00Z"]),
    "value": st.sampled_from(["", "0", "59.90", "-3", "1e15", "1e-300"]),
    "properties": st.sampled_from(["", '"{""category"": ""shoes""}"', '"{""n"": 9223372036854775807}"']),
}


@st.composite
def csv_documents(draw, columns: tuple[str, ...]) -> bytes:
    """Half plausible files (valid cells, now and then a hostile one), half anything."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=200))  # anything at all
    required = ["user_id"] if "event" not in columns else ["user_id", "event", "timestamp"]
    optional = draw(st.lists(st.sampled_from([c for c in columns if c not in required]), max_size=4, unique=True))
    header = required + optional + (["bogus"] if draw(st.integers(0, 9)) == 0 else [])
    hostile = draw(st.booleans())

    def cell(column: str):
        valid = VALID_CELLS.get(column, st.just("x"))
        return st.one_of(valid, valid, CELLS) if hostile else valid

    rows = draw(st.lists(st.tuples(*(cell(c) for c in header)).map(list), min_size=1, max_size=6))
    if hostile and rows and draw(st.booleans()):
        rows[-1] = rows[-1][: draw(st.integers(0, len(header)))]  # a short row
    separator = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(header), *(",".join(row) for row in rows)]
    return (separator.join(lines) + draw(st.sampled_from(["", separator]))).encode("utf-8", "surrogatepass")


def _import_holds(engine, importer, content: bytes, tmp_path) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    before = snapshot(engine)
    try:
        importer(engine, path)
    except UserError as error:
        event("refused")
        assert str(error).strip()
        assert snapshot(engine) == before  # all or nothing
    else:
        event("imported")


@PROPERTY_SETTINGS
@given(content=csv_documents(USER_COLUMNS))
def test_any_users_file_imports_whole_or_is_refused_whole(empty_engine, tmp_path, content):
    _import_holds(empty_engine, import_users, content, tmp_path)


@PROPERTY_SETTINGS
@given(content=csv_documents(EVENT_COLUMNS))
def test_any_events_file_imports_whole_or_is_refused_whole(empty_engine, tmp_path, content):
    _import_holds(empty_engine, import_events, content, tmp_path)


# --- segment files ------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["all", "any", "iOS", "FR", "High", "weeks", "more_than", "session", "purchase", 1, 0, -1]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
FILTER_KEYS = st.sampled_from(
    ["type", "op", "value", "unit", "min", "max", "days", "values", "event", "prediction", "categories"]
)


@st.composite
def definitions(draw):
    """Definition-shaped documents: the right skeleton, filters of real types with random fields."""
    if draw(st.integers(0, 4)) == 0:
        return draw(JSON_VALUES)
    filters = draw(
        st.lists(
            st.fixed_dictionaries({"type": st.sampled_from(sorted(FILTERS))}).flatmap(
                lambda base: st.dictionaries(FILTER_KEYS, SCALARS | st.lists(SCALARS, max_size=3), max_size=4).map(
                    lambda extra: {**extra, **base}
                )
            ),
            max_size=3,
        )
    )
    return {
        "version": draw(st.sampled_from([1, 1, 1, 2, "1"])),
        "match": draw(st.sampled_from(["all", "any", "some"])),
        "groups": [{"match": draw(st.sampled_from(["all", "any"])), "filters": filters}],
        "exclude": draw(st.sampled_from([[], None, "x"])),
    }


def _cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as stop:
            code = stop.code
    return int(code or 0), err.getvalue()


@PROPERTY_SETTINGS
@given(document=definitions(), wrapped=st.booleans(), name=st.text(max_size=20))
def test_segment_save_stores_a_valid_definition_or_nothing(empty_app, tmp_path, document, wrapped, name):
    path = tmp_path / "segment.json"
    path.write_text(json.dumps({"name": name, "definition": document} if wrapped else document), encoding="utf-8")
    before = snapshot(empty_app)
    code, err = _cli(["segment", "save", str(path), "--replace"])
    event("saved" if code == 0 else "refused")
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert snapshot(empty_app) == before


@PROPERTY_SETTINGS
@given(raw=st.one_of(st.text(max_size=60), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_segment_save_refuses_any_text_that_is_not_a_definition(empty_app, tmp_path, raw):
    path = tmp_path / "segment.json"
    path.write_text(raw, encoding="utf-8", errors="surrogatepass")
    before = snapshot(empty_app)
    code, err = _cli(["segment", "save", str(path)])
    assert code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert snapshot(empty_app) == before


# --- templates ----------------------------------------------------------------------------------

OPERANDS = st.sampled_from(
    ["first_name", "total_spent", "session_count", "user_id", "likelihood_score", "offer", "'gA=='", "'x'", "0",
     "-1", "99999999999999999999", "1.5", "nan_value", "(1..5)", "(1..100000000)", "'%ff'", "''"]
)  # fmt: skip
FILTER_CALLS = st.sampled_from(
    ["join", "modulo: 0", "divided_by: 0", "divided_by: session_count", "times: 99999999999", "plus: 1", "minus: 'x'",
     "base64_decode", "base64_encode", "date: '%Y'", "size", "slice: 99999999999999999999", "replace: 'x', 'yy'",
     "append: first_name", "split: ''", "upcase", "default: 'there'", "round: 2", "sort", "first", "last", "abs",
     "ceil", "floor", "truncate: 3", "url_decode", "escape", "at_least: 'x'", "map: 'x'", "where: 'x'", "strip"]
)  # fmt: skip
OUTPUTS = st.tuples(OPERANDS, st.lists(FILTER_CALLS, max_size=3)).map(
    lambda t: "{{ " + " | ".join([t[0], *t[1]]) + " }}"
)
TAGS = st.sampled_from(
    ["{% if first_name == 'Mallory' %}", "{% endif %}", "{% for i in (1..3) %}", "{% for i in (1..100000000) %}",
     "{% endfor %}", "{% assign x = total_spent | times: 2 %}", "{% capture c %}", "{% endcapture %}",
     "{% include 'x' %}", "{% raw %}", "{% endraw %}", "{% unless offer %}", "{% endunless %}", "{% cycle 'a', 'b' %}"]
)  # fmt: skip
TEMPLATES = st.one_of(
    st.lists(st.one_of(OUTPUTS, OUTPUTS, TAGS, st.sampled_from(["Hi ", "\n", "!"])), max_size=8).map("".join),
    st.text(max_size=40),
)
VARIABLE_VALUES = st.one_of(st.none(), st.integers(-(2**64), 2**64), st.floats(), st.text(max_size=30), st.booleans())


@PROPERTY_SETTINGS
@given(source=TEMPLATES, variables=st.fixed_dictionaries({k: VARIABLE_VALUES for k in templating.VARIABLES}))
def test_the_copy_check_and_any_users_render_end_in_text_or_a_template_error(source, variables):
    problem = templating.check(source, "Body")  # never raises
    event("refused by the check" if problem else "passed the check")
    if problem is not None:
        assert problem.line >= 1 and problem.message
        return
    try:
        rendered = templating.render(source, variables, "Body")
    except TemplateError as error:  # data the checks never saw may still fail, but only as a template error
        assert error.problem.line >= 1
    else:
        assert len(rendered) <= templating.MAX_TEXT_CHARS
