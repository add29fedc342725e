"""Delivery speed: one worker cycle sends a "now" campaign to N recipients over a local webhook
and over local SMTP; prints one JSON line per channel.

    .venv/bin/python -m tests.delivery_benchmark --recipients 50000

Builds a throw-away SQLite database of N demo users (every one given an address and opted in, so
all are reachable) and launches the campaign. Then, each in its own process as the worker's two
steps: the dispatch (`python -m core dispatch`) and the delivery (core.delivery.outbox.deliver_due
with the configured connector). It measures messages/s at the receiver (first to last message
received), each step's wall time and peak memory (VmHWM, the process's own high-water mark:
ru_maxrss would include this parent's size, inherited across fork and exec); the worker's peak
is the larger of the two, since one worker process runs both. The receivers are the
ones the tests use (an http.server and aiosmtpd); it lives beside the tests because aiosmtpd is
a test dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import text

from core import db
from core.campaigns import CampaignSpec, launch
from core.seed import generate
from tests.delivery_servers import SECRET, start_webhook_receiver

EVERYONE = {
    "version": 1,
    "match": "all",
    "groups": [{"match": "all", "filters": [{"type": "platform", "values": ["iOS", "Android", "Web"]}]}],
    "exclude": [],
}


class _Counter:
    """An SMTP handler that only counts (parsing 50,000 messages would time the receiver)."""

    def __init__(self):
        self.count = 0
        self.first = self.last = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        now = time.monotonic()
        with self.lock:
            self.count += 1
            self.first = self.first or now
            self.last = now
        return "250 OK"


_DISPATCH = """
import sys
from core.cli import main
code = main(["dispatch"])
print("PEAK_KB", open("/proc/self/status").read().split("VmHWM:")[1].split()[0], file=sys.stderr)
sys.exit(code)
"""
_DELIVERY = """
import sys
from core.db import get_engine
from core.delivery import config, outbox
from core.timeutil import utcnow
engine = get_engine()
report = outbox.deliver_due(engine, utcnow(), config.connectors_for(engine, config.load_settings(engine)))
print("PEAK_KB", open("/proc/self/status").read().split("VmHWM:")[1].split()[0], file=sys.stderr)
sys.exit(0 if report.sent else 1)
"""


class _Stamped(list):
    """The webhook receiver's list of accepted ids, noting when each arrived."""

    def __init__(self):
        super().__init__()
        self.stamps: list[float] = []

    def append(self, item):
        self.stamps.append(time.monotonic())
        super().append(item)


def _step(script: str, url: str, env: dict) -> tuple[float, float]:
    """Run one worker step in its own process; (wall seconds, peak RSS in MB)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=db.ROOT,
        env={**os.environ, "DATABASE_URL": url, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    peak_kb = int(done.stderr.rsplit("PEAK_KB ", 1)[1].split()[0])
    return wall, peak_kb / 1024


def measure(recipients: int) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="likely-delivery-bench-"))
    results = []
    try:
        for channel in ("webhook", "smtp"):
            url = f"sqlite:///{workdir / f'{channel}.db'}"
            engine = db.make_engine(url)
            db.init_db(engine)
            generate(engine, users=recipients, seed=3)
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "UPDATE users SET email = 'user' || id || '@example.com', email_opt_in = :t, "
                        "push_opt_in = :t, has_push_token = :t"
                    ),
                    {"t": True},
                )
            spec = CampaignSpec(
                name=f"Bench {channel}",
                audience=EVERYONE,
                channel="email" if channel == "smtp" else "push",
                message={"title": "Hello {{ first_name }}", "body": "We have something new for you."},
            )
            launch(spec, engine)
            if channel == "webhook":
                receiver, server = start_webhook_receiver()
                env = {"LIKELY_WEBHOOK_URL": receiver.url, "LIKELY_WEBHOOK_SECRET": SECRET}
                receiver.accepted = _Stamped()
                steps = _step(_DISPATCH, url, env), _step(_DELIVERY, url, env)
                server.shutdown()
                sent, first, last = len(receiver.accepted), receiver.accepted.stamps[0], receiver.accepted.stamps[-1]
            else:
                counter = _Counter()
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    port = sock.getsockname()[1]
                controller = Controller(counter, hostname="127.0.0.1", port=port)
                controller.start()
                env = {"LIKELY_SMTP_URL": f"smtp://127.0.0.1:{port}", "LIKELY_SMTP_FROM": "bench@example.com"}
                steps = _step(_DISPATCH, url, env), _step(_DELIVERY, url, env)
                controller.stop()
                sent, first, last = counter.count, counter.first, counter.last
            engine.dispose()
            results.append(
                {
                    "channel": channel,
                    "recipients": recipients,
                    "sent": sent,
                    "messages_per_s": round(sent / max(last - first, 1e-9)),
                    "dispatch_s": round(steps[0][0], 1),
                    "delivery_s": round(steps[1][0], 1),
                    "dispatch_peak_mb": round(steps[0][1]),
                    "delivery_peak_mb": round(steps[1][1]),
                    "worker_peak_mb": round(max(steps[0][1], steps[1][1])),
                }
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    args = parser.parse_args()
    for line in measure(args.recipients):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
