"""Campaigns: compose (target -> message -> schedule -> review & launch), the list, the outbox."""

from __future__ import annotations

from datetime import date, time, timedelta
from functools import partial

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import campaigns as cc
from core.access import Permission, can
from core.campaigns import audience as aud
from core.campaigns import limits, personalise, rules
from core.campaigns import schedule as sch
from core.campaigns.outbox_export import outbox_csv_bytes
from core.campaigns.templating import VARIABLES
from core.db import get_engine
from core.errors import UserError
from core.selection import LikelihoodSelection
from core.tiers import TIER_BY_NAME, TIER_NAMES
from core.timeutil import screen_time, utcnow
from pages import ensure_frame
from pages.team.access import page_actor, signed_in_actor

ensure_frame("pages/campaigns.py")

STEPS = ["Target", "Message", "Schedule", "Review & launch"]
KINDS = {"Send now": "now", "Once": "once", "Recurring": "recurring"}
FREQUENCIES = {"Daily": "daily", "Weekly": "weekly", "Monthly": "monthly"}
ENDS = {"Never": "never", "On a date": "on", "After a number of sends": "after"}
REELIGIBILITY = {
    "Yes, at every send they qualify for": "always",
    "Yes, but not within a number of days": "after",
    "No, only once": "never",
}
SOURCES = ("Saved segment", "Predictions selection")
SURFACES_BY_PLATFORM = {"iOS": ("ios_lock", "ios_banner"), "Android": ("android_lock", "android_drawer")}
RECENT_OUTBOX_ROWS = 1_000
NO_PREDICTION = 0  # a selectbox shows None as "nothing chosen"; 0 is no prediction


def _defaults() -> dict:
    today = utcnow().date()
    return {
        "c_name": "",
        "c_source": SOURCES[0],
        "c_segment": None,
        "c_channel": "push",
        "c_platforms": [],
        "c_prediction": NO_PREDICTION,
        "c_title": "",
        "c_body": "",
        "c_use_variants": False,
        **{f"c_{t}_{f}": "" for t in TIER_NAMES for f in personalise.FIELDS},
        **{f"c_offer_{t}": personalise.DEFAULT_OFFERS[t] for t in TIER_NAMES},
        "c_kind": "Send now",
        "c_frequency": "Weekly",
        "c_interval": 1,
        "c_weekdays": ["TH"],
        "c_month_day": 1,
        "c_time": time(17, 45),
        "c_start": today,
        "c_end_kind": "Never",
        "c_end_date": today + timedelta(days=90),
        "c_end_count": 10,
        "c_local_time": True,
        "c_reeligible": next(iter(REELIGIBILITY)),
        "c_reeligible_days": 14,
        "c_obeys_cap": True,
        "c_obeys_quiet": True,
    }


def _init_state() -> None:
    state = st.session_state
    state.setdefault("composer_step", STEPS[0])
    state.setdefault("c_campaign_id", None)
    state.setdefault("c_version", None)
    state.setdefault("c_selection", None)  # the Predictions selection's audience definition
    state.setdefault("c_preview_seed", 0)
    for key, value in _defaults().items():
        if key not in state:
            state[key] = value
        else:
            state[key] = state[key]  # keep a widget's value while its step is not on screen


def _reset_composer() -> None:
    state = st.session_state
    for key, value in _defaults().items():
        state[key] = value
    state["composer_step"] = STEPS[0]
    state["c_campaign_id"] = None
    state["c_version"] = None
    state["c_selection"] = None


def _receive_selection() -> None:
    """A selection carried from the Predictions page becomes the composer's audience (once per link)."""
    try:
        selection = LikelihoodSelection.from_query_params(st.query_params.to_dict())
    except UserError as error:
        st.error(str(error))
        return
    if selection is None:
        return
    token = str(sorted(st.query_params.to_dict().items()))
    if st.session_state.get("c_selection_token") == token:
        return
    st.session_state["c_selection_token"] = token
    _reset_composer()
    st.session_state["c_selection"] = {
        "version": 1,
        "match": "all",
        "groups": [{"match": "all", "filters": [selection.to_filter()]}],
        "exclude": [],
    }
    st.session_state["c_source"] = SOURCES[1]
    st.session_state["c_prediction"] = selection.prediction_id
    st.session_state["campaigns_view"] = "Compose"


def _spec_from_state() -> cc.CampaignSpec:
    s = st.session_state
    use_selection = s["c_source"] == SOURCES[1] and s["c_selection"] is not None
    kind = KINDS[s["c_kind"]]
    schedule: dict = {"kind": kind}
    if kind != "now":
        schedule |= {
            "time": s["c_time"].strftime("%H:%M"),
            "start": s["c_start"].isoformat(),
            "local_time": bool(s["c_local_time"]),
        }
    if kind == "recurring":
        schedule |= {
            "frequency": FREQUENCIES[s["c_frequency"]],
            "interval": int(s["c_interval"]),
            "end": {"kind": ENDS[s["c_end_kind"]]},
        }
        if schedule["frequency"] == "weekly":
            schedule["weekdays"] = [d for d in sch.WEEKDAYS if d in s["c_weekdays"]]
        if schedule["frequency"] == "monthly":
            schedule["month_day"] = int(s["c_month_day"])
        if schedule["end"]["kind"] == "on":
            schedule["end"]["date"] = s["c_end_date"].isoformat()
        if schedule["end"]["kind"] == "after":
            schedule["end"]["count"] = int(s["c_end_count"])
    reeligible = REELIGIBILITY[s["c_reeligible"]]
    message = {
        "title": s["c_title"],
        "body": s["c_body"],
        "use_variants": bool(s["c_use_variants"]),
        "variants": {t: {f: s[f"c_{t}_{f}"] for f in personalise.FIELDS} for t in TIER_NAMES},
        "offers": {t: s[f"c_offer_{t}"] for t in TIER_NAMES},
        "prediction_id": s["c_prediction"] or None,
    }
    return cc.CampaignSpec(
        name=s["c_name"].strip(),
        segment_id=None if use_selection else s["c_segment"],
        audience=s["c_selection"] if use_selection else None,
        channel=s["c_channel"],
        platforms=list(s["c_platforms"]),
        message=message,
        schedule=schedule,
        settings={
            "reeligible": reeligible != "never",
            "reeligible_after_days": int(s["c_reeligible_days"]) if reeligible == "after" else None,
            rules.CAMPAIGN_CAP_SETTING: bool(s["c_obeys_cap"]),
            rules.CAMPAIGN_QUIET_SETTING: bool(s["c_obeys_quiet"]),
        },
    )


def _load_into_state(spec: cc.CampaignSpec, record: dict) -> None:
    """Put a saved draft into the composer's widgets."""
    _reset_composer()
    s = st.session_state
    s["c_campaign_id"], s["c_version"] = record["id"], record["version"]
    s["c_name"] = spec.name
    if spec.segment_id is None and spec.audience:
        s["c_selection"], s["c_source"] = spec.audience, SOURCES[1]
    s["c_segment"] = spec.segment_id
    s["c_channel"], s["c_platforms"] = spec.channel, list(spec.platforms)
    m = spec.message
    s["c_title"], s["c_body"] = m.get("title", ""), m.get("body", "")
    s["c_use_variants"] = bool(m.get("use_variants"))
    s["c_prediction"] = m.get("prediction_id") or NO_PREDICTION
    for t in TIER_NAMES:
        for f in personalise.FIELDS:
            s[f"c_{t}_{f}"] = ((m.get("variants") or {}).get(t) or {}).get(f, "")
        s[f"c_offer_{t}"] = (m.get("offers") or {}).get(t, "")
    k = spec.schedule or {"kind": "now"}
    s["c_kind"] = next(label for label, v in KINDS.items() if v == k.get("kind", "now"))
    if k.get("kind") != "now":
        s["c_time"] = sch.parse_time(k["time"])
        s["c_start"] = date.fromisoformat(k["start"])
        s["c_local_time"] = bool(k.get("local_time", True))
    if k.get("kind") == "recurring":
        s["c_frequency"] = next(label for label, v in FREQUENCIES.items() if v == k["frequency"])
        s["c_interval"] = int(k.get("interval", 1))
        s["c_weekdays"] = list(k.get("weekdays") or ["TH"])
        s["c_month_day"] = int(k.get("month_day") or 1)
        end = k.get("end") or {"kind": "never"}
        s["c_end_kind"] = next(label for label, v in ENDS.items() if v == end["kind"])
        if end.get("date"):
            s["c_end_date"] = date.fromisoformat(end["date"])
        if end.get("count"):
            s["c_end_count"] = int(end["count"])
    settings = spec.settings or {}
    if not settings.get("reeligible", True):
        s["c_reeligible"] = "No, only once"
    elif settings.get("reeligible_after_days") is not None:
        s["c_reeligible"] = "Yes, but not within a number of days"
        s["c_reeligible_days"] = int(settings["reeligible_after_days"])
    s["c_obeys_cap"] = rules.obeys_cap(settings)
    s["c_obeys_quiet"] = rules.obeys_quiet_hours(settings)
    s["campaigns_view"] = "Compose"


def _go(step: str) -> None:
    st.session_state["composer_step"] = step


def _nav(index: int) -> None:
    left, _, right = st.columns([1, 4, 1])
    if index > 0:
        left.button("Back", on_click=_go, args=(STEPS[index - 1],), width="stretch")
    if index < len(STEPS) - 1:
        right.button("Next", type="primary", on_click=_go, args=(STEPS[index + 1],), width="stretch")


# ---------------------------------------------------------------- audience
def _audience(engine, spec: cc.CampaignSpec):
    """(definition, audience ids, reachable ids) or None when no audience is chosen."""
    try:
        definition = aud.campaign_definition(engine, spec.segment_id, spec.audience)
    except UserError as error:
        st.error(str(error))
        return None
    if definition is None:
        return None
    try:
        audience, reachable = aud.reachable_user_ids(engine, definition, spec.channel, spec.platforms, screen_time())
    except UserError as error:
        st.error(str(error))
        return None
    return definition, audience, reachable


def _describe_selection(definition: dict) -> str:
    f = definition["groups"][0]["filters"][0]
    if f["type"] == "likelihood_category":
        cats = ", ".join(TIER_BY_NAME[c].label() for c in f["categories"])
        return f"prediction #{f['prediction']}, likelihood category {cats}"
    return f"prediction #{f['prediction']}, likelihood score {f['min']:g} to {f['max']:g}"


def _step_target(engine) -> None:
    st.text_input("Campaign name", key="c_name", placeholder="Lapsed user message - 2 weeks")
    segments = aud.list_segments(engine)
    sources = list(SOURCES) if st.session_state["c_selection"] is not None else [SOURCES[0]]
    if st.session_state["c_source"] not in sources:
        st.session_state["c_source"] = sources[0]
    st.radio("Audience", sources, key="c_source", horizontal=True)
    if st.session_state["c_source"] == SOURCES[0]:
        if segments.empty:
            st.info(
                "No saved segment yet: build one on the Segments page first, or pick users by likelihood "
                "on the Predictions page and choose Create campaign."
            )
            left, right, _ = st.columns([1, 1, 2])
            left.page_link("pages/segments.py", label="Build a segment", icon=":material/group_add:")
            right.page_link("pages/predictions.py", label="Pick by likelihood", icon=":material/query_stats:")
        else:
            ids = segments["id"].tolist()
            names = dict(zip(segments["id"], segments["name"], strict=True))
            if st.session_state["c_segment"] not in ids:
                st.session_state["c_segment"] = None
            st.selectbox(
                "Segment",
                ids,
                key="c_segment",
                format_func=lambda i: names.get(i, str(i)),
                placeholder="Choose a segment",
            )
    else:
        st.info(f"Users from the Predictions page: {_describe_selection(st.session_state['c_selection'])}.")
    left, right = st.columns(2)
    left.selectbox("Channel", list(aud.CAMPAIGN_CHANNELS), key="c_channel", format_func=aud.CAMPAIGN_CHANNELS.get)
    right.multiselect(
        "Platforms",
        list(aud.PLATFORMS),
        key="c_platforms",
        placeholder="All platforms",
        help="Leave empty for every platform.",
    )
    spec = _spec_from_state()
    found = _audience(engine, spec)
    if found is None:
        st.caption("Choose an audience to see how many users it reaches.")
        return
    _, audience, reachable = found
    a, b, c = st.columns(3)
    a.metric("Users in the audience today", f"{len(audience):,}")
    b.metric(f"Reachable by {aud.CAMPAIGN_CHANNELS[spec.channel].lower()}", f"{len(reachable):,}")
    c.metric("Reachable share", f"{len(reachable) / len(audience):.0%}" if len(audience) else "—")
    users = aud.users_frame(engine).reindex(audience)
    masks = {p: aud.reachable_mask(users, spec.channel, [p]) for p in aud.PLATFORMS}
    st.caption(
        "Reachable per platform: "
        + " · ".join(
            f"{p} {int(m.sum()):,}" + ("" if not spec.platforms or p in spec.platforms else " (excluded)")
            for p, m in masks.items()
        )
        + ". Push reaches users with a push token who opted in; email, users with an address who subscribed."
    )


# ---------------------------------------------------------------- message
def _show_rendering(spec: cc.CampaignSpec, rendered: personalise.Rendered, heading: str) -> None:
    st.markdown(f"**{heading}**")
    if spec.channel == "push":
        platforms = [p for p in ("iOS", "Android") if not spec.platforms or p in spec.platforms]
        if not platforms:
            st.caption("Web push shows the title and body as the browser's notification.")
            platforms = ["Android"]
        cols = st.columns(len(platforms) * 2)
        for i, (platform, surface) in enumerate((p, s) for p in platforms for s in SURFACES_BY_PLATFORM[p]):
            cols[i].markdown(
                limits.phone_mockup_html(platform, surface, rendered.title, rendered.body), unsafe_allow_html=True
            )
        for warning in limits.copy_warnings("push", rendered.title, rendered.body, platforms):
            st.warning(warning)
        for error in limits.payload_errors(rendered.title, rendered.body, platforms):
            st.error(error)
    else:
        with st.container(border=True):
            label = "Subject" if spec.channel == "email" else "Title"
            st.text(f"{label}: {rendered.title}")
            st.text(rendered.body)
        for warning in limits.copy_warnings(spec.channel, rendered.title, rendered.body):
            st.warning(warning)


def _step_message(engine) -> None:
    channel = st.session_state["c_channel"]
    title_label = personalise.field_label(channel, "title")
    predictions = personalise.targetable_predictions(engine)
    options = [NO_PREDICTION, *predictions["id"].tolist()]
    names = dict(zip(predictions["id"], predictions["name"], strict=True))
    if st.session_state["c_prediction"] not in options:
        st.session_state["c_prediction"] = options[1] if len(options) > 1 else NO_PREDICTION
    st.selectbox(
        "Likelihood from prediction",
        options,
        key="c_prediction",
        format_func=lambda i: "None (no likelihood in the copy)" if i == NO_PREDICTION else names.get(i, f"#{i}"),
        help="Gives the copy each user's likelihood_score, likelihood_tier and the tier's offer.",
    )
    spec = _spec_from_state()
    problems = personalise.template_problems(spec.message, channel)

    def field_errors(key: str) -> None:
        if key in problems:
            st.error(f"Line {problems[key].line}: {problems[key].message}")

    st.text_input(title_label, key="c_title", placeholder='We miss you, {{ first_name | default: "there" }}')
    field_errors("title")
    st.text_area("Body", key="c_body", height=110, placeholder="Here is {{ offer }} to welcome you back.")
    field_errors("body")
    with st.expander("Personalisation: variables and examples"):
        st.markdown(
            'Write Liquid: `{{ first_name | default: "there" }}`, '
            '`{% if likelihood_tier == "Low" %}...{% endif %}`. Available variables:'
        )
        st.dataframe(
            [{"variable": k, "example": str(v)} for k, v in VARIABLES.items()],
            hide_index=True,
            width="stretch",
        )
    st.markdown("**Offers by likelihood tier** (a sliding scale: the likelier to buy, the smaller the discount)")
    cols = st.columns(len(TIER_NAMES))
    for col, tier in zip(cols, reversed(TIER_NAMES), strict=True):
        col.text_input(f"{tier} tier offer", key=f"c_offer_{tier}", help=TIER_BY_NAME[tier].label())
    st.checkbox("Different message per likelihood tier", key="c_use_variants")
    if st.session_state["c_use_variants"]:
        st.caption("Leave a field blank to use the main copy for that tier.")
        for tier in reversed(TIER_NAMES):
            with st.container(border=True):
                st.markdown(f"**{TIER_BY_NAME[tier].label()}**")
                st.text_input(f"{tier} tier {title_label.lower()}", key=f"c_{tier}_title")
                field_errors(f"{tier}.title")
                st.text_area(f"{tier} tier body", key=f"c_{tier}_body", height=80)
                field_errors(f"{tier}.body")
    _preview(engine, _spec_from_state(), bool(problems))


def _next_preview_user() -> None:
    st.session_state["c_preview_seed"] += 1


def _preview(engine, spec: cc.CampaignSpec, broken: bool) -> None:
    st.subheader("Preview")
    if broken:
        st.info("Fix the template errors above to see the preview.")
        return
    found = _audience(engine, spec)
    if found is None or len(found[2]) == 0:
        st.caption("Choose an audience with reachable users to preview the message as one of them.")
        return
    reachable = found[2]
    mode = st.radio(
        "Preview as", ["A random user", "A chosen user", "One user per tier"], horizontal=True, key="c_preview_mode"
    )
    try:
        if mode == "One user per tier":
            scores = personalise.scores_for(engine, spec.message.get("prediction_id"), reachable)
            picks = personalise.sample_tier_users(
                aud.users_frame(engine).loc[reachable], scores, st.session_state["c_preview_seed"]
            )
            if not picks:
                st.caption("No scored user in the audience: choose a prediction on this step.")
            rendered = personalise.render_for_users(engine, spec.message, spec.channel, list(picks.values()))
            for tier, user_id in picks.items():
                _show_rendering(spec, rendered[user_id], f"{tier} tier — user {user_id}")
            return
        if mode == "A chosen user":
            user_id = int(
                st.number_input("User id", min_value=1, value=int(reachable[0]), step=1, key="c_preview_user")
            )
            if user_id not in set(reachable.tolist()):
                st.warning(f"User {user_id} is not in the reachable audience; previewing anyway.")
        else:
            rng = np.random.default_rng(st.session_state["c_preview_seed"])
            user_id = int(reachable[rng.integers(len(reachable))])
            st.button("Another random user", on_click=_next_preview_user)
        rendered = personalise.render_for_users(engine, spec.message, spec.channel, [user_id])
        if user_id not in rendered:
            st.error(f"There is no user {user_id}.")
            return
        user = aud.users_frame(engine).loc[user_id]
        _show_rendering(
            spec,
            rendered[user_id],
            f"User {user_id} ({user['first_name'] or 'no first name'}, {user['platform']}, {user['timezone']}"
            + (f", {rendered[user_id].tier} tier)" if rendered[user_id].tier else ")"),
        )
    except cc.TemplateError as error:
        st.error(f"{error.field}, line {error.problem.line}: {error.problem.message}")


# ---------------------------------------------------------------- schedule
def _step_schedule(engine) -> None:
    s = st.session_state
    st.radio("When", list(KINDS), key="c_kind", horizontal=True)
    kind = KINDS[s["c_kind"]]
    if kind == "recurring":
        a, b, c = st.columns(3)
        a.selectbox("Repeats", list(FREQUENCIES), key="c_frequency")
        unit = {"Daily": "days", "Weekly": "weeks", "Monthly": "months"}[s["c_frequency"]]
        b.number_input(f"Every how many {unit}", min_value=1, max_value=52, step=1, key="c_interval")
        if s["c_frequency"] == "Weekly":
            c.multiselect("On days", list(sch.WEEKDAYS), key="c_weekdays", format_func=sch.WEEKDAY_NAMES.get)
        elif s["c_frequency"] == "Monthly":
            c.number_input("Day of the month", min_value=1, max_value=31, step=1, key="c_month_day")
    if kind != "now":
        a, b, _ = st.columns(3)
        a.time_input("Time of day", key="c_time", step=timedelta(minutes=15))
        b.date_input("Send date" if kind == "once" else "Start date", key="c_start")
        st.checkbox(
            "Deliver in each user's local time zone",
            key="c_local_time",
            help="Each user gets it at this wall-clock time in their own zone; users without one use the company zone.",
        )
    if kind == "recurring":
        a, b = st.columns(2)
        a.radio("Ends", list(ENDS), key="c_end_kind", horizontal=True)
        if s["c_end_kind"] == "On a date":
            b.date_input("End date", key="c_end_date")
        elif s["c_end_kind"] == "After a number of sends":
            b.number_input("Number of sends", min_value=1, max_value=1000, step=1, key="c_end_count")
        a, b = st.columns(2)
        a.radio("Users may receive this campaign again", list(REELIGIBILITY), key="c_reeligible")
        if REELIGIBILITY[s["c_reeligible"]] == "after":
            b.number_input(
                "Days before a user may receive it again", min_value=0, max_value=365, step=1, key="c_reeligible_days"
            )

    company_zone = cc.company_timezone(engine)
    _delivery_rules(engine, company_zone)
    spec = _spec_from_state()
    errors = sch.validate(spec.schedule, utcnow(), company_zone)
    for error in errors:
        st.error(error)
    st.caption(
        f"{sch.describe(spec.schedule, company_zone)}. Company time zone: {company_zone} (for users without a zone). "
        "On daylight-saving days a time that does not exist is sent an hour later, and a time that happens twice is sent once."
    )
    found = _audience(engine, spec)
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


def _delivery_rules(engine, company_zone: str) -> None:
    """The company's delivery rules, this campaign's opt-outs, and whether the send time is in quiet hours."""
    company = cc.delivery_rules(engine)
    st.markdown("**Delivery rules** (company-wide; set on the Data page)")
    a, b = st.columns(2)
    a.checkbox(
        "Obeys the frequency cap and counts toward it",
        key="c_obeys_cap",
        help="Untick for transactional messages: they are then neither held back by the cap nor counted in it.",
    )
    a.caption(f"Frequency cap: {company.cap.sentence()}.")
    b.checkbox("Obeys quiet hours", key="c_obeys_quiet", help="Untick for messages that must go out at any hour.")
    b.caption(f"Quiet hours: {company.quiet.sentence()}.")
    spec = _spec_from_state()
    verdict = cc.schedule_verdict(spec.schedule, company, spec.settings, company_zone, utcnow())
    if verdict:
        st.warning(verdict)


def _rule_summary(company: cc.DeliveryRules, settings: dict) -> tuple[str, str]:
    if not company.cap.enabled:
        cap = "Off company-wide"
    elif rules.obeys_cap(settings):
        cap = f"Obeys: {company.cap.sentence()[0].lower()}{company.cap.sentence()[1:]}"
    else:
        cap = "Ignored: this campaign is neither held back by it nor counted in it"
    if not company.quiet.enabled:
        quiet = "Off company-wide"
    elif rules.obeys_quiet_hours(settings):
        quiet = f"Obeys: {company.quiet.sentence()}"
    else:
        quiet = "Ignored: this campaign sends at any hour"
    return cap, quiet


def _set_time(hour: int) -> None:
    st.session_state["c_time"] = time(hour, 0)


def _sessions_chart(engine, spec: cc.CampaignSpec, reachable, company_zone: str) -> None:
    st.subheader("When this audience uses the app")
    days = spec.schedule.get("weekdays") if spec.schedule.get("frequency") == "weekly" else None
    rhythm = cc.session_rhythm(reachable, engine, days, company_zone)
    if rhythm.sessions == 0:
        st.caption("These users have no sessions to chart.")
        return
    hours = rhythm.hour_frame()
    fig = go.Figure(go.Bar(x=hours["hour"], y=hours["sessions"], marker_color="#4c78a8", name="sessions"))
    if spec.schedule.get("kind") != "now":
        at = sch.parse_time(spec.schedule["time"])
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
        if spec.schedule.get("kind") != "now":
            b.button(f"Use {suggestion.send_hour:02d}:00", on_click=_set_time, args=(suggestion.send_hour,))


def _next_sends(engine, spec: cc.CampaignSpec, reachable, company_zone: str) -> None:
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
    table = table.rename(columns={z: f"{z} ({zone_users[z]:,} users)" for z in main})
    st.caption(f"When each of the audience's main zones receives it, in company time ({company_zone}).")
    st.dataframe(table, hide_index=True, width="stretch")
    rollout = sch.first_send_rollout(spec.schedule, zone_users, now, company_zone)
    if len(rollout) > 1:
        fig = go.Figure(
            go.Scatter(
                x=rollout["send_at_company"],
                y=rollout["cumulative_users"],
                mode="lines+markers+text",
                line_shape="hv",
                text=rollout["zone"].str.split("/").str[-1],
                textposition="top left",
                textfont_size=10,
            )
        )
        fig.update_layout(
            title="How the first send rolls across time zones",
            xaxis_title=f"time ({company_zone})",
            yaxis_title="users reached",
            height=320,
            margin={"t": 40, "b": 30, "l": 40, "r": 10},
        )
        st.plotly_chart(fig, width="stretch")


# ---------------------------------------------------------------- review
def _step_review(engine) -> None:
    spec = _spec_from_state()
    company_zone = cc.company_timezone(engine)
    check = cc.validate(spec, engine, screen_time())
    if spec.segment_id is not None:
        names = dict(zip(*aud.list_segments(engine)[["id", "name"]].to_dict("list").values(), strict=True))
        audience_text = f"Segment “{names.get(spec.segment_id, spec.segment_id)}”"
    elif spec.audience:
        audience_text = f"Predictions selection: {_describe_selection(spec.audience)}"
    else:
        audience_text = "—"
    predictions = personalise.targetable_predictions(engine)
    prediction = dict(zip(predictions["id"], predictions["name"], strict=True)).get(
        spec.message.get("prediction_id"), "None"
    )
    settings = spec.settings
    again = (
        "No, only once"
        if not settings["reeligible"]
        else (
            f"Yes, after {settings['reeligible_after_days']} days"
            if settings["reeligible_after_days"] is not None
            else "Yes"
        )
    )
    rows = [
        ("Campaign name", spec.name or "—"),
        ("Audience", audience_text),
        ("Users in the audience today", f"{check.audience_users:,}"),
        ("Channel", aud.CAMPAIGN_CHANNELS.get(spec.channel, spec.channel)),
        ("Platforms", ", ".join(spec.platforms) or "All platforms"),
        ("Reachable users today", f"{check.reachable_users:,}"),
        (personalise.field_label(spec.channel, "title"), spec.message["title"] or "—"),
        ("Body", spec.message["body"] or "—"),
        ("Per-tier variants", "Yes" if spec.message["use_variants"] else "No"),
        ("Offers", " · ".join(f"{t}: {spec.message['offers'][t] or '—'}" for t in reversed(TIER_NAMES))),
        ("Likelihood from prediction", prediction),
        ("Schedule", sch.describe(spec.schedule, company_zone)),
        ("Receive again", again),
        *zip(("Frequency cap", "Quiet hours"), _rule_summary(cc.delivery_rules(engine), settings), strict=True),
    ]
    st.table(pd.DataFrame(rows, columns=["Setting", "Value"]).set_index("Setting"))
    if spec.schedule.get("kind") != "now" and not check.errors:
        upcoming = sch.next_sends(spec.schedule, utcnow(), [company_zone], company_zone, count=3)
        if not upcoming.empty:
            st.caption(
                "Next sends (company zone " + company_zone + "): " + "; ".join(upcoming["Occurrence"]) + " local"
            )
    for error in check.errors:
        st.error(error)
    for warning in check.warnings:
        st.warning(warning)
    if check.ok:
        st.success("Ready to launch.")
    left, _, middle, right = st.columns([1, 2, 1, 1.4])
    left.button("Back", on_click=_go, args=(STEPS[-2],), width="stretch")
    middle.button(
        "Save draft",
        on_click=_save_clicked,
        args=(spec,),
        width="stretch",
        disabled=not can(actor, Permission.COMPOSE_CAMPAIGN),
    )
    right.button(
        "Launch campaign",
        type="primary",
        disabled=not check.ok or not can(actor, Permission.LAUNCH_CAMPAIGN),
        on_click=_launch_clicked,
        args=(spec,),
        width="stretch",
    )


def _flash(kind: str, text: str) -> None:
    st.session_state.setdefault("c_flash", []).append((kind, text))


def _show_flash() -> None:
    for kind, text in st.session_state.pop("c_flash", []):
        {"error": st.error, "success": st.success, "toast": st.toast}[kind](text)


def _save_clicked(spec: cc.CampaignSpec) -> None:
    engine = get_engine()
    try:
        cid = cc.save_draft(
            spec,
            engine,
            st.session_state["c_campaign_id"],
            st.session_state["c_version"],
            actor=signed_in_actor(engine),
        )
    except UserError as error:
        _flash("error", str(error))
        return
    st.session_state["c_campaign_id"] = cid
    st.session_state["c_version"] = cc.get_campaign(cid, engine)[1]["version"]
    _flash("toast", f"Draft “{spec.name}” saved.")


def _launch_clicked(spec: cc.CampaignSpec) -> None:
    try:
        engine = get_engine()
        cc.launch(
            spec,
            engine,
            st.session_state["c_campaign_id"],
            st.session_state["c_version"],
            actor=signed_in_actor(engine),
        )
    except UserError as error:
        _flash("error", str(error))
        return
    _reset_composer()
    st.session_state["campaigns_view"] = "Campaigns"
    _flash(
        "success",
        f"Campaign “{spec.name}” launched. Due messages are written by `python -m core dispatch` (or on the Outbox view).",
    )


def _start_over() -> None:
    _reset_composer()
    st.query_params.clear()


def _composer(engine) -> None:
    if st.session_state["c_campaign_id"] is not None:
        st.caption(f"Editing draft #{st.session_state['c_campaign_id']}.")
    st.radio("Step", STEPS, key="composer_step", horizontal=True, label_visibility="collapsed")
    index = STEPS.index(st.session_state["composer_step"])
    st.progress((index + 1) / len(STEPS), text=f"Step {index + 1} of {len(STEPS)}: {STEPS[index]}")
    [_step_target, _step_message, _step_schedule, _step_review][index](engine)
    if index < len(STEPS) - 1:
        _nav(index)
    st.button("Start over", type="tertiary", on_click=_start_over)


# ---------------------------------------------------------------- list and outbox
def _campaign_list(engine) -> None:
    frame = cc.list_campaigns(engine)
    if frame.empty:
        st.info("No campaign yet: compose one.")
        return
    shown = frame[["name", "audience", "channel", "status", "next_send", "schedule", "messages_written"]]
    st.dataframe(
        shown.rename(columns={"next_send": "next send", "messages_written": "messages written"}),
        hide_index=True,
        width="stretch",
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


def _dispatch_clicked() -> None:
    report = cc.dispatch(get_engine())
    held = ""
    if report.total_capped or report.total_quiet_dropped or report.total_deferred:
        held = (
            f" Delivery rules: {report.total_deferred:,} sent after quiet hours, "
            f"{report.total_capped:,} held back by the frequency cap, {report.total_quiet_dropped:,} not sent in quiet hours."
        )
    _flash("success", f"{report.written:,} messages written to the outbox.{held}")
    for campaign_id, problem in report.problems.items():
        _flash("error", f"Campaign {campaign_id}: {problem}")


def _transition_clicked(campaign_id: int, action: str, version: int) -> None:
    try:
        engine = get_engine()
        status = cc.transition(campaign_id, action, engine, expected_version=version, actor=signed_in_actor(engine))
        _flash("toast", f"The campaign is now {status}.")
    except UserError as error:
        _flash("error", str(error))


def _duplicate_clicked(campaign_id: int) -> None:
    engine = get_engine()
    try:
        new_id = cc.duplicate(campaign_id, engine, actor=signed_in_actor(engine))
    except UserError as error:
        _flash("error", str(error))
        return
    _load_into_state(*cc.get_campaign(new_id, engine))
    _flash("success", "Duplicated as a new draft: change what you need, then launch it.")


def _edit_clicked(campaign_id: int) -> None:
    _load_into_state(*cc.get_campaign(campaign_id, get_engine()))


def _outbox(engine) -> None:
    st.caption(
        "This version talks to no push or email provider: due messages are rendered into this outbox, "
        "one per campaign, occurrence and user, ready for one."
    )
    st.button("Write due messages now", on_click=_dispatch_clicked, disabled=not can(actor, Permission.LAUNCH_CAMPAIGN))
    frame = cc.list_campaigns(engine)
    options = [None, *frame["id"].tolist()]
    names = dict(zip(frame["id"], frame["name"], strict=True))
    chosen = st.selectbox(
        "Outbox of", options, format_func=lambda i: "All campaigns" if i is None else names[i], key="c_outbox_choice"
    )
    rows = cc.outbox_frame(engine, chosen)
    st.metric("Messages in the outbox", f"{len(rows):,}")
    st.dataframe(rows.head(RECENT_OUTBOX_ROWS), hide_index=True, width="stretch")
    if len(rows) > RECENT_OUTBOX_ROWS:
        st.caption(f"Showing the latest {RECENT_OUTBOX_ROWS:,}; the CSV holds all {len(rows):,}.")
    st.download_button(
        "Download CSV",
        data=partial(outbox_csv_bytes, engine, chosen, actor=actor),
        file_name="outbox.csv",
        mime="text/csv",
        disabled=rows.empty or not can(actor, Permission.EXPORT),
    )


engine = get_engine()
_init_state()
st.session_state.setdefault("campaigns_view", "Compose")
_receive_selection()
st.title("Campaigns")
actor = page_actor(engine)
if not can(actor, Permission.COMPOSE_CAMPAIGN):
    st.info(f"As a {actor.role} you see campaigns; composing and launching them needs the marketer role.")
_show_flash()
view = st.radio(
    "View", ["Compose", "Campaigns", "Outbox"], key="campaigns_view", horizontal=True, label_visibility="collapsed"
)
if view == "Compose":
    _composer(engine)
elif view == "Campaigns":
    _campaign_list(engine)
else:
    _outbox(engine)
