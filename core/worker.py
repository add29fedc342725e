"""The worker: campaigns that run themselves.

Every cycle (a minute by default, LIKELY_WORKER_INTERVAL seconds) the worker
1. dispatches what is due (core.campaigns.dispatch: each zone at its local time),
2. delivers the outbox's due messages (core.delivery.outbox),
3. once a day from LIKELY_REFRESH_HOUR (company time zone; default 4), refreshes every full
   prediction's scores, retraining the ones that are due (core.predictions.refresh_scores).

Only one worker acts: it holds the lease "worker" (core.leases), renewed while it runs. A
second worker waits and takes over when the first stops or its lease expires after a crash.
The acting worker stores its heartbeat, last and next run and recent errors in app_meta
(`worker_status`), which the Data page shows and the sidebar checks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from core import leases
from core.campaigns import demo_response
from core.db import session_scope
from core.delivery import config as delivery_config
from core.delivery import outbox
from core.errors import UserError
from core.models import AppMeta, Campaign
from core.timeutil import utcnow

STATUS_KEY = "worker_status"
LEASE_NAME = "worker"
RECENT_ERRORS = 10
HEARTBEAT_EVERY = timedelta(seconds=5)
DEFAULT_INTERVAL = 60.0
DEFAULT_REFRESH_HOUR = 4


def interval_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("LIKELY_WORKER_INTERVAL", DEFAULT_INTERVAL)))
    except ValueError:
        raise UserError("LIKELY_WORKER_INTERVAL must be a number of seconds") from None


def refresh_hour() -> int:
    value = os.environ.get("LIKELY_REFRESH_HOUR", str(DEFAULT_REFRESH_HOUR))
    if not value.isdigit() or not 0 <= int(value) <= 23:
        raise UserError("LIKELY_REFRESH_HOUR must be an hour from 0 to 23")
    return int(value)


def lease_seconds(interval: float) -> float:
    """How long the worker's lease lasts unrenewed: a crashed worker is replaced after this."""
    override = os.environ.get("LIKELY_WORKER_LEASE_SECONDS")
    return float(override) if override else max(30.0, 3 * interval)


# ---------------------------------------------------------------- status
@dataclass
class WorkerStatus:
    owner: str = ""
    heartbeat: datetime | None = None
    last_run: datetime | None = None
    next_run: datetime | None = None
    interval: float = DEFAULT_INTERVAL
    last_cycle: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)  # {"at": iso, "error": text}, newest first
    last_refresh: str | None = None  # the company-zone date scores were last refreshed

    def stale(self, now: datetime) -> bool:
        """True when no worker has shown life for longer than two cycles past its next run."""
        if self.heartbeat is None:
            return True
        grace = timedelta(seconds=max(2 * self.interval, 120))
        return now > max(self.heartbeat, self.next_run or self.heartbeat) + grace

    def to_json(self) -> str:
        document = asdict(self)
        for name in ("heartbeat", "last_run", "next_run"):
            document[name] = document[name].isoformat() if document[name] else None
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> WorkerStatus:
        document = json.loads(text)
        for name in ("heartbeat", "last_run", "next_run"):
            document[name] = datetime.fromisoformat(document[name]) if document.get(name) else None
        return cls(**{k: v for k, v in document.items() if k in cls.__dataclass_fields__})


def read_status(engine: Engine) -> WorkerStatus | None:
    with session_scope(engine) as session:
        row = session.get(AppMeta, STATUS_KEY)
        text = row.value if row else None
    if not text:
        return None
    try:
        return WorkerStatus.from_json(text)
    except (ValueError, TypeError):
        return None  # unreadable: shown as "no worker seen", which is what it means for the user


def write_status(engine: Engine, status: WorkerStatus) -> None:
    with session_scope(engine) as session:
        row = session.get(AppMeta, STATUS_KEY)
        if row is None:
            session.add(AppMeta(key=STATUS_KEY, value=status.to_json()))
        else:
            row.value = status.to_json()


def campaigns_waiting(engine: Engine) -> int:
    """Scheduled campaigns: the ones a stopped worker leaves unsent."""
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(Campaign.status == "scheduled")).scalar() or 0


def stale_warning(engine: Engine, now: datetime | None = None) -> str | None:
    """The sidebar's warning when campaigns are scheduled and no worker is alive, else None
    (also when the database cannot be read: the page itself reports that, in its own words)."""
    now = now or utcnow()
    try:
        status = read_status(engine)
        if (status is not None and not status.stale(now)) or not campaigns_waiting(engine):
            return None
    except SQLAlchemyError:
        return None
    if status is None or status.heartbeat is None:
        return "Campaigns are not being sent: no worker has run. Start it with `make run` or `python -m core worker`."
    return (
        f"Campaigns are not being sent: the worker's last sign of life was {status.heartbeat:%Y-%m-%d %H:%M} UTC. "
        "Start it with `make run` or `python -m core worker`."
    )


# ---------------------------------------------------------------- one cycle
@dataclass
class CycleReport:
    """One cycle: what dispatch wrote, what delivery did (its own report), the demo and the refresh."""

    dispatched: int = 0
    delivered: outbox.DeliveryReport = field(default_factory=outbox.DeliveryReport)
    demo_conversions: int = 0  # events the demo's response model wrote (demo databases only)
    refreshed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{self.dispatched:,} written to the outbox",
            f"{self.delivered.sent:,} sent",
            f"{self.delivered.failed:,} failed",
            f"{self.delivered.retrying:,} to retry",
        ]
        if self.delivered.expired:
            parts.append(f"{self.delivered.expired:,} expired")
        if self.refreshed:
            parts.append(f"scores refreshed: {', '.join(self.refreshed)}")
        return ", ".join(parts)


def _refresh_due(engine: Engine, now: datetime, status: WorkerStatus, hour: int) -> str | None:
    """The company-zone date to refresh for, when today's refresh is due and not done."""
    from core.campaigns.store import company_timezone

    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(company_timezone(engine)))
    today = local.date().isoformat()
    return today if local.hour >= hour and status.last_refresh != today else None


def refresh_predictions(engine: Engine) -> tuple[list[str], list[str]]:
    """Refresh every full prediction's scores (retraining when due); (names refreshed, errors)."""
    from core.predictions import list_predictions, refresh_scores

    done, errors = [], []
    for prediction in list_predictions(engine):
        if prediction.kind != "full":
            continue
        try:
            refresh_scores(engine, prediction.id)
            done.append(prediction.name)
        except Exception as error:  # noqa: BLE001 - one prediction's failure must not stop the others
            errors.append(f"refreshing '{prediction.name}': {error}")
    return done, errors


def run_cycle(
    engine: Engine,
    now: datetime | None = None,
    status: WorkerStatus | None = None,
    keep_going: Callable[[], bool] = lambda: True,
    clock: Callable[[], datetime] | None = None,
    connectors: dict | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> CycleReport:
    """One cycle at `now`: dispatch, deliver, and the daily refresh when due. Never raises for a
    campaign's or a provider's problem: those are in the report's errors."""
    from core.campaigns import dispatch

    now = now or utcnow()
    status = status or WorkerStatus()
    report = CycleReport()
    try:
        written = dispatch(engine, until=now)
        report.dispatched = written.written
        report.errors.extend(f"campaign {c}: {p}" for c, p in written.problems.items())
    except leases.LeaseBusy as busy:
        report.errors.append(f"dispatch skipped this cycle: {busy}")
    except Exception as error:  # noqa: BLE001 - the worker outlives any one failure
        report.errors.append(f"dispatch: {_describe(error)}")
    opened = connectors is None
    try:
        if connectors is None:
            connectors = delivery_config.connectors_for(engine, delivery_config.load_settings(engine))

        def after_batch(_part) -> None:
            if heartbeat is not None:
                heartbeat()

        report.delivered = outbox.deliver_due(engine, now, connectors, keep_going, clock, on_batch=after_batch)
        report.errors.extend(f"{count:,} message(s): {error}" for error, count in report.delivered.errors.items())
    except Exception as error:  # noqa: BLE001
        report.errors.append(f"delivery: {_describe(error)}")
    finally:
        if opened and connectors:
            for connector in {id(c): c for c in connectors.values()}.values():
                connector.close()
    try:  # the demo answers its messages, so Results tell a true story with nobody at a terminal
        report.demo_conversions = demo_response.respond(engine, now)
    except Exception as error:  # noqa: BLE001
        report.errors.append(f"demo responses: {_describe(error)}")
    try:
        day = _refresh_due(engine, now, status, refresh_hour())
        if day is not None:
            report.refreshed, errors = refresh_predictions(engine)
            report.errors.extend(errors)
            status.last_refresh = day
    except Exception as error:  # noqa: BLE001
        report.errors.append(f"refresh: {_describe(error)}")
    return report


def _describe(error: Exception) -> str:
    if isinstance(error, UserError):
        return str(error)
    return f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- the long-running process
def run_worker(
    engine: Engine,
    once: bool = False,
    stop: threading.Event | None = None,
    say: Callable[[str], None] = lambda line: print(line, flush=True),
) -> int:
    """Cycle until `stop` is set (SIGTERM / Ctrl-C), or once. Returns the exit code."""
    stop = stop or threading.Event()
    interval = interval_seconds()
    seconds = lease_seconds(interval)
    owner = leases.new_owner("worker")
    held: leases.Held | None = None
    waiting_said = False
    try:
        while not stop.is_set():
            if held is None or held.lost.is_set():
                if held is not None:
                    say("worker: the lease was lost (this process stalled); waiting to take it again")
                    held = None
                if leases.try_acquire(engine, LEASE_NAME, owner, seconds):
                    held = leases.Held(engine, LEASE_NAME, owner, seconds)
                    held.start_renewing()
                    say(f"worker: acting as {owner} (a cycle every {interval:g} s)")
                else:
                    if not waiting_said:
                        say(f"worker: waiting: {leases.busy_message(engine, LEASE_NAME, 'another worker')}")
                        waiting_said = True
                    if once:
                        return 0
                    stop.wait(min(interval, seconds / 3))
                    continue
            try:
                _cycle(engine, held, interval, stop, say)
            except Exception as error:  # noqa: BLE001 - e.g. the database restarting: try again next cycle
                say(f"worker: the cycle stopped early: {_describe(error)}")
            if once:
                return 0
            stop.wait(interval)
        return 0
    finally:
        if held is not None:
            held.stop()
            say("worker: stopped")


def _cycle(engine, held: leases.Held, interval: float, stop, say) -> None:
    status = read_status(engine) or WorkerStatus()
    status.owner, status.interval = f"{socket.gethostname()} pid {os.getpid()}", interval
    started = utcnow()

    def heartbeat() -> None:
        moment = utcnow()
        if status.heartbeat is None or moment - status.heartbeat >= HEARTBEAT_EVERY:  # not a write per batch
            status.heartbeat = moment
            write_status(engine, status)

    status.heartbeat = None
    heartbeat()
    report = run_cycle(
        engine,
        now=started,
        status=status,
        keep_going=lambda: not stop.is_set() and not held.lost.is_set(),
        clock=utcnow,
        heartbeat=heartbeat,
    )
    finished = utcnow()
    status.heartbeat, status.last_run = finished, finished
    status.next_run = finished + timedelta(seconds=interval)
    status.last_cycle = {"at": finished.isoformat(timespec="seconds"), "summary": report.summary()}
    for error in report.errors:
        status.errors.insert(0, {"at": finished.isoformat(timespec="seconds"), "error": error})
    status.errors = status.errors[:RECENT_ERRORS]
    write_status(engine, status)
    say(f"worker: {finished:%Y-%m-%d %H:%M:%S} {report.summary()}")
    for error in report.errors:
        say(f"worker: problem: {error}")


def install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and Ctrl-C end the current batch cleanly, then the process; returns a function
    that puts the previous handlers back."""

    def handle(signum, _frame):
        stop.set()

    previous = {number: signal.signal(number, handle) for number in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(number, handler) for number, handler in previous.items()]
