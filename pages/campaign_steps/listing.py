"""The campaigns list: every campaign with its status and next send, and what can be done to it."""

from __future__ import annotations

import streamlit as st

from core import campaigns as cc
from core.access import Actor, Permission, can
from core.campaigns.draft import ComposerDraft
from core.db import get_engine
from core.errors import UserError
from core.markup import plain
from core.timeutil import utcnow
from pages.campaign_steps import state
from pages.team.access import signed_in_actor

# Labels, widths and formats: the widths add up to the main column at 1280 px (815 px), so
# nothing is cut off; long names and schedules wrap over the row's four lines.
LIST_COLUMNS = {
    "name": st.column_config.TextColumn("Name", width=130),
    "audience": st.column_config.TextColumn("Audience", width=105),
    "channel": st.column_config.TextColumn("Channel", width=115),
    "status": st.column_config.TextColumn("Status", width=85),
    "next_send": st.column_config.TextColumn("Next send", width=115),
    "schedule": st.column_config.TextColumn("Schedule", width=185),
    "messages_written": st.column_config.NumberColumn(
        "Messages", help="Messages written to the outbox so far", format="localized", width=80
    ),
}


def render(engine, actor: Actor) -> None:
    frame = cc.list_campaigns(engine)
    if frame.empty:
        st.info("No campaign yet: compose one.")
        return
    st.dataframe(
        frame[list(LIST_COLUMNS)],
        hide_index=True,
        width="stretch",
        column_config=LIST_COLUMNS,
        row_height=92,  # four lines: a long schedule wraps instead of being cut
    )
    names = dict(zip(frame["id"], frame["name"], strict=True))
    chosen = st.selectbox("Campaign", frame["id"].tolist(), format_func=names.get, key="c_list_choice")
    row = frame.set_index("id").loc[chosen]
    status = row["status"]
    cols = st.columns(5)
    actions = [
        ("Pause", "pause", status == "scheduled"),
        ("Resume", "resume", status == "paused"),
        ("Stop", "stop", status in ("scheduled", "paused")),
    ]
    for col, (label, action, enabled) in zip(cols, actions, strict=False):
        col.button(
            label,
            disabled=not enabled or not can(actor, Permission.LAUNCH_CAMPAIGN),
            on_click=_transition_clicked,
            args=(int(chosen), action, int(row["version"])),
            width="stretch",
        )
    cols[3].button(
        "Duplicate",
        on_click=_duplicate_clicked,
        args=(int(chosen),),
        width="stretch",
        disabled=not can(actor, Permission.COMPOSE_CAMPAIGN),
    )
    cols[4].button(
        "Edit draft", disabled=status != "draft", on_click=_edit_clicked, args=(int(chosen),), width="stretch"
    )
    st.caption(
        "Only drafts can be edited; duplicate a launched campaign to change it. Resuming skips sends that fell due while paused."
    )


def _transition_clicked(campaign_id: int, action: str, version: int) -> None:
    try:
        engine = get_engine()
        status = cc.transition(campaign_id, action, engine, expected_version=version, actor=signed_in_actor(engine))
        state.flash("toast", f"The campaign is now {status}.")
    except UserError as error:
        state.flash("error", plain(error))


def _open(campaign_id: int) -> None:
    """A saved campaign into the composer."""
    try:
        spec, record = cc.get_campaign(campaign_id, get_engine())
    except UserError as error:
        state.flash("error", str(error))
        return
    state.replace(ComposerDraft.from_spec(spec, record["id"], record["version"], utcnow().date()))
    state.go(state.STEPS[0])
    st.session_state["campaigns_view"] = "Compose"


def _duplicate_clicked(campaign_id: int) -> None:
    try:
        engine = get_engine()
        new_id = cc.duplicate(campaign_id, engine, actor=signed_in_actor(engine))
    except UserError as error:
        state.flash("error", plain(error))
        return
    _open(new_id)
    state.flash("success", "Duplicated as a new draft: change what you need, then launch it.")


def _edit_clicked(campaign_id: int) -> None:
    _open(campaign_id)
