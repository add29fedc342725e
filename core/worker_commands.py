"""CLI: `worker [--once]` runs campaigns by itself; `serve` starts the app and the worker together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from core.db import ROOT, get_engine


def register(subparsers) -> None:
    worker = subparsers.add_parser(
        "worker", help="dispatch and deliver due campaign messages every minute, refresh scores daily"
    )
    worker.add_argument("--once", action="store_true", help="run one cycle and exit (for cron and tests)")
    worker.set_defaults(handler=_worker)

    serve = subparsers.add_parser("serve", help="start the app and the worker together; Ctrl-C stops both")
    serve.add_argument("--port", type=int, default=8501, help="the app's port (default 8501)")
    serve.add_argument("--address", default="localhost", help="the app's address (default localhost)")
    serve.set_defaults(handler=_serve)


def _worker(args) -> int:
    from core.worker import install_signal_handlers, run_worker

    stop = threading.Event()
    restore = install_signal_handlers(stop)
    try:
        return run_worker(get_engine(), once=args.once, stop=stop)
    finally:
        restore()


def app_command(port: int, address: str = "localhost", *options: str) -> list[str]:
    """The web server's command line (server.py: the app and its download route), run from ROOT."""
    return [
        sys.executable, "-m", "streamlit", "run", "server.py",
        "--server.address", address, "--server.port", str(port), *options,
    ]  # fmt: skip


def _serve(args) -> int:
    """Two child processes; a signal to this one is passed to both, and one ending ends the other."""
    app = app_command(args.port, args.address)
    worker = [sys.executable, "-m", "core", "worker"]
    children = [subprocess.Popen(command, cwd=ROOT, env=os.environ.copy()) for command in (app, worker)]
    stopping = threading.Event()

    def forward(signum, _frame):
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    print(
        f"Likely: the app on http://{args.address}:{args.port} and the campaign worker; Ctrl-C stops both", flush=True
    )
    while not any(child.poll() is not None for child in children):
        stopping.wait(0.5)
    forward(signal.SIGTERM, None)
    codes = [child.wait() for child in children]
    return 0 if stopping.is_set() else max(codes)
