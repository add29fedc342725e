"""Many sessions at once: real threads on one database (SQLite file or PostgreSQL).

Streamlit serves every browser session from a thread of one process, so core must keep
every write when sessions save at the same moment, and turn conflicting edits into a
clear message instead of a silent overwrite.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core import segments
from core.campaigns import CampaignSpec, Message, get_campaign, save_draft
from core.errors import UserError
from core.importer import import_events
from core.timeutil import utcnow
from tests.definitions import LAPSED_2_WEEKS as LAPSED


def _together(count: int, work):
    """Run work(i) for i in range(count) on as many threads, released at the same instant."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        try:
            return work(i)
        except UserError as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_sessions_saving_different_segments_at_once_keep_every_one(demo_engine):
    results = _together(8, lambda i: segments.save_segment(demo_engine, f"Lapsed {i}", LAPSED))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sorted(s.name for s in segments.list_segments(demo_engine)) == sorted(f"Lapsed {i}" for i in range(8))


def test_sessions_saving_the_same_name_at_once_get_one_segment_and_clear_errors(demo_engine):
    results = _together(6, lambda i: segments.save_segment(demo_engine, "Lapsed users - 2 weeks", LAPSED))
    saved = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, UserError)]
    assert len(saved) == 1 and len(refused) == 5
    assert all("already exists" in str(error) for error in refused)
    assert [s.name for s in segments.list_segments(demo_engine)] == ["Lapsed users - 2 weeks"]


def test_two_sessions_editing_one_segment_cannot_overwrite_each_other(demo_engine):
    saved = segments.save_segment(demo_engine, "Shared", LAPSED)
    edits = [segments.definition_of({"type": "platform", "values": [platform]}) for platform in ("iOS", "Android")]
    results = _together(
        2, lambda i: segments.update_segment(demo_engine, saved.id, edits[i], expected_version=saved.version)
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, UserError)]
    assert len(winners) == 1 and len(losers) == 1
    assert "changed by someone else" in str(losers[0])
    stored = segments.get_segment(demo_engine, saved.id)
    assert stored.definition == winners[0].definition
    assert stored.version == saved.version + 1


def test_two_sessions_editing_one_campaign_draft_cannot_overwrite_each_other(demo_engine):
    spec = CampaignSpec(name="Lapsed user message - 2 weeks", audience=LAPSED, platforms=["iOS"])
    campaign_id = save_draft(spec, demo_engine)
    _, row = get_campaign(campaign_id, demo_engine)
    version = row["version"]
    titles = ["We miss you", "Come back"]

    def edit(i):
        changed = spec.model_copy(update={"message": Message(title=titles[i], body="Hi {{ first_name }}")})
        return save_draft(changed, demo_engine, campaign_id, expected_version=version)

    results = _together(2, edit)
    losers = [r for r in results if isinstance(r, UserError)]
    assert len(losers) == 1
    assert "changed" in str(losers[0]) and "reload" in str(losers[0])
    stored, row = get_campaign(campaign_id, demo_engine)
    assert stored.message.title in titles
    assert row["version"] == version + 1


def test_reading_while_an_import_runs_sees_before_or_after_never_a_mix(demo_engine, tmp_path):
    everyone = segments.empty_definition()
    before = segments.count(everyone, demo_engine)
    rows = "".join(f"imported-{i},session,2026-01-01T10:00:00Z\n" for i in range(3_000))
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp\n" + rows)
    seen: set[int] = set()
    stop = threading.Event()
    failures: list[BaseException] = []

    def reader():
        while not stop.is_set():
            try:
                seen.add(segments.count(everyone, demo_engine))
            except BaseException as error:  # noqa: BLE001 - any failure fails the test
                failures.append(error)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        import_events(demo_engine, path)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures
    assert seen <= {before, before + 3_000}
    assert segments.count(everyone, demo_engine) == before + 3_000


@pytest.mark.parametrize("workers", [4])
def test_many_sessions_counting_share_one_loaded_store(demo_engine, workers):
    now = utcnow()  # one instant for all: "2-3 weeks ago" moves with the clock
    counts = _together(workers, lambda i: segments.count(LAPSED, demo_engine, now))
    assert len(set(counts)) == 1 and counts[0] > 0
