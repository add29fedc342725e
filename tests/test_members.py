"""Members: the first sign-in into an empty workspace makes exactly one admin, even when several
people arrive at the same instant; admins remove members, never the last admin."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from core import access, models

RACERS = 6
ROUNDS = 15


def _admins(engine) -> list[str]:
    table = models.Member.__table__
    with engine.connect() as connection:
        return connection.execute(sa.select(table.c.email).where(table.c.role == "admin")).scalars().all()


def _race(engine, emails: list[str]) -> list[access.Actor]:
    """Everyone in `emails` signs in for the first time at once; what each was given."""
    start = threading.Barrier(len(emails))
    given: dict[int, access.Actor] = {}
    failures: list[BaseException] = []

    def arrive(place: int, email: str) -> None:
        start.wait()
        try:
            given[place] = access.sign_in(email, engine)
        except BaseException as error:  # noqa: BLE001 - reported below, with the round
            failures.append(error)

    threads = [threading.Thread(target=arrive, args=pair) for pair in enumerate(emails)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    return [given[place] for place in range(len(emails))]


def test_people_signing_in_to_an_empty_workspace_at_once_make_exactly_one_admin(empty_engine):
    for round_ in range(ROUNDS):
        with empty_engine.begin() as connection:
            connection.execute(sa.delete(models.Member))
        emails = [f"racer{i}-{round_}@example.com" for i in range(RACERS)]
        actors = _race(empty_engine, emails)
        admins = [actor.email for actor in actors if actor.role == "admin"]
        assert len(admins) == 1, f"round {round_}: {admins}"
        assert _admins(empty_engine) == admins
        assert sorted(actor.role for actor in actors) == ["admin"] + ["viewer"] * (RACERS - 1)


def test_one_person_signing_in_from_several_tabs_at_once_is_one_member(empty_engine):
    actors = _race(empty_engine, ["ann@example.com"] * 4)
    assert set(actors) == {access.Actor("ann@example.com", "admin")}
    assert access.members(empty_engine)["email"].tolist() == ["ann@example.com"]
