"""Data: what the database holds, CSV import, and demo data regeneration."""

from datetime import time
from zoneinfo import available_timezones

import pandas as pd
import streamlit as st

from core.access import REPLACE_CONFIRMATION, Permission, can, holds_demo_data
from core.campaigns import company_timezone, delivery_rules, set_company_timezone, set_delivery_rules
from core.campaigns import rules as delivery
from core.db import database_url, get_engine
from core.demo import regenerate_demo_data
from core.errors import UserError
from core.importer import EVENT_COLUMNS, USER_COLUMNS, import_events, import_users
from core.markup import plain
from core.summary import database_summary
from pages import delivery_panel, ensure_frame
from pages.team import admin as team_admin
from pages.team.access import page_actor

ensure_frame("pages/data.py")
COUNT = st.column_config.NumberColumn(format="localized")  # 12,345

st.title("Data")
engine = get_engine()
actor = page_actor(engine)

summary = database_summary(engine)
users_col, events_col, range_col = st.columns(3)
users_col.metric("Users", f"{summary.users:,}")
events_col.metric("Events", f"{summary.events:,}")
if summary.first_event:
    days = (summary.last_event.date() - summary.first_event.date()).days + 1
    range_col.metric("Event history", f"{days:,} days")
    range_col.caption(f"{summary.first_event:%d %b %Y} → {summary.last_event:%d %b %Y}")
else:
    range_col.metric("Event history", "none yet")

left, right = st.columns(2)
with left:
    st.subheader("Events by name")
    if summary.events_by_name:
        st.dataframe(
            pd.DataFrame({"Event": list(summary.events_by_name), "Count": list(summary.events_by_name.values())}),
            hide_index=True,
            width="stretch",
            column_config={"Count": COUNT},
        )
with right:
    st.subheader("Users by platform")
    if summary.users_by_platform:
        st.dataframe(
            pd.DataFrame(
                {"Platform": list(summary.users_by_platform), "Users": list(summary.users_by_platform.values())}
            ),
            hide_index=True,
            width="stretch",
            column_config={"Users": COUNT},
        )

st.divider()
st.subheader("Import your own data")
st.caption(
    "An import is all or nothing: if any row is wrong, the error names the file, line and column, "
    "and nothing is written. Timestamps are ISO 8601; without an offset they are taken as UTC."
)
kind = st.radio("What are you importing?", ["users", "events"], horizontal=True, key="import_kind")
columns = USER_COLUMNS if kind == "users" else EVENT_COLUMNS
required = "user_id" if kind == "users" else "user_id, event, timestamp"
st.markdown(f"Columns: `{', '.join(columns)}` — required: `{required}`.")
upload = st.file_uploader(f"{kind}.csv", type=["csv"], key=f"upload_{kind}")
if st.button(f"Import {kind}", disabled=upload is None or not can(actor, Permission.IMPORT_DATA), type="primary"):
    importer = import_users if kind == "users" else import_events
    outcome = error = None
    with st.status(f"Importing {plain(upload.name)}…", expanded=True) as status:
        try:
            outcome = importer(engine, upload, progress=st.write, actor=actor)
        except UserError as problem:
            error = problem
            status.update(label="Nothing was imported", state="error", expanded=False)
        else:
            status.update(label=f"Imported {outcome.rows:,} rows", state="complete", expanded=False)
    if error:
        st.error(plain(error))
    else:
        st.success(f"Imported {outcome.rows:,} {kind} rows ({outcome.created_users:,} new users).")

st.divider()
st.subheader("Company time zone")
st.caption("Campaigns reach users without a known time zone at the scheduled wall-clock time in this zone.")
zones = sorted(available_timezones())
current_zone = company_timezone(engine)
chosen_zone = st.selectbox(
    "Company time zone", zones, index=zones.index(current_zone) if current_zone in zones else None
)
if (
    chosen_zone
    and chosen_zone != current_zone
    and st.button("Save time zone", disabled=not can(actor, Permission.CHANGE_RULES))
):
    try:
        set_company_timezone(chosen_zone, engine, actor=actor)
    except UserError as error:
        st.error(plain(error))
    else:
        st.success(f"Company time zone set to {chosen_zone}.")

st.divider()
st.subheader("Delivery rules")
st.caption(
    "Company-wide rules every campaign obeys unless its schedule step says otherwise (e.g. transactional messages). "
    "They apply when messages are written to the outbox, in each user's delivery zone."
)
try:
    rules = delivery_rules(engine)
except UserError as error:  # a row that cannot be read: say so, and offer the defaults to store again
    st.error(plain(error))
    rules = delivery.DeliveryRules()
if "dr_saved" in st.session_state:
    st.success(st.session_state.pop("dr_saved"))
st.markdown(f"**Frequency cap:** {rules.cap.sentence()}  \n**Quiet hours:** {rules.quiet.sentence()}")
with st.form("delivery_rules"):
    cap_col, quiet_col = st.columns(2)
    with cap_col:
        st.markdown("**Frequency cap**")
        cap_on = st.checkbox("Limit how many messages a user receives", value=rules.cap.enabled, key="dr_cap_on")
        cap_messages = st.number_input(
            "At most this many messages",
            min_value=delivery.CAP_MESSAGES_RANGE[0],
            max_value=delivery.CAP_MESSAGES_RANGE[1],
            value=rules.cap.messages,
            step=1,
            key="dr_cap_messages",
        )
        cap_days = st.number_input(
            "In any window of this many days",
            min_value=delivery.CAP_DAYS_RANGE[0],
            max_value=delivery.CAP_DAYS_RANGE[1],
            value=rules.cap.days,
            step=1,
            key="dr_cap_days",
        )
        st.caption(
            "Counts the messages of every campaign that obeys the cap; a message that would break it is not sent."
        )
    with quiet_col:
        st.markdown("**Quiet hours**")
        quiet_on = st.checkbox("Send nothing during quiet hours", value=rules.quiet.enabled, key="dr_quiet_on")
        start_col, end_col = st.columns(2)
        quiet_start = start_col.time_input(
            "From (local time)", value=time.fromisoformat(rules.quiet.start), step=900, key="dr_quiet_start"
        )
        quiet_end = end_col.time_input(
            "Until (local time)", value=time.fromisoformat(rules.quiet.end), step=900, key="dr_quiet_end"
        )
        modes = list(delivery.QUIET_MODES)
        quiet_mode = st.radio(
            "A message due in quiet hours",
            modes,
            index=modes.index(rules.quiet.mode),
            format_func=delivery.QUIET_MODES.get,
            horizontal=True,
            key="dr_quiet_mode",
        )
        st.caption(
            "The window may cross midnight (22:00 until 08:00). It follows each user's zone, else the company zone."
        )
    if st.form_submit_button("Save delivery rules", disabled=not can(actor, Permission.CHANGE_RULES)):
        try:
            saved = set_delivery_rules(
                {"enabled": cap_on, "messages": cap_messages, "days": cap_days},
                {"enabled": quiet_on, "start": quiet_start, "end": quiet_end, "mode": quiet_mode},
                engine,
                actor=actor,
            )
        except UserError as error:
            st.error(f"{plain(error)}. Nothing was changed.")
        else:
            st.session_state["dr_saved"] = (
                f"Delivery rules saved. Frequency cap: {saved.cap.sentence()}. Quiet hours: {saved.quiet.sentence()}."
            )
            st.rerun()  # the summary above the form shows the saved rules

st.divider()
delivery_panel.render(engine, actor)

if holds_demo_data(engine) and can(actor, Permission.REPLACE_DATA):  # gone once real data is imported
    st.divider()
    st.subheader("Demo data")
    st.caption(
        f"Database: `{database_url().split('@')[-1]}`. Regenerating replaces every user and event "
        "(saved segments and campaigns are kept; predictions are re-scored)."
    )
    with st.form("regenerate"):
        count = st.number_input("Users", min_value=100, max_value=2_000_000, value=50_000, step=10_000)
        seed = st.number_input("Seed", min_value=0, value=7, step=1)
        typed = st.text_input(f"Type {REPLACE_CONFIRMATION} to replace all users and events")
        if st.form_submit_button("Regenerate demo data"):
            try:
                with st.status("Generating demo data…", expanded=True) as status:
                    regenerate_demo_data(engine, int(count), int(seed), st.write, actor=actor, confirmation=typed)
                    status.update(label="Demo data ready", state="complete")
            except UserError as error:
                st.error(f"{plain(error)}. Nothing was replaced.")
            else:
                st.rerun()

if can(actor, Permission.MANAGE_MEMBERS):
    st.divider()
    team_admin.members_section(engine, actor)
if can(actor, Permission.VIEW_AUDIT):
    st.divider()
    team_admin.audit_section(engine, actor)
