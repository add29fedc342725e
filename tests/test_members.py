"""Members: the first sign-in into an empty workspace makes exactly one admin, even when several
people arrive at the same instant; admins remove members, never the last admin."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest
import sqlalchemy as sa

from core import access, models
from core.errors import UserError

RACERS = 6
ROUNDS = 15


def _admins(engine) -> list[str]:
    table = models.Member.__table__
    with engine.connect() as connection:
        return connection.execute(sa.select(table.c.email).where(table.c.role == "admin")).scalars().all()


def _at_once(*calls: Callable[[], object]) -> list[object]:
    """Every call at the same instant, each in its own thread: what each returned, or the UserError it raised."""
    start = threading.Barrier(len(calls))
    outcomes: dict[int, object] = {}
    failures: list[BaseException] = []

    def run(place: int, call: Callable[[], object]) -> None:
        start.wait()
        try:
            outcomes[place] = call()
        except UserError as refusal:
            outcomes[place] = refusal
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    return [outcomes[place] for place in range(len(calls))]


def _race(engine, emails: list[str]) -> list[access.Actor]:
    """Everyone in `emails` signs in for the first time at once; what each was given."""
    return _at_once(*(partial(access.sign_in, email, engine) for email in emails))


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


BOSS = access.Actor("boss@example.com", "admin")


def _team(engine, *people: tuple[str, str]) -> None:
    """boss@example.com arrives first (admin), then each (email, role)."""
    access.sign_in(BOSS.email, engine)
    for email, role in people:
        access.sign_in(email, engine)
        if role != "viewer":
            access.set_role(email, role, engine, actor=BOSS)


def _members(engine) -> list[tuple[str, str]]:
    return [tuple(row) for row in access.members(engine)[["email", "role"]].itertuples(index=False)]


def _audit(engine) -> list[tuple]:
    table = models.AuditEntry.__table__
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.actor, table.c.action, table.c.target, table.c.details))
        return [tuple(row) for row in rows]


def test_an_admin_removes_a_member_and_the_audit_log_says_who_whom_and_their_role(empty_engine):
    _team(empty_engine, ("ana@example.com", "analyst"))
    access.remove_member(" ANA@example.com ", empty_engine, actor=BOSS)
    assert _members(empty_engine) == [("boss@example.com", "admin")]
    assert _audit(empty_engine)[-1] == ("boss@example.com", "remove member", "ana@example.com", {"role": "analyst"})


@pytest.mark.parametrize("role", ["viewer", "analyst", "marketer"])
def test_only_an_admin_may_remove_a_member_and_a_refusal_changes_nothing(empty_engine, role):
    _team(empty_engine, ("someone@example.com", role), ("victim@example.com", "viewer"))
    before = (_members(empty_engine), _audit(empty_engine))
    with pytest.raises(UserError) as refusal:
        access.remove_member("victim@example.com", empty_engine, actor=access.Actor("someone@example.com", role))
    assert str(refusal.value) == (
        f"someone@example.com is {'an' if role == 'analyst' else 'a'} {role}: only an admin may manage members"
    )
    assert (_members(empty_engine), _audit(empty_engine)) == before


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("boss@example.com", "boss@example.com is the only admin: make someone else admin first"),
        ("nobody@example.com", "nobody@example.com is not a member: members appear here after their first sign-in"),
    ],
)
def test_the_last_admin_and_a_stranger_cannot_be_removed(empty_engine, email, message):
    _team(empty_engine, ("ana@example.com", "analyst"))
    before = (_members(empty_engine), _audit(empty_engine))
    with pytest.raises(UserError) as refusal:
        access.remove_member(email, empty_engine, actor=BOSS)
    assert str(refusal.value) == message
    assert (_members(empty_engine), _audit(empty_engine)) == before


def test_a_removed_admin_who_signs_in_again_starts_over_as_a_viewer(empty_engine):
    _team(empty_engine, ("deputy@example.com", "admin"))
    access.remove_member("boss@example.com", empty_engine, actor=access.Actor("deputy@example.com", "admin"))
    assert access.sign_in("boss@example.com", empty_engine) == access.Actor("boss@example.com", "viewer")
    assert _members(empty_engine) == [("boss@example.com", "viewer"), ("deputy@example.com", "admin")]


def test_two_admins_removing_each_other_at_once_leave_one_admin(empty_engine):
    for round_ in range(ROUNDS):
        with empty_engine.begin() as connection:
            connection.execute(sa.delete(models.Member))
        one, other = f"one-{round_}@example.com", f"other-{round_}@example.com"
        access.sign_in(one, empty_engine)
        access.sign_in(other, empty_engine)
        access.set_role(other, "admin", empty_engine, actor=access.Actor(one, "admin"))
        outcomes = _at_once(
            partial(access.remove_member, one, empty_engine, actor=access.Actor(other, "admin")),
            partial(access.remove_member, other, empty_engine, actor=access.Actor(one, "admin")),
        )
        refusals = [str(outcome) for outcome in outcomes if isinstance(outcome, UserError)]
        assert len(_admins(empty_engine)) == 1, f"round {round_}"
        assert len(refusals) == 1 and refusals[0].endswith("is the only admin: make someone else admin first")
