"""Step 3, Schedule: now, once or recurring, in each user's local time; the company's delivery rules;
how the effect is measured (conversion event and window, control group); when the audience uses
the app; the next sends per zone and how the first one rolls out."""

from __future__ import annotations

from datetime import time, timedelta

import plotly.graph_objects as go
import streamlit as st

from core import campaigns as cc
from core.campaigns import audience as aud
from core.campaigns import experiment, personalise
from core.campaigns import schedule as sch
from core.campaigns.spec import MAX_INTERVAL, MAX_REELIGIBLE_DAYS, MAX_SENDS, CampaignSpec
from core.markup import plain
from core.predictions.features import event_names
from core.timeutil import screen_time, utcnow
from pages.campaign_steps import state

KINDS = {"now": "Send now", "once": "Once", "recurring": "Recurring"}
FREQUENCIES = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}
UNITS = {"daily": "days", "weekly": "weeks", "monthly": "months"}
ENDS = {"never": "Never", "on": "On a date", "after": "After a number of sends"}
REELIGIBILITY = {
    "always": "Yes, at every send they qualify for",
    "after": "Yes, but not within a number of days",
    "never": "No, only once",
}


def _radio(label: str, choices: dict, current: str, key: str, container=st, **kwargs) -> str:
    options = list(choices)
    return container.radio(label, options, index=options.index(current), format_func=choices.get, key=key, **kwargs)


def render(engine) -> None:
    draft = state.draft()
    kind = _radio("When", KINDS, draft.kind, "c_kind", horizontal=True)
    draft = draft.with_(kind=kind)
    if kind == "recurring":
        a, b, c = st.columns(3)
        options = list(FREQUENCIES)
        frequency = a.selectbox(
            "Repeats", options, index=options.index(draft.frequency), format_func=FREQUENCIES.get, key="c_frequency"
        )
        interval = b.number_input(
            f"Every how many {UNITS[frequency]}",
            min_value=1,
            max_value=MAX_INTERVAL,
            step=1,
            value=draft.interval,
            key="c_interval",
        )
        draft = draft.with_(frequency=frequency, interval=int(interval))
        if frequency == "weekly":
            days = c.multiselect(
                "On days",
                list(sch.WEEKDAYS),
                default=list(draft.weekdays),
                key="c_weekdays",
                format_func=sch.WEEKDAY_NAMES.get,
            )
            draft = draft.with_(weekdays=tuple(days))
        elif frequency == "monthly":
            day = c.number_input(
                "Day of the month", min_value=1, max_value=31, step=1, value=draft.month_day, key="c_month_day"
            )
            draft = draft.with_(month_day=int(day))
    if kind != "now":
        a, b, _ = st.columns(3)
        at = a.time_input("Time of day", value=draft.send_time, key="c_time", step=timedelta(minutes=15))
        start = b.date_input("Send date" if kind == "once" else "Start date", value=draft.start, key="c_start")
        local = st.checkbox(
            "Deliver in each user's local time zone",
            value=draft.local_time,
            key="c_local_time",
            help="Each user gets it at this wall-clock time in their own zone; users without one use the company zone.",
        )
        draft = draft.with_(send_time=at, start=start, local_time=local)
    if kind == "recurring":
        a, b = st.columns(2)
        end_kind = _radio("Ends", ENDS, draft.end_kind, "c_end_kind", horizontal=True, container=a)
        draft = draft.with_(end_kind=end_kind)
        if end_kind == "on":
            draft = draft.with_(end_date=b.date_input("End date", value=draft.end_date, key="c_end_date"))
        elif end_kind == "after":
            count = b.number_input(
                "Number of sends", min_value=1, max_value=MAX_SENDS, step=1, value=draft.end_count, key="c_end_count"
            )
            draft = draft.with_(end_count=int(count))
        a, b = st.columns(2)
        again = _radio(
            "Users may receive this campaign again", REELIGIBILITY, draft.reeligibility, "c_reeligible", container=a
        )
        draft = draft.with_(reeligibility=again)
        if again == "after":
            days = b.number_input(
                "Days before a user may receive it again",
                min_value=0,
                max_value=MAX_REELIGIBLE_DAYS,
                step=1,
                value=draft.reeligible_days,
                key="c_reeligible_days",
            )
            draft = draft.with_(reeligible_days=int(days))
    draft = _delivery_rules(engine, draft)
    draft = _measurement(engine, draft)
    state.keep(draft)

    spec = state.spec_of(draft)
    if spec is None:
        return
    company_zone = cc.company_timezone(engine)
    company = state.company_rules(engine)
    verdict = company and cc.schedule_verdict(spec.schedule, company, spec.settings, company_zone, utcnow())
    if verdict:
        st.warning(verdict)
    errors = sch.problems(spec.schedule, utcnow(), company_zone)
    for error in errors:
        st.error(plain(error))
    st.caption(
        f"{sch.describe(spec.schedule, company_zone)}. Company time zone: {company_zone} (for users without a zone). "
        "On daylight-saving days a time that does not exist is sent an hour later, and a time that happens twice is sent once."
    )
    found = state.audience(engine, spec)
    if found is None:
        return
    definition, _, reachable = found
    _sessions_chart(engine, spec, reachable, company_zone)
    if errors:
        return
    _next_sends(engine, spec, reachable, company_zone)
    if kind == "recurring":
        st.subheader("Coverage check")
        result = cc.audience_coverage(
            engine, definition, spec.schedule, spec.settings, spec.channel, spec.platforms, screen_time()
        )
        show = {"exact": st.success, "overlap_prevented": st.success, "not_applicable": st.info}.get(
            result.verdict, st.warning
        )
        show(result.message)


def _delivery_rules(engine, draft):
    """The company's delivery rules and this campaign's opt-outs."""
    company = state.company_rules(engine)
    if company is None:
        st.error(state.UNREADABLE_RULES)
    st.markdown("**Delivery rules** (company-wide; set on the Data page)")
    a, b = st.columns(2)
    cap = a.checkbox(
        "Obeys the frequency cap and counts toward it",
        value=draft.obeys_cap,
        key="c_obeys_cap",
        help="Untick for transactional messages: they are then neither held back by the cap nor counted in it.",
    )
    a.caption(f"Frequency cap: {company.cap.sentence() if company else 'cannot be read'}.")
    quiet = b.checkbox(
        "Obeys quiet hours",
        value=draft.obeys_quiet,
        key="c_obeys_quiet",
        help="Untick for messages that must go out at any hour.",
    )
    b.caption(f"Quiet hours: {company.quiet.sentence() if company else 'cannot be read'}.")
    return draft.with_(obeys_cap=cap, obeys_quiet=quiet)


DEFAULT_EVENT = ""  # the event chooser's "default": the prediction's event, else a session


def _measurement(engine, draft):
    """What counts as a conversion, for how long, and how many users are held out."""
    st.markdown("**Measure the effect**")
    predictions = personalise.targetable_predictions(engine)
    events = dict(zip(predictions["id"], predictions["event"], strict=True))
    default = experiment.default_conversion_event(events.get(draft.message.prediction_id))
    names = [DEFAULT_EVENT, *[n for n in event_names(engine) if n]]
    current = draft.conversion_event or DEFAULT_EVENT
    if current not in names:
        names.append(current)
    a, b, c = st.columns(3)
    event = a.selectbox(
        "Conversion event",
        names,
        index=names.index(current),
        key="c_conversion_event",
        format_func=lambda n: f"Default ({default})" if n == DEFAULT_EVENT else n,
        help="Default: the prediction's event when the campaign uses one, else a session.",
    )
    window = b.number_input(
        "Conversion window (days)",
        min_value=1,
        max_value=experiment.MAX_WINDOW_DAYS,
        step=1,
        value=draft.window_days,
        key="c_window",
    )
    control = c.slider(
        "Control group (%)",
        min_value=0.0,
        max_value=experiment.MAX_CONTROL_PERCENT,
        step=1.0,
        format="%g%%",
        value=draft.control_percent,
        key="c_control",
        help="A random share of the audience that is never messaged, the same users at every send: "
        "the only way to tell what the message changed from what would have happened anyway.",
    )
    return draft.with_(conversion_event=event or None, window_days=int(window), control_percent=float(control))


def _use_hour(hour: int) -> None:
    state.keep(state.draft().with_(send_time=time(hour, 0)))
    state.forget_widget("c_time")


def _sessions_chart(engine, spec: CampaignSpec, reachable, company_zone: str) -> None:
    st.subheader("When this audience uses the app")
    schedule = spec.schedule
    days = list(schedule.weekdays) if schedule.kind == "recurring" and schedule.frequency == "weekly" else None
    rhythm = cc.session_rhythm(reachable, engine, days, company_zone)
    if rhythm.sessions == 0:
        st.caption("These users have no sessions to chart.")
        return
    hours = rhythm.hour_frame()
    fig = go.Figure(go.Bar(x=hours["hour"], y=hours["sessions"], marker_color="#4c78a8", name="sessions"))
    if schedule.kind != "now":
        at = sch.parse_time(schedule.time)
        fig.add_vline(x=at.hour + at.minute / 60 - 0.5, line_dash="dash", line_color="#e45756")
        fig.add_annotation(
            x=at.hour + at.minute / 60 - 0.5,
            y=hours["sessions"].max(),
            text=f"send {at:%H:%M}",
            showarrow=False,
            yshift=10,
        )
    on = ", ".join(sch.WEEKDAY_NAMES[d] for d in days) if days else "all days"
    fig.update_layout(
        title=f"Sessions by local hour of day ({on}, {int(hours['sessions'].sum()):,} sessions)",
        xaxis={"title": "local hour", "dtick": 1},
        yaxis_title="sessions",
        height=300,
        margin={"t": 40, "b": 30, "l": 40, "r": 10},
    )
    left, right = st.columns([3, 2])
    left.plotly_chart(fig, width="stretch")
    week = rhythm.weekday_frame()
    wfig = go.Figure(
        go.Bar(x=[sch.WEEKDAY_NAMES[d][:3] for d in week["weekday"]], y=week["sessions"], marker_color="#72b7b2")
    )
    wfig.update_layout(title="Sessions by local weekday", height=300, margin={"t": 40, "b": 30, "l": 40, "r": 10})
    right.plotly_chart(wfig, width="stretch")
    suggestion = cc.suggest_send_hour(rhythm)
    if suggestion:
        a, b = st.columns([4, 1])
        a.info(suggestion.sentence())
        if schedule.kind != "now":
            b.button(f"Use {suggestion.send_hour:02d}:00", on_click=_use_hour, args=(suggestion.send_hour,))


def _next_sends(engine, spec: CampaignSpec, reachable, company_zone: str) -> None:
    st.subheader("Next sends")
    if len(reachable) == 0:
        st.caption("Nobody reachable: nothing to send.")
        return
    zone_users = aud.zone_counts(engine, reachable, company_zone, sch.uses_local_time(spec.schedule))
    main = list(zone_users)[:5]
    now = utcnow()
    table = sch.next_sends(spec.schedule, now, main, company_zone, count=5)
    if table.empty:
        st.caption("No send is left in this schedule.")
        return
    main_zones = " · ".join(f"{sch.zone_label(z)} {zone_users[z]:,}" for z in main)
    st.caption(
        f"When each of the audience's main zones receives it, in company time ({company_zone}). "
        f"Users per zone: {main_zones}."
    )
    # Widths add up to the main column at 1280 px (815 px): no zone is cut off.
    columns = {"Occurrence": st.column_config.TextColumn("Send (wall clock)", width=140)}
    for zone in main:
        columns[zone] = st.column_config.TextColumn(
            sch.zone_label(zone), help=f"{zone}: {zone_users[zone]:,} users", width=135
        )
    st.dataframe(table, hide_index=True, width="stretch", column_config=columns, row_height=52)
    rollout = sch.rollout_points(sch.first_send_rollout(spec.schedule, zone_users, now, company_zone))
    if len(rollout) > 1:
        fig = go.Figure(
            go.Scatter(
                x=rollout["send_at_company"],
                y=rollout["cumulative_users"],
                mode="lines+markers+text",
                line_shape="hv",
                text=rollout["label"],
                textposition=rollout["text_position"],
                textfont_size=10,
            )
        )
        fig.update_layout(
            title="How the first send rolls across time zones",
            xaxis_title=f"time ({company_zone})",
            yaxis_title="users reached",
            height=340,
            margin={"t": 40, "b": 30, "l": 40, "r": 10},
        )
        st.plotly_chart(fig, width="stretch")
