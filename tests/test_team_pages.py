"""Team access through the app: a signed-in person (AppTest's `user`) meets the allow list and their role.

AppTest cannot run the OpenID Connect dance, but it seeds `st.user` and the secrets, which is all
the app reads (pages/team/access.py is the one place that does).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from core import access, models
from core.access import Actor
from core.campaigns import get_campaign
from core.campaigns.dispatch import dispatch
from tests.campaign_fixtures import daily, make_campaign
from tests.definitions import IOS_ONLY
from tests.prediction_fixtures import trained_app, trained_db_template, trained_engine  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "test-secret",
    "client_id": "likely",
    "client_secret": "secret",
    "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
}
ALLOWED = {"allowed_domains": ["example.com"], "allowed_emails": ["contractor@freelance.io"]}


def signed_in(email: str, page: str | None = None, **user) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["auth"] = AUTH
    at.secrets["access"] = ALLOWED
    at.user = {"is_logged_in": True, "email": email, **user}
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def member_as(engine, email: str, role: str) -> None:
    """Make `email` a member with `role` (the admin boss@example.com arrives first)."""
    access.sign_in("boss@example.com", engine)
    access.sign_in(email, engine)
    if role != "viewer":
        access.set_role(email, role, engine, actor=Actor("boss@example.com", "admin"))


def member_rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(sa.select(models.Member.email, models.Member.role).order_by("email")).all()


def audit_rows(engine) -> list[tuple]:
    table = models.AuditEntry.__table__
    with engine.connect() as connection:
        return connection.execute(sa.select(table.c.actor, table.c.action, table.c.target).order_by(table.c.id)).all()


@pytest.mark.parametrize(
    ("email", "user"),
    [
        ("eve@elsewhere.io", {}),
        ("eve@example.com.elsewhere.io", {}),
        ("ann@example.com", {"email_verified": False}),
        ("", {}),
    ],
    ids=["other domain", "look-alike domain", "unverified email", "no email"],
)
def test_a_person_outside_the_allow_list_sees_the_refusal_and_nothing_else(app_database, email, user):
    at = signed_in(email, **user)
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"{email or 'This account'} is not allowed into this workspace. "
        "Ask an admin to add your address or your company's domain to the allowed list."
    ]
    assert [b.label for b in at.button] == ["Log out"]
    assert [t.value for t in at.title] == ["Likely"] and not at.sidebar.markdown  # no page, no navigation
    assert member_rows(app_database) == []


@pytest.mark.parametrize("email", ["ann@example.com", "Ann@Example.COM", "contractor@freelance.io"])
def test_an_allowed_person_gets_in(app_database, email):
    at = signed_in(email)
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Predictions"]
    assert at.caption[0].value.startswith(f"Signed in as {email.lower()} (")


def test_with_auth_but_no_allow_list_nobody_gets_in(app_database):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": "ann@example.com"}
    at.run()
    assert "is not allowed into this workspace" in at.error[0].value
    assert [t.value for t in at.title] == ["Likely"]


def test_the_first_person_into_an_empty_workspace_becomes_admin_and_the_next_a_viewer(app_database):
    first = signed_in("boss@example.com", "pages/data.py")
    assert "Signed in as boss@example.com (admin)." in first.caption[0].value
    assert [s.value for s in first.subheader][-2:] == ["Members", "Audit log"]
    second = signed_in("newcomer@example.com", "pages/data.py")
    assert (
        second.caption[0].value
    ) == "Signed in as newcomer@example.com (viewer). You may: view predictions, segments and campaigns."
    assert "Members" not in [s.value for s in second.subheader]
    assert member_rows(app_database) == [("boss@example.com", "admin"), ("newcomer@example.com", "viewer")]


def test_an_admin_removes_a_member_who_then_starts_over_as_a_viewer(app_database):
    member_as(app_database, "*mark*@example.com", "marketer")  # an address is user text: shown, never markup
    at = signed_in("boss@example.com", "pages/data.py")
    at.selectbox(key="member_leaving").set_value("*mark*@example.com")
    [b for b in at.button if b.label == "Remove member"][0].click().run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith(r"\*mark\*@example.com was removed.")
    assert member_rows(app_database) == [("boss@example.com", "admin")]
    assert audit_rows(app_database)[-1] == ("boss@example.com", "remove member", "*mark*@example.com")
    again = signed_in("*mark*@example.com", "pages/data.py")
    assert again.caption[0].value.startswith(r"Signed in as \*mark\*@example.com (viewer).")


def test_removing_the_last_admin_on_the_page_is_one_line_and_changes_nothing(app_database):
    member_as(app_database, "ann@example.com", "viewer")
    at = signed_in("boss@example.com", "pages/data.py")
    before = (member_rows(app_database), audit_rows(app_database))
    at.selectbox(key="member_leaving").set_value("boss@example.com")
    [b for b in at.button if b.label == "Remove member"][0].click().run()
    assert [e.value for e in at.error] == [
        "boss@example.com is the only admin: make someone else admin first. Nothing was changed."
    ]
    assert (member_rows(app_database), audit_rows(app_database)) == before


def test_without_auth_the_local_user_is_admin(app_database):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/data.py").run()
    local = access.local_admin()
    assert at.caption[0].value.startswith(f"Signed in as {local.email} (admin). You may: ")
    assert "Audit log" in [s.value for s in at.subheader]


# page, role, the control, whether that role may use it
CONTROLS = [
    ("pages/segments.py", "viewer", "Save segment", False),
    ("pages/segments.py", "analyst", "Save segment", True),
    ("pages/segments.py", "viewer", "Export CSV", False),
    ("pages/segments.py", "analyst", "Export CSV", True),
    ("pages/data.py", "marketer", "Save delivery rules", False),
    ("pages/data.py", "admin", "Save delivery rules", True),
    ("pages/predictions.py", "marketer", "Retrain model", False),
    ("pages/predictions.py", "admin", "Retrain model", True),
    ("pages/data.py", "marketer", "Save channels", False),
    ("pages/data.py", "admin", "Save channels", True),
    ("pages/data.py", "marketer", "Send a test message", False),
    ("pages/data.py", "admin", "Send a test message", True),
    ("pages/predictions.py", "marketer", "Run a backtest", False),
    ("pages/predictions.py", "admin", "Run a backtest", True),
]


# the Outbox view's controls: role -> (may download the CSV, may retry failed messages)
OUTBOX_CONTROLS = {"viewer": (False, False), "analyst": (True, False), "marketer": (True, True)}


@pytest.mark.parametrize("role", OUTBOX_CONTROLS)
def test_the_outbox_view_offers_only_what_the_role_may_do(app_database, demo_anchor, role):
    campaign = make_campaign(
        app_database, "Due", IOS_ONLY, daily(demo_anchor.date(), "00:00", 1, local_time=False), demo_anchor
    )
    dispatch(app_database, until=demo_anchor + timedelta(days=1))
    outbox = models.OutboxMessage.__table__
    with app_database.begin() as connection:
        first = connection.execute(sa.select(sa.func.min(outbox.c.id))).scalar()
        connection.execute(sa.update(outbox).where(outbox.c.id == first).values(status="failed"))
    member_as(app_database, f"{role}@example.com", role)
    at = signed_in(f"{role}@example.com", "pages/campaigns.py")
    at.radio(key="campaigns_view").set_value("Outbox").run()
    at.selectbox(key="c_outbox_choice").set_value(campaign).run()
    assert not at.exception
    download = [w for kind in ("button", "download_button") for w in at.get(kind) if w.label == "Download CSV"]
    retry = [w for w in at.button if w.label == "Retry failed"]
    assert len(download) == 1 and len(retry) == 1
    assert (not download[0].disabled, not retry[0].disabled) == OUTBOX_CONTROLS[role]


@pytest.mark.parametrize(("page", "role", "label", "enabled"), CONTROLS, ids=[f"{c[1]}-{c[2]}" for c in CONTROLS])
def test_each_page_offers_only_what_the_role_may_do(
    trained_app,  # noqa: F811
    page,
    role,
    label,
    enabled,
):
    member_as(trained_app, f"{role}@example.com", role)
    at = signed_in(f"{role}@example.com", page)
    assert not at.exception
    controls = [w for kind in ("button", "download_button") for w in at.get(kind) if w.label == label]
    assert controls, f"{label} is missing"
    assert all(not w.disabled for w in controls) is enabled
    assert f"({role})" in at.caption[0].value


def test_data_page_hides_regeneration_once_real_data_is_imported(app_database, tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("user_id,first_name\nreal-1,Ann\n", encoding="utf-8")
    at = signed_in("boss@example.com", "pages/data.py")
    assert "Regenerate demo data" in [b.label for b in at.get("button")]
    from core.importer import import_users

    import_users(app_database, path, actor=Actor("boss@example.com", "admin"))
    at.run()
    assert "Demo data" not in [s.value for s in at.subheader]
    assert "Regenerate demo data" not in [b.label for b in at.get("button")]


def test_an_admin_changes_delivery_rules_and_the_audit_log_names_them(app_database):
    at = signed_in("boss@example.com", "pages/data.py")
    at.checkbox(key="dr_cap_on").check()
    [b for b in at.get("button") if b.label == "Save delivery rules"][0].click().run()
    assert not at.exception and not at.error
    assert audit_rows(app_database)[-1] == ("boss@example.com", "rule change", "delivery rules")
    assert "rule change" in at.dataframe[-1].value["action"].tolist()  # the Data page's audit log shows it


def test_a_click_after_being_demoted_is_refused_in_core_and_changes_nothing(app_database, demo_anchor):
    campaign = make_campaign(
        app_database, "Running", IOS_ONLY, daily(demo_anchor.date() + timedelta(days=1), "12:00"), demo_anchor
    )
    member_as(app_database, "mark@example.com", "marketer")
    at = signed_in("mark@example.com", "pages/campaigns.py")
    at.radio(key="campaigns_view").set_value("Campaigns").run()
    pause = [b for b in at.button if b.label == "Pause"][0]
    assert not pause.disabled  # drawn while mark was a marketer
    access.set_role("mark@example.com", "viewer", app_database, actor=Actor("boss@example.com", "admin"))
    before = audit_rows(app_database)
    pause.click().run()
    assert [e.value for e in at.error] == [
        "mark@example.com is a viewer: only a marketer or above may launch, pause, resume and stop campaigns"
    ]
    assert audit_rows(app_database) == before
    assert get_campaign(campaign, app_database)[1]["status"] == "scheduled"


def test_a_marketer_pauses_a_campaign_and_the_audit_log_names_them(app_database, demo_anchor):
    campaign = make_campaign(
        app_database, "Running", IOS_ONLY, daily(demo_anchor.date() + timedelta(days=1), "12:00"), demo_anchor
    )
    member_as(app_database, "mark@example.com", "marketer")
    at = signed_in("mark@example.com", "pages/campaigns.py")
    at.radio(key="campaigns_view").set_value("Campaigns").run()
    [b for b in at.button if b.label == "Pause"][0].click().run()
    assert not at.error
    assert get_campaign(campaign, app_database)[1]["status"] == "paused"
    assert audit_rows(app_database)[-1] == ("mark@example.com", "pause", "campaign 'Running'")
