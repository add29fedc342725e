"""Bring your own data: import users and events from CSV, all or nothing.

Each import reads its file twice: a first pass validates every row without writing
(streaming, so memory stays bounded), a second pass writes in chunks inside one
transaction. Any problem is reported with file, line and column, and nothing is written.
"""

from __future__ import annotations

import csv
import io
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO
from zoneinfo import available_timezones

from sqlalchemy import Engine, select

from core import facts, leases, models, safejson
from core.access import LOCAL_ADMIN, Actor, Permission, audit_entry, forget_demo_data, require
from core.db import bulk_insert, bump_data_version, session_scope, users_version
from core.errors import UserError
from core.instants import parse_instant

PLATFORMS = ("iOS", "Android", "Web")
USER_COLUMNS = (
    "user_id",
    "first_name",
    "email",
    "platform",
    "country",
    "language",
    "timezone",
    "push_opt_in",
    "email_opt_in",
    "created_at",
)
EVENT_COLUMNS = ("user_id", "event", "timestamp", "value", "properties")
REQUIRED = {"users": ("user_id",), "events": ("user_id", "event", "timestamp")}
MAX_LENGTH = {"user_id": 128, "first_name": 100, "email": 254, "language": 8, "event": 100, "properties": 10_000}
# An event's value is bounded so that totals (a user's total_spent sums every purchase) stay
# finite on every backend: a billion events at the limit still sum far below a float's range.
MAX_VALUE = 1e15
MIN_VALUE = 1e-300  # below this PostgreSQL's float8 refuses the text on input
MAX_PROPERTY_DEPTH = 5
MAX_ERRORS_SHOWN = 10
CHUNK_ROWS = 50_000
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}

Source = str | Path | IO[bytes]


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created_users: int
    updated_users: int = 0


class _Problems:
    """Collects row errors; raises one UserError listing the first few."""

    def __init__(self, file_name: str):
        self.file_name = file_name
        self.messages: list[str] = []
        self.count = 0

    def add(self, line: int, column: str | None, message: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_ERRORS_SHOWN:
            where = f"{self.file_name}, line {line}" + (f", column '{column}'" if column else "")
            self.messages.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.count:
            more = f"\n(and {self.count - len(self.messages)} more problems)" if self.count > len(self.messages) else ""
            if self.count == 1:  # one problem, one line
                raise UserError(f"nothing was imported: {self.messages[0]}")
            raise UserError("nothing was imported:\n" + "\n".join(self.messages) + more)


def _open_text(source: Source) -> IO[str]:
    if isinstance(source, (str, Path)):
        return open(source, encoding="utf-8-sig", newline="")
    source.seek(0)
    return io.TextIOWrapper(source, encoding="utf-8-sig", newline="")


def _file_name(source: Source) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name
    return getattr(source, "name", None) or "uploaded file"


def _physical_line(source: Source, number: int) -> str:
    """Line `number` of the file as written (read again: only an error needs it)."""
    handle = _open_text(source)
    try:
        for index, line in enumerate(handle, start=1):
            if index == number:
                return line
        return ""
    finally:
        if isinstance(source, (str, Path)):
            handle.close()
        else:
            handle.detach()


def _open_quote_column(line: str) -> int:
    """The index of the field whose quoting is broken on `line`: text after its closing quote, or no closing quote."""
    field, quoted, i = 0, False, 0
    while i < len(line):
        char = line[i]
        if quoted and char == '"':
            if line[i + 1 : i + 2] == '"':
                i += 1
            elif line[i + 1 : i + 2] not in ("", ",", "\r", "\n"):
                return field
            else:
                quoted = False
        elif not quoted and char == '"':
            quoted = True
        elif not quoted and char == ",":
            field += 1
        i += 1
    return field


def _rows(source: Source, kind: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; raises UserError on a bad header, encoding or quoting.

    The strict dialect holds one record per line: a quoted field may not run past its line. So an
    unclosed quote is reported at its own line and column instead of swallowing the rows after it.
    """
    name = _file_name(source)
    allowed = USER_COLUMNS if kind == "users" else EVENT_COLUMNS
    handle = _open_text(source)
    header: list[str] = []

    def where(line: int, index: int) -> str:
        column = header[index] if 0 <= index < len(header) else None
        return f"{name}, line {line}" + (f", column '{column}'" if column else f", field {index + 1}")

    def next_cells(reader) -> list[str] | None:
        start = reader.line_num + 1  # the record's first physical line
        try:
            cells = next(reader)
        except StopIteration:
            return None
        except UnicodeDecodeError:
            raise UserError(f"{name}, line {reader.line_num + 1}: not UTF-8 text; save the file as UTF-8 CSV") from None
        except csv.Error as error:
            index = _open_quote_column(_physical_line(source, start))
            if "field larger than field limit" in str(error):
                limit = f"{csv.field_size_limit():,}"
                raise UserError(f"{where(start, index)}: a field is longer than {limit} characters") from None
            raise UserError(f"{where(start, index)}: a quote is not closed properly ({error})") from None
        if reader.line_num > start:
            index = next((i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell), len(cells) - 1)
            raise UserError(
                f"{where(start, index)}: a quoted field runs past the end of its line (is a closing quote missing?)"
            )
        return cells

    try:
        reader = csv.reader(handle, strict=True)
        cells = next_cells(reader)
        if not cells or not any(cell.strip() for cell in cells):
            raise UserError(f"{name}: the file is empty; expected a header line with {', '.join(REQUIRED[kind])}")
        header = [cell.strip() for cell in cells]
        unknown = [cell for cell in header if cell not in allowed]
        if unknown:
            raise UserError(
                f"{name}, line 1: unknown column {', '.join(repr(c) for c in unknown)}; "
                f"the columns are {', '.join(allowed)}"
            )
        missing = [column for column in REQUIRED[kind] if column not in header]
        if missing:
            raise UserError(f"{name}, line 1: missing required column {', '.join(repr(c) for c in missing)}")
        if len(set(header)) != len(header):
            raise UserError(f"{name}, line 1: a column appears twice")
        width = len(header)
        while (cells := next_cells(reader)) is not None:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != width:
                yield line, {"__width__": f"has {len(cells)} fields, the header has {width}"}
                continue
            yield line, dict(zip(header, (cell.strip() for cell in cells), strict=True))
    finally:
        if isinstance(source, (str, Path)):
            handle.close()
        else:
            handle.detach()


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 to naive UTC within the supported range (`core.instants`)."""
    return parse_instant(value)


def _parse_value(text: str) -> float:
    """An event's value: a finite number within ±MAX_VALUE, so every sum of them stays finite."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text[:40]}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"'{text[:40]}' is not a number")
    if abs(value) > MAX_VALUE:
        raise ValueError(f"'{text[:40]}' is out of range; values must be within ±{MAX_VALUE:,.0f}")
    if value != 0 and abs(value) < MIN_VALUE:
        raise ValueError(f"'{text[:40]}' is too close to zero to store; write 0")
    return value


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"'{value}' is not true/false (use true, false, 1, 0, yes or no)")


def _check_length(row: dict[str, str], line: int, problems: _Problems) -> None:
    for column, limit in MAX_LENGTH.items():
        if len(row.get(column) or "") > limit:
            problems.add(line, column, f"is {len(row[column]):,} characters long; the limit is {limit:,}")
    for column, value in row.items():
        if "\x00" in value:  # PostgreSQL cannot store it, so no backend does
            problems.add(line, column, "contains a NUL character")


_ZONES: set[str] | None = None


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones()
    return _ZONES


def _clean_user(row: dict[str, str], line: int, problems: _Problems) -> dict | None:
    before = problems.count
    _check_length(row, line, problems)
    clean: dict = {"external_id": row["user_id"]}
    if not row["user_id"]:
        problems.add(line, "user_id", "is empty")
    if "first_name" in row:
        clean["first_name"] = row["first_name"] or None
    if "email" in row:
        email = row["email"]
        if email and ("@" not in email or " " in email):
            problems.add(line, "email", f"'{email}' is not an email address")
        clean["email"] = email or None
    if "platform" in row:
        match = {p.lower(): p for p in PLATFORMS}.get(row["platform"].lower())
        if row["platform"] and match is None:
            problems.add(line, "platform", f"'{row['platform']}' is not one of {', '.join(PLATFORMS)}")
        clean["platform"] = match
    if "country" in row:
        country = row["country"].upper()
        if country and (len(country) != 2 or not country.isalpha()):
            problems.add(line, "country", f"'{row['country']}' is not a two-letter country code (e.g. FR)")
        clean["country"] = country or None
    if "language" in row:
        clean["language"] = row["language"].lower() or None
    if "timezone" in row:
        zone = row["timezone"]
        if zone and zone not in _zones():
            problems.add(line, "timezone", f"'{zone}' is not an IANA time zone (e.g. Europe/Paris)")
        clean["timezone"] = zone or None
    for column in ("push_opt_in", "email_opt_in"):
        if column in row:
            try:
                clean[column] = _parse_bool(row[column])
            except ValueError as error:
                problems.add(line, column, str(error))
    if "created_at" in row and row["created_at"]:
        try:
            clean["created_at"] = parse_timestamp(row["created_at"])
        except ValueError:
            problems.add(line, "created_at", f"'{row['created_at']}' is not an ISO 8601 timestamp")
    return clean if problems.count == before else None


def _clean_event(row: dict[str, str], line: int, problems: _Problems) -> tuple | None:
    before = problems.count
    _check_length(row, line, problems)
    if not row["user_id"]:
        problems.add(line, "user_id", "is empty")
    if not row["event"]:
        problems.add(line, "event", "is empty")
    moment = None
    try:
        moment = parse_timestamp(row["timestamp"])
    except ValueError:
        problems.add(
            line, "timestamp", f"'{row['timestamp']}' is not an ISO 8601 timestamp (e.g. 2026-03-01T18:45:00Z)"
        )
    value = None
    if row.get("value"):
        try:
            value = _parse_value(row["value"])
        except ValueError as error:
            problems.add(line, "value", str(error))
    properties = None
    if row.get("properties"):
        try:
            parsed = safejson.loads(row["properties"], max_depth=MAX_PROPERTY_DEPTH)
        except safejson.JSONLimitError as error:
            parsed = None
            problems.add(line, "properties", str(error))
        else:
            if not isinstance(parsed, dict):
                problems.add(line, "properties", 'must be a JSON object like {"category": "shoes"}')
        properties = row["properties"]
    if problems.count != before:
        return None
    return row["user_id"], row["event"], moment, value, properties


def stable_bucket(external_id: str) -> int:
    """A user's random bucket (0-9999): stable across imports and machines."""
    return zlib.crc32(external_id.encode()) % 10_000


def _db_ts(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.%f")


_LOOKUP_CHUNK = 5_000


def _known_users(session, external_ids) -> dict[str, int]:
    """users.id of those of `external_ids` that exist: only the file's users are read, not everyone."""
    wanted = sorted(set(external_ids))
    known: dict[str, int] = {}
    users = models.User.__table__.c
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        known.update(session.execute(select(users.external_id, users.id).where(users.external_id.in_(chunk))).all())
    return known


def _check_every_row(
    source: Source,
    kind: str,
    problems: _Problems,
    check: Callable[[int, dict], None],
    say: Callable[[str], None],
    every: int,
) -> int:
    """The first pass of an import: every row checked (`check` notes its problems), nothing
    written; the number of rows, or one UserError listing the problems."""
    rows = 0
    for line, row in _rows(source, kind):
        if "__width__" in row:
            problems.add(line, None, row["__width__"])
            continue
        rows += 1
        check(line, row)
        if rows % every == 0:
            say(f"checked {rows:,} rows")
    problems.raise_if_any()
    if rows == 0:
        raise UserError(f"{problems.file_name}: there are no rows under the header; nothing was imported")
    return rows


@leases.exclusive("import", what="another import")
def import_users(
    engine: Engine, source: Source, progress: Callable[[str], None] | None = None, *, actor: Actor = LOCAL_ADMIN
) -> ImportResult:
    """Create or update users from a users CSV; all or nothing."""
    require(actor, Permission.IMPORT_DATA)
    say = progress or (lambda _m: None)
    name = _file_name(source)
    problems = _Problems(name)
    seen: dict[str, int] = {}

    def check(line: int, row: dict) -> None:
        if row["user_id"] in seen:
            problems.add(
                line, "user_id", f"duplicate user id '{row['user_id']}' (first on line {seen[row['user_id']]})"
            )
        elif row["user_id"]:
            seen[row["user_id"]] = line
        _clean_user(row, line, problems)

    rows = _check_every_row(source, "users", problems, check, say, every=100_000)

    created = updated = 0
    touched_external: list[str] = []
    with session_scope(engine) as session:
        known = _known_users(session, seen)
        connection = session.connection()
        before = _versions(connection)
        inserts: list[tuple] = []
        for line, row in _rows(source, "users"):
            clean = _clean_user(row, line, problems)
            assert clean is not None  # validated above
            touched_external.append(clean["external_id"])
            if clean["external_id"] in known:
                fields = {k: v for k, v in clean.items() if k != "external_id"}
                if fields:
                    session.execute(
                        models.User.__table__.update()
                        .where(models.User.id == known[clean["external_id"]])
                        .values(**fields)
                    )
                updated += 1
                continue
            platform = clean.get("platform")
            inserts.append(
                (
                    clean["external_id"],
                    clean.get("first_name"),
                    clean.get("email"),
                    platform,
                    clean.get("country"),
                    clean.get("language"),
                    clean.get("timezone"),
                    _db_ts(clean.get("created_at")),
                    clean.get("push_opt_in", False),
                    clean.get("email_opt_in", False),
                    platform is not None,
                    stable_bucket(clean["external_id"]),
                )
            )
            if len(inserts) >= CHUNK_ROWS:
                created += _insert_users(connection, inserts)
                say(f"wrote {created + updated:,} users")
        created += _insert_users(connection, inserts)
        known = _known_users(session, touched_external) if created else known
        touched = [known[external] for external in touched_external]
        say("refreshing per-user facts")
        facts.refresh_users(session, touched)
        bump_data_version(session)
        forget_demo_data(session)
        session.add(audit_entry(actor, "import", f"users from {name}", {"rows": rows, "new_users": created}))
        session.flush()
        after = _versions(session.connection())
    _update_cache(engine, before, after, touched, say)
    say(f"imported {rows:,} users ({created:,} new, {updated:,} updated)")
    return ImportResult(rows=rows, created_users=created, updated_users=updated)


_NEW_USER_COLUMNS = (
    "external_id",
    "first_name",
    "email",
    "platform",
    "country",
    "language",
    "timezone",
    "created_at",
    "push_opt_in",
    "email_opt_in",
    "has_push_token",
    "random_bucket",
)


def _insert_users(connection, rows: list[tuple]) -> int:
    count = len(rows)
    if rows:
        bulk_insert(connection, "users", _NEW_USER_COLUMNS, rows)
        rows.clear()
    return count


@leases.exclusive("import", what="another import")
def import_events(
    engine: Engine, source: Source, progress: Callable[[str], None] | None = None, *, actor: Actor = LOCAL_ADMIN
) -> ImportResult:
    """Append events from an events CSV, creating users seen only there; all or nothing."""
    require(actor, Permission.IMPORT_DATA)
    say = progress or (lambda _m: None)
    name = _file_name(source)
    problems = _Problems(name)
    user_ids: set[str] = set()

    def check(line: int, row: dict) -> None:
        if _clean_event(row, line, problems) is not None:
            user_ids.add(row["user_id"])

    rows = _check_every_row(source, "events", problems, check, say, every=200_000)

    with session_scope(engine) as session:
        connection = session.connection()
        before = _versions(connection)
        known = _known_users(session, user_ids)
        new_users = [
            (external, None, None, None, None, None, None, None, False, False, False, stable_bucket(external))
            for external in sorted(user_ids - known.keys())
        ]
        created = _insert_users(connection, new_users)
        if created:
            known = _known_users(session, user_ids)
        batch: list[tuple] = []
        written = 0
        for line, row in _rows(source, "events"):
            external, event, moment, value, properties = _clean_event(row, line, problems)
            batch.append((known[external], event, _db_ts(moment), value, properties))
            if len(batch) >= CHUNK_ROWS:
                written += _insert_events(connection, batch)
                say(f"wrote {written:,} / {rows:,} events")
        written += _insert_events(connection, batch)
        touched = [known[external] for external in user_ids]
        say("refreshing per-user facts")
        facts.refresh_users(session, touched)
        bump_data_version(session)
        forget_demo_data(session)
        session.add(audit_entry(actor, "import", f"events from {name}", {"rows": written, "new_users": created}))
        session.flush()
        after = _versions(session.connection())
    _update_cache(engine, before, after, touched, say)
    say(f"imported {written:,} events ({created:,} new users)")
    return ImportResult(rows=written, created_users=created)


def _versions(connection) -> tuple[str, int]:
    """(users version, data version) as this transaction sees them."""
    data = connection.execute(select(models.AppMeta.value).where(models.AppMeta.key == "data_version")).scalar()
    return users_version(connection), int(data or 0)


def _update_cache(
    engine: Engine, before: tuple[str, int], after: tuple[str, int], touched: list[int], say: Callable[[str], None]
) -> None:
    """Carry the columnar cache of the data before this import over to the new data, touched users only."""
    from core.segments import columnar  # segments import the importer's constants: imported here

    if columnar.carry_forward(engine, before[0], after[0], touched, scores_from=before[1], scores_to=after[1]):
        say("updated the columnar cache")


def _insert_events(connection, rows: list[tuple]) -> int:
    count = len(rows)
    if rows:
        bulk_insert(connection, "events", ("user_id", "name", "ts", "value", "properties"), rows)
        rows.clear()
    return count
