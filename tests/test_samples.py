"""The sample CSVs shipped in data/ import cleanly (they are what the README shows)."""

from pathlib import Path

from core.importer import import_events, import_users

DATA = Path(__file__).resolve().parent.parent / "data"


def test_sample_files_import(empty_engine):
    assert import_users(empty_engine, DATA / "sample_users.csv").created_users == 4
    result = import_events(empty_engine, DATA / "sample_events.csv")
    assert (result.rows, result.created_users) == (7, 1)
