"""The Data page's admin sections: members and their roles, and the audit log (view, filter, export)."""

from datetime import datetime, time
from functools import partial

import streamlit as st

from core.access import (
    AUDIT_ACTIONS,
    ROLES,
    audit_csv_stream,
    audit_log,
    details_text,
    members,
    remove_member,
    set_role,
)
from core.errors import UserError
from core.markup import plain
from pages import download_link


def members_section(engine, actor) -> None:
    st.subheader("Members")
    team = members(engine)
    if team.empty:
        st.caption("Nobody has signed in yet: members appear here after their first sign-in (see README).")
        return
    st.caption("Everyone who signed in. New members start as viewers; the first one became admin.")
    st.dataframe(team, hide_index=True, width="stretch")
    with st.form("member_role"):
        who_col, role_col = st.columns(2)
        email = who_col.selectbox("Member", team["email"].tolist(), key="member_email")
        role = role_col.selectbox("Role", ROLES, key="member_role")
        if st.form_submit_button("Change role"):
            try:
                set_role(email, role, engine, actor=actor)
            except UserError as error:
                st.error(f"{plain(error)}. Nothing was changed.")
            else:
                st.success(f"{plain(email)} is now a {role}.")
    with st.form("member_remove"):
        who_col, button_col = st.columns(2, vertical_alignment="bottom")
        leaving = who_col.selectbox("Member to remove", team["email"].tolist(), index=None, key="member_leaving")
        if button_col.form_submit_button("Remove member"):
            if leaving is None:
                st.error("Choose the member to remove. Nothing was changed.")
                return
            try:
                remove_member(leaving, engine, actor=actor)
            except UserError as error:
                st.error(f"{plain(error)}. Nothing was changed.")
            else:
                st.success(
                    f"{plain(leaving)} was removed. If they sign in again while the allowed list admits them, "
                    "they start over as a viewer."
                )


def audit_section(engine, actor) -> None:
    st.subheader("Audit log")
    st.caption("Who exported, imported, launched, paused or stopped what, and who changed rules, roles or predictions.")
    action_col, who_col, since_col = st.columns(3)
    action = action_col.selectbox("Action", AUDIT_ACTIONS, index=None, placeholder="every action", key="audit_action")
    who = who_col.text_input("Who (part of the email or name)", key="audit_who")
    since = since_col.date_input("Since", value=None, key="audit_since")
    filters = {"action": action, "who": who or None, "since": datetime.combine(since, time()) if since else None}
    log = audit_log(engine, actor=actor, limit=1000, **filters)
    if log.empty:
        st.caption("Nothing recorded yet for these filters.")
        return
    st.dataframe(log.assign(details=log["details"].map(details_text)), hide_index=True, width="stretch")
    download_link.download_link(
        "Export audit log (CSV)",
        "likely-audit-log.csv",
        partial(audit_csv_stream, engine, actor=actor, **filters),
        key="audit_export",
        help="The entries these filters show, without the 1,000-row limit of the table.",
    )
