"""Progress lines: a long step never leaves the terminal silent."""

from __future__ import annotations

import re
import threading
import time

from core.progress import heartbeat

STILL = re.compile(r"^still generating the demo database \(\d+ s so far\)$")


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_a_silent_step_says_it_is_still_running_until_it_ends():
    lines: list[str] = []
    with heartbeat(lines.append, "generating the demo database", every=0.05):
        _wait_for(lambda: len(lines) >= 2)
    ended_with = len(lines)
    time.sleep(0.3)
    assert lines[:2] and all(STILL.match(line) for line in lines[:2])
    assert len(lines) == ended_with  # nothing after the block


def test_the_step_own_lines_pass_through_and_reset_the_silence():
    lines: list[str] = []
    with heartbeat(lines.append, "generating the demo database", every=3600) as say:
        say("generated 10,000 / 50,000 users")
        say("refreshing per-user facts")
    assert lines == ["generated 10,000 / 50,000 users", "refreshing per-user facts"]


def test_no_thread_outlives_the_step():
    with heartbeat(lambda _line: None, "training", every=0.05):
        pass
    assert not [t for t in threading.enumerate() if t.name == "progress-heartbeat"]
