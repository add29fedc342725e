"""A tiny progress reporter for the command line."""

import sys
import time


def printer(prefix: str = ""):
    """A callable that prints progress lines with the elapsed time."""
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"{prefix}[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    return say
