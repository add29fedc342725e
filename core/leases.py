"""Named leases in the database: one worker, one dispatch, one import at a time.

A lease is a row of `leases` (name, owner, acquired_at, expires_at). Taking it is one
conditional UPDATE - "make me the owner where nobody holds it, or the holder's time ran out,
or I already hold it" - so the database decides who wins: SQLite runs writes one at a time
(the row update takes its write lock), PostgreSQL locks the row and re-checks the condition
for the second writer after the first commits. Exactly one caller sees a changed row.

A holder renews its lease from a background thread every third of the lease's time, so a
long piece of work keeps it; a process that dies stops renewing and its lease is taken over
once it expires. Nothing else is kept open across the work: on SQLite a transaction held open
for minutes would block every other writer, the work's own included.

What this guarantees: two live processes never both hold a lease (the clocks of the hosts
agree within the lease's time). A holder frozen for longer than its lease (a suspended
laptop) loses it; `Held.lost` says so and the work stops at its next check.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.db import get_engine
from core.errors import UserError
from core.models import Lease
from core.timeutil import utcnow

DEFAULT_SECONDS = 60.0
POLL_SECONDS = 0.2
_RELEASED = datetime(1970, 1, 1)


class LeaseBusy(UserError):
    """Someone else holds the lease (the message says who and since when)."""


def new_owner(purpose: str) -> str:
    """A name no other holder has: host, process, purpose and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{purpose}:{uuid.uuid4().hex[:8]}"


def try_acquire(engine: Engine, name: str, owner: str, seconds: float, now: datetime | None = None) -> bool:
    """Take or renew lease `name` for `seconds`; True when `owner` holds it afterwards."""
    now = now or utcnow()
    table = Lease.__table__
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as connection:
        # The row exists once; creating it never takes the lease (it starts expired).
        connection.execute(
            dialect.insert(table)
            .values(name=name, owner="", acquired_at=_RELEASED, expires_at=_RELEASED)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        changed = connection.execute(
            update(table)
            .where(table.c.name == name, or_(table.c.owner == owner, table.c.expires_at <= now))
            .values(
                owner=owner,
                expires_at=now + timedelta(seconds=seconds),
                acquired_at=case((table.c.owner == owner, table.c.acquired_at), else_=now),
            )
        ).rowcount
    return changed == 1


def release(engine: Engine, name: str, owner: str) -> None:
    """Give the lease back at once (only its owner can): its row goes, so a run leaves no trace behind."""
    table = Lease.__table__
    with engine.begin() as connection:
        connection.execute(delete(table).where(table.c.name == name, table.c.owner == owner))


@dataclass(frozen=True)
class Holder:
    owner: str
    acquired_at: datetime
    expires_at: datetime


def holder(engine: Engine, name: str, now: datetime | None = None) -> Holder | None:
    """Who holds lease `name` now (None when nobody does)."""
    now = now or utcnow()
    table = Lease.__table__
    with engine.connect() as connection:
        row = connection.execute(
            select(table.c.owner, table.c.acquired_at, table.c.expires_at).where(table.c.name == name)
        ).first()
    if row is None or row.expires_at <= now:
        return None
    return Holder(row.owner, row.acquired_at, row.expires_at)


@dataclass
class Held:
    """A lease this process holds, renewed in the background until `stop()`."""

    engine: Engine
    name: str
    owner: str
    seconds: float
    lost: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not try_acquire(self.engine, self.name, self.owner, self.seconds):
                    self.lost.set()
                    return
            except Exception:  # noqa: BLE001 - a failed renewal is retried; expiry decides in the end
                continue

    def stop(self, release_it: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if release_it and not self.lost.is_set():
            release(self.engine, self.name, self.owner)


def busy_message(engine: Engine, name: str, what: str) -> str:
    current = holder(engine, name)
    if current is None:
        return f"{what} is running; try again when it finishes"
    return (
        f"{what} is running (since {current.acquired_at:%Y-%m-%d %H:%M:%S} UTC, {current.owner.split(':')[0]}); "
        "try again when it finishes"
    )


@contextmanager
def hold(
    engine: Engine,
    name: str,
    what: str,
    wait: float = 0.0,
    seconds: float = DEFAULT_SECONDS,
    owner: str | None = None,
) -> Iterator[Held]:
    """Hold lease `name` for the block, waiting up to `wait` seconds for it.

    Raises LeaseBusy ("<what> is running ...") when it stays taken; nothing has run then.
    """
    owner = owner or new_owner(name)
    deadline = time.monotonic() + wait
    while not try_acquire(engine, name, owner, seconds):
        if time.monotonic() >= deadline:
            raise LeaseBusy(busy_message(engine, name, what))
        time.sleep(POLL_SECONDS)
    held = Held(engine, name, owner, seconds)
    held.start_renewing()
    try:
        yield held
    finally:
        held.stop()


def exclusive(name: str, what: str) -> Callable:
    """Decorate `function(engine, ...)` to run under lease `name`; callers may pass `lease_wait=seconds`."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(*args, lease_wait: float = 0.0, **kwargs):
            engine = (args[0] if args else kwargs.get("engine")) or get_engine()
            with hold(engine, name, what, wait=lease_wait):
                return function(*args, **kwargs)

        return run

    return decorate
