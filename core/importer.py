"""Bring your own data: import users and events from CSV, all or nothing.

Each import reads its file twice: a first pass validates every row without writing
(streaming, so memory stays bounded), a second pass writes in chunks inside one
transaction. Any problem is reported with file, line and column, and nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO
from zoneinfo import available_timezones

from sqlalchemy import Engine, select

from core import facts, models
from core.access import LOCAL_ADMIN, Actor, Permission, audit_entry, forget_demo_data, require
from core.db import bulk_insert, bump_data_version, session_scope
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


def _rows(source: Source, kind: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; raises UserError on a bad header or encoding."""
    name = _file_name(source)
    allowed = USER_COLUMNS if kind == "users" else EVENT_COLUMNS
    handle = _open_text(source)
    try:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except UnicodeDecodeError:
            raise UserError(f"{name}, line 1: the file is not UTF-8 text; save it as UTF-8 CSV") from None
        except csv.Error as error:
            raise UserError(f"{name}, line 1: {error}") from None
        if not header or not any(cell.strip() for cell in header):
            raise UserError(f"{name}: the file is empty; expected a header line with {', '.join(REQUIRED[kind])}")
        header = [cell.strip() for cell in header]
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
        line = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise UserError(
                    f"{name}, line {reader.line_num + 1}: not UTF-8 text; save the file as UTF-8 CSV"
                ) from None
            except csv.Error as error:
                raise UserError(f"{name}, line {reader.line_num}: {error}") from None
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                yield line, {"__width__": f"has {len(cells)} fields, the header has {len(header)}"}
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
            value = float(row["value"])
            if not math.isfinite(value):
                raise ValueError
        except ValueError:
            problems.add(line, "value", f"'{row['value']}' is not a number")
    properties = None
    if row.get("properties"):
        try:
            parsed = json.loads(row["properties"])
        except json.JSONDecodeError:
            parsed = None
            problems.add(line, "properties", "is not valid JSON")
        if parsed is not None and not isinstance(parsed, dict):
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


def _known_users(session) -> dict[str, int]:
    return dict(session.execute(select(models.User.external_id, models.User.id)).all())


def import_users(
    engine: Engine, source: Source, progress: Callable[[str], None] | None = None, *, actor: Actor = LOCAL_ADMIN
) -> ImportResult:
    """Create or update users from a users CSV; all or nothing."""
    require(actor, Permission.IMPORT_DATA)
    say = progress or (lambda _m: None)
    name = _file_name(source)
    problems = _Problems(name)
    seen: dict[str, int] = {}
    rows = 0
    for line, row in _rows(source, "users"):
        if "__width__" in row:
            problems.add(line, None, row["__width__"])
            continue
        rows += 1
        if row["user_id"] in seen:
            problems.add(
                line, "user_id", f"duplicate user id '{row['user_id']}' (first on line {seen[row['user_id']]})"
            )
        elif row["user_id"]:
            seen[row["user_id"]] = line
        _clean_user(row, line, problems)
        if rows % 100_000 == 0:
            say(f"checked {rows:,} rows")
    problems.raise_if_any()
    if rows == 0:
        raise UserError(f"{name}: there are no rows under the header; nothing was imported")

    created = updated = 0
    with session_scope(engine) as session:
        known = _known_users(session)
        connection = session.connection()
        inserts: list[tuple] = []
        for line, row in _rows(source, "users"):
            clean = _clean_user(row, line, problems)
            assert clean is not None  # validated above
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
        facts.refresh(session)
        bump_data_version(session)
        forget_demo_data(session)
        session.add(audit_entry(actor, "import", f"users from {name}", {"rows": rows, "new_users": created}))
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


def import_events(
    engine: Engine, source: Source, progress: Callable[[str], None] | None = None, *, actor: Actor = LOCAL_ADMIN
) -> ImportResult:
    """Append events from an events CSV, creating users seen only there; all or nothing."""
    require(actor, Permission.IMPORT_DATA)
    say = progress or (lambda _m: None)
    name = _file_name(source)
    problems = _Problems(name)
    rows = 0
    user_ids: set[str] = set()
    for line, row in _rows(source, "events"):
        if "__width__" in row:
            problems.add(line, None, row["__width__"])
            continue
        rows += 1
        if _clean_event(row, line, problems) is not None:
            user_ids.add(row["user_id"])
        if rows % 200_000 == 0:
            say(f"checked {rows:,} rows")
    problems.raise_if_any()
    if rows == 0:
        raise UserError(f"{name}: there are no rows under the header; nothing was imported")

    with session_scope(engine) as session:
        connection = session.connection()
        known = _known_users(session)
        new_users = [
            (external, None, None, None, None, None, None, None, False, False, False, stable_bucket(external))
            for external in sorted(user_ids - known.keys())
        ]
        created = _insert_users(connection, new_users)
        if created:
            known = _known_users(session)
        batch: list[tuple] = []
        written = 0
        for line, row in _rows(source, "events"):
            external, event, moment, value, properties = _clean_event(row, line, problems)
            batch.append((known[external], event, _db_ts(moment), value, properties))
            if len(batch) >= CHUNK_ROWS:
                written += _insert_events(connection, batch)
                say(f"wrote {written:,} / {rows:,} events")
        written += _insert_events(connection, batch)
        say("refreshing per-user facts")
        facts.refresh(session)
        bump_data_version(session)
        forget_demo_data(session)
        session.add(audit_entry(actor, "import", f"events from {name}", {"rows": written, "new_users": created}))
    say(f"imported {written:,} events ({created:,} new users)")
    return ImportResult(rows=written, created_users=created)


def _insert_events(connection, rows: list[tuple]) -> int:
    count = len(rows)
    if rows:
        bulk_insert(connection, "events", ("user_id", "name", "ts", "value", "properties"), rows)
        rows.clear()
    return count
