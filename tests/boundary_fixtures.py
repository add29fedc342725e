"""What the boundary tests share: run the CLI as a user would, and photograph the database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, select

from core.cli import main

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line a refusal prints; fails the test when there is more (a traceback, a usage block)."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{self.err}"
        return lines[0]


def run_cli(args: list[str], capsys) -> Outcome:
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as stop:  # argparse refusals exit from inside parse_args
        code = stop.code
    captured = capsys.readouterr()
    return Outcome(int(code or 0), captured.out, captured.err)


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order: the database compared row for row."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted((tuple(map(repr, row)) for row in connection.execute(select(table))), key=repr)
            for name, table in sorted(metadata.tables.items())
        }


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def small_app(empty_app) -> Engine:
    """The CLI pointed at a small database of ours: the sample users and events, one saved segment."""
    from core import segments
    from core.importer import import_events, import_users

    import_users(empty_app, ROOT / "data" / "sample_users.csv")
    import_events(empty_app, ROOT / "data" / "sample_events.csv")
    segments.save_segment(empty_app, "Everyone", segments.empty_definition())
    return empty_app
