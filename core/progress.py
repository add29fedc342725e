"""A tiny progress reporter for the command line."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Say = Callable[[str], None]


def printer(prefix: str = ""):
    """A callable that prints progress lines with the elapsed time."""
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"{prefix}[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    return say


@contextmanager
def heartbeat(say: Say, doing: str, every: float = 5.0) -> Iterator[Say]:
    """A progress callback for a long step whose own lines may be far apart.

    Lines given to the callback pass straight to `say`; whenever `every` seconds go by without a
    line, one more says the step is still running and for how long (e.g. "still generating the demo
    database (15 s so far)"), so a terminal never sits silent. Lines stop when the block ends.
    """
    started = time.monotonic()
    last_line = [started]
    lock = threading.Lock()
    done = threading.Event()

    def relay(message: str) -> None:
        with lock:
            last_line[0] = time.monotonic()
            say(message)

    def watch() -> None:
        while not done.wait(min(every, 0.5)):
            with lock:
                now = time.monotonic()
                if now - last_line[0] >= every and not done.is_set():
                    last_line[0] = now
                    say(f"still {doing} ({now - started:.0f} s so far)")

    watcher = threading.Thread(target=watch, name="progress-heartbeat", daemon=True)
    watcher.start()
    try:
        yield relay
    finally:
        done.set()
        watcher.join()
