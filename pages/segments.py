"""Segments: build an audience from filters and see its exact size, live.

UI only: every number comes from core.segments. The working definition lives in the session
as groups of filters; each filter has a sequential id (1, 2, 3...) and its widgets use keys
`f<id>_<field>` (e.g. `f1_op`, `f1_value`, `f1_unit`), so a browser test can find them.
The builder and its results run in one fragment: a change reruns only that part.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial

import pandas as pd
import streamlit as st

from core import segments
from core.access import Permission, can
from core.channels import CHANNELS
from core.db import get_engine
from core.errors import UserError
from core.importer import PLATFORMS
from core.markup import plain
from core.segments.export import export_csv_stream
from core.segments.score_sizing import score_filter_sizing
from core.selection import LikelihoodSelection
from core.tiers import TIER_NAMES
from core.timeutil import screen_time
from pages import as_of, as_of_help, download_link, ensure_frame, users
from pages.components.score_slider import committed_selection, score_slider
from pages.team.access import page_actor

ensure_frame("pages/segments.py")

engine = get_engine()
STATE = "seg_state"  # {"match", "groups": [{"gid", "match", "filters": [{"uid", "type"}]}], "exclude": [...]}
CURRENT = "seg_current"  # the saved segment being edited: {"id", "name", "version"} or None
NEW_GROUP, NEW_EXCLUSION = "new group", "new exclusion group"

LABELS = {kind: f.label for kind, f in segments.FILTERS.items()}
OPS = {"more_than": "more than", "less_than": "less than"}
USER_COUNT = st.column_config.NumberColumn(format="localized", width="small")  # 12,345
# Rows tall enough for Streamlit to wrap long text (it wraps above 4rem): a filter's sentence is read whole.
WRAPPED_ROWS = 66


# --- state ---------------------------------------------------------------------------------


def _blank_state() -> dict:
    return {"match": "all", "groups": [], "exclude": [], "next_filter": 1, "next_group": 1}


def _next_id(state: dict, counter: str) -> int:
    """Filters are numbered 1, 2, 3... and groups likewise, each in the order they were added."""
    value = state[counter]
    state[counter] += 1
    return value


def _state_from_definition(definition: segments.SegmentDefinition) -> dict:
    """Session state for a definition; seeds every widget from its filter spec."""
    state = _blank_state()
    state["match"] = definition.match
    st.session_state["seg_match"] = definition.match
    for section in ("groups", "exclude"):
        for group in getattr(definition, section):
            gid = _next_id(state, "next_group")
            st.session_state[f"g{gid}_match"] = group.match
            entry = {"gid": gid, "filters": []}
            for spec in group.filters:
                uid = _next_id(state, "next_filter")
                _seed_widgets(uid, spec.model_dump())
                entry["filters"].append({"uid": uid, "type": spec.type})
            state[section].append(entry)
    return state


def _load(definition: segments.SegmentDefinition, current: dict | None) -> None:
    for key in [k for k in st.session_state if isinstance(k, str) and k[:1] in "fg" and k[1:2].isdigit()]:
        del st.session_state[key]
    st.session_state[STATE] = _state_from_definition(definition)
    st.session_state[CURRENT] = current


# --- filter widgets ---------------------------------------------------------------------


def _data():
    """The one evaluator (in memory, or SQL on data too big for memory) for every figure and picker."""
    return segments.evaluator_for(engine)


def _full_predictions() -> dict[int, str]:
    return {p.id: p.name for p in _data().predictions().values() if p.kind == "full"}


def _all_predictions() -> dict[int, str]:
    return {p.id: f"{p.name} ({p.kind})" if p.kind != "full" else p.name for p in _data().predictions().values()}


def _events() -> list[str]:
    return sorted(_data().event_names())


def _default_spec(kind: str) -> dict | None:
    predictions = list(_full_predictions())
    events = _events()
    event = "purchase" if "purchase" in events else (events[0] if events else None)
    defaults = {
        "likelihood_score": {"prediction": predictions[0] if predictions else None, "min": 75, "max": 100},
        "likelihood_category": {"prediction": predictions[0] if predictions else None, "categories": ["High"]},
        "last_used": {"op": "more_than", "value": 2, "unit": "weeks"},
        "first_used": {"op": "less_than", "value": 30, "unit": "days"},
        "session_count": {"min": 5, "max": None},
        "recent_sessions": {"min": 3, "max": None, "days": 7},
        "event": {"event": event, "min": 1, "max": None, "days": None},
        "event_time": {"event": event, "which": "last", "op": "less_than", "value": 30, "unit": "days"},
        "purchase_count": {"min": 1, "max": None},
        "money_spent": {"min": 50.0, "max": None},
        "platform": {"values": ["iOS"]},
        "country": {"values": _data().most_common("country", 1)},
        "language": {"values": _data().most_common("language", 1)},
        "timezone": {"values": _data().most_common("timezone", 1)},
        "push_enabled": {"value": True},
        "email_subscribed": {"value": True},
        "random_bucket": {"min": 0, "max": 999},
    }
    spec = {"type": kind, **defaults[kind]}
    if kind.startswith("likelihood") and spec["prediction"] is None:
        return None
    if kind.startswith("event") and event is None:
        return None
    return spec


def _widget_values(uid: int, spec: dict) -> dict:
    """The session values of a filter's widgets (keys `f<uid>_<field>`) for its spec."""
    values = {}
    kind = spec["type"]
    if kind == "likelihood_score":
        values[f"f{uid}_prediction"] = spec["prediction"]
        # a plain session value, not a widget key: the score slider component commits into it
        values[f"f{uid}_range"] = (float(spec["min"]), float(spec["max"]))
    elif kind == "likelihood_category":
        values[f"f{uid}_prediction"] = spec["prediction"]
        values[f"f{uid}_categories"] = list(spec["categories"])
    elif kind == "random_bucket":
        values[f"f{uid}_range"] = (int(spec["min"]), int(spec["max"]))
    elif kind in ("push_enabled", "email_subscribed"):
        values[f"f{uid}_value"] = "yes" if spec["value"] else "no"
    else:
        for field, value in spec.items():
            if field == "type":
                continue
            if isinstance(value, float) and value.is_integer() and kind != "money_spent":
                value = int(value)  # whole-number widgets
            if kind == "money_spent" and value is not None:
                value = float(value)
            values[f"f{uid}_{field}"] = value
    return values


def _seed_widgets(uid: int, spec: dict) -> None:
    """Put a filter's values into its widgets' session keys (widgets then render from them)."""
    st.session_state.update(_widget_values(uid, spec))


def _restore_widgets(uid: int, spec: dict) -> None:
    """Put back the widget values Streamlit dropped while another page ran (it forgets the state of
    widgets a run does not draw), from the spec the filter last had; without this a range slider
    came back as its single default value and `low, high = ...` raised."""
    for key, value in _widget_values(uid, spec).items():
        if key not in st.session_state:
            st.session_state[key] = value


def _render_filter(uid: int, kind: str, where: tuple[str, int, int] | None = None) -> dict:
    """The widgets of one filter; returns its spec as the widgets now say.

    `where` (section, group, index) places a likelihood-score filter in the definition: its
    slider is drawn once the whole definition is known (see `_draw_score_sliders`).
    """
    k = f"f{uid}_"
    spec: dict = {"type": kind}
    cols = st.columns([2, 1, 1])
    if kind in ("likelihood_score", "likelihood_category"):
        predictions = _full_predictions()
        current = st.session_state.get(k + "prediction")
        options = list(predictions) + ([current] if current is not None and current not in predictions else [])
        spec["prediction"] = cols[0].selectbox(
            "Prediction",
            options,
            key=k + "prediction",
            format_func=lambda p: predictions.get(p, f"#{p} (not targetable)"),
        )
        if kind == "likelihood_score":
            spec["min"], spec["max"] = st.session_state[k + "range"]
            _score_slots.append((st.container(), uid, where))
        else:
            spec["categories"] = st.multiselect("Categories", list(TIER_NAMES), key=k + "categories")
    elif kind in ("last_used", "first_used", "event_time"):
        if kind == "event_time":
            spec["event"] = cols[0].selectbox("Event", _events(), key=k + "event")
            spec["which"] = cols[1].selectbox("First or last time", ["first", "last"], key=k + "which")
            cols = st.columns([2, 1, 1])
        spec["op"] = cols[0].selectbox("When", list(OPS), key=k + "op", format_func=OPS.get)
        spec["value"] = cols[1].number_input("Amount", min_value=0, step=1, key=k + "value")
        spec["unit"] = cols[2].selectbox("Unit", ["days", "weeks"], key=k + "unit", format_func=lambda u: f"{u} ago")
    elif kind in ("session_count", "purchase_count", "money_spent", "recent_sessions", "event"):
        if kind == "event":
            spec["event"] = cols[0].selectbox("Event", _events(), key=k + "event")
            cols = st.columns([2, 1, 1])
        money = kind == "money_spent"
        step = 1.0 if money else 1
        spec["min"] = cols[0].number_input("At least", min_value=0.0 if money else 0, step=step, key=k + "min")
        spec["max"] = cols[1].number_input("At most", min_value=0.0 if money else 0, step=step, key=k + "max")
        if kind in ("recent_sessions", "event"):
            label = "In the last (days)" if kind == "recent_sessions" else "In the last (days, empty = ever)"
            spec["days"] = cols[2].number_input(label, min_value=1, step=1, key=k + "days")
    elif kind in ("platform", "country", "language", "timezone"):
        options = list(PLATFORMS) if kind == "platform" else _data().values_of(kind)
        spec["values"] = st.multiselect(LABELS[kind], options, key=k + "values")
    elif kind in ("push_enabled", "email_subscribed"):
        answer = cols[0].radio(LABELS[kind], ["yes", "no"], horizontal=True, key=k + "value")
        spec["value"] = answer == "yes"
    elif kind == "random_bucket":
        spec["min"], spec["max"] = st.slider("Random bucket", 0, 9999, key=k + "range")
    return spec


# --- the builder ------------------------------------------------------------------------------


def _remove_filter(section: str, gid: int, uid: int) -> None:
    state = st.session_state[STATE]
    for group in state[section]:
        if group["gid"] == gid:
            group["filters"] = [f for f in group["filters"] if f["uid"] != uid]


def _remove_group(section: str, gid: int) -> None:
    state = st.session_state[STATE]
    state[section] = [g for g in state[section] if g["gid"] != gid]


def _add_filter() -> None:
    state = st.session_state[STATE]
    kind, target = st.session_state["seg_new_type"], st.session_state["seg_new_target"]
    spec = _default_spec(kind)
    if spec is None:
        st.session_state["seg_add_error"] = (
            f"No {'full prediction' if 'likelihood' in kind else 'event'} to filter on yet."
        )
        return
    st.session_state.pop("seg_add_error", None)
    if target in (NEW_GROUP, NEW_EXCLUSION):
        section = "groups" if target == NEW_GROUP else "exclude"
        gid = _next_id(state, "next_group")
        st.session_state[f"g{gid}_match"] = "all"
        state[section].append({"gid": gid, "filters": []})
        group = state[section][-1]
    else:
        section, gid = target
        group = next(g for g in state[section] if g["gid"] == gid)
    uid = _next_id(state, "next_filter")
    _seed_widgets(uid, spec)
    group["filters"].append({"uid": uid, "type": kind})
    st.session_state["seg_new_target"] = (section, gid)  # the next filter joins this group by default


def _targets(state: dict) -> list:
    targets = [("groups", g["gid"]) for g in state["groups"]]
    targets += [("exclude", g["gid"]) for g in state["exclude"]]
    return targets + [NEW_GROUP, NEW_EXCLUSION]


def _target_label(state: dict, target) -> str:
    if target in (NEW_GROUP, NEW_EXCLUSION):
        return f"a {target}"
    section, gid = target
    position = [g["gid"] for g in state[section]].index(gid) + 1
    return f"group {position}" if section == "groups" else f"exclusion group {position}"


def _render_section(section: str, state: dict) -> list[dict]:
    groups = []
    for position, group in enumerate(state[section], start=1):
        gid = group["gid"]
        title = f"Group {position}" if section == "groups" else f"Exclusion group {position}"
        with st.container(border=True):
            head, match, remove = st.columns([2, 4, 2], vertical_alignment="center")
            head.markdown(f"**{title}**")
            if group["filters"] and len(group["filters"]) > 1:
                match.segmented_control(
                    "Users must match",
                    ["all", "any"],
                    key=f"g{gid}_match",
                    format_func={"all": "all (AND)", "any": "any (OR)"}.get,
                    label_visibility="collapsed",
                    required=True,
                )
            remove.button(
                "Remove group", key=f"g{gid}_remove", on_click=_remove_group, args=(section, gid), type="tertiary"
            )
            specs = []
            for number, item in enumerate(group["filters"]):
                if number:
                    st.caption("AND" if st.session_state.get(f"g{gid}_match", "all") == "all" else "OR")
                label, remove_filter = st.columns([5, 2], vertical_alignment="center")
                label.markdown(f"**{LABELS[item['type']]}**")
                remove_filter.button(
                    "Remove filter",
                    key=f"f{item['uid']}_remove",
                    on_click=_remove_filter,
                    args=(section, gid, item["uid"]),
                    type="tertiary",
                    icon=":material/close:",
                )
                if "spec" in item:
                    _restore_widgets(item["uid"], item["spec"])
                item["spec"] = _render_filter(item["uid"], item["type"], (section, position - 1, number))
                specs.append(item["spec"])
            if not group["filters"]:
                st.caption("No filters yet: add one below.")
        groups.append({"match": st.session_state.get(f"g{gid}_match") or "all", "filters": specs})
    return groups


_score_slots: list = []  # (container, filter uid, where) of this run's likelihood-score filters


def _commit_score_range(uid: int) -> None:
    committed = committed_selection(f"f{uid}_score")
    if committed is not None:
        st.session_state[f"f{uid}_range"] = (float(committed["min"]), float(committed["max"]))


def _draw_score_sliders(definition: segments.SegmentDefinition, now) -> None:
    """Each likelihood-score filter's histogram and slider: the bars count the users whose membership
    the range decides (those matching the rest of the definition), so dragging sizes the segment live."""
    for slot, uid, where in _score_slots:
        low, high = st.session_state[f"f{uid}_range"]
        sizing = score_filter_sizing(definition, where, engine, now)
        steps = {"below": list(sizing.users_below()), "at_most": list(sizing.users_by_score())}
        with slot:
            score_slider(
                key=f"f{uid}_score",
                label="Likelihood score",
                selection={"min": round(low), "max": round(high), "categories": []},
                on_change=partial(_commit_score_range, uid),
                steps=steps,
                sizing=sizing.to_payload(),
                log_scale="auto",
                tier_buttons=False,
            )


@st.fragment
def builder() -> None:
    # One instant per run: the count, funnel, sample, lookup, sliders and export all say the same minute.
    now = screen_time()
    _score_slots.clear()
    state = st.session_state[STATE]
    editor, results = st.columns([3, 2], gap="large")
    with editor:
        if len(state["groups"]) > 1:
            st.segmented_control(
                "Groups combine with",
                ["all", "any"],
                key="seg_match",
                format_func={"all": "AND: every group", "any": "OR: any group"}.get,
                required=True,
            )
        st.markdown("##### Include users who match")
        groups = _render_section("groups", state)
        if not state["groups"]:
            st.caption("No filters: the segment holds every user.")
        exclude = []
        if state["exclude"]:
            st.markdown("##### Exclude users who match")
            exclude = _render_section("exclude", state)
        with st.container(border=True):
            # Fixed widths that hold the longest filter name whole; on a narrow screen the row wraps.
            row = st.container(horizontal=True, vertical_alignment="bottom")
            row.selectbox("Filter", list(LABELS), key="seg_new_type", format_func=LABELS.get, width=250)
            targets = _targets(state)
            if st.session_state.get("seg_new_target") not in targets:
                st.session_state["seg_new_target"] = targets[0]
            row.selectbox("Add to", targets, key="seg_new_target", format_func=partial(_target_label, state), width=190)
            row.button("Add filter", key="seg_add_filter", on_click=_add_filter, type="primary")
            if st.session_state.get("seg_add_error"):
                st.warning(st.session_state["seg_add_error"])

    definition = {
        "version": segments.VERSION,
        "match": st.session_state.get("seg_match") or "all",
        "groups": groups,
        "exclude": exclude,
    }
    with results:
        try:
            definition = segments.parse_definition(definition)  # the page's edge: parsed once per rerun
            _draw_score_sliders(definition, now)
            report = _results(definition, now)
        except UserError as error:
            st.error(plain(error))
            return
    st.session_state["seg_definition"] = definition
    with editor:  # under the filters it follows, where a filter's sentence has room
        _funnel(report.funnel)
    _sample(definition, now)  # the whole width: nine columns
    _lookup(definition, now)


def _results(definition: segments.SegmentDefinition, now):
    names = _all_predictions()
    predictions = list(names)
    breakdown_for = st.session_state.get("seg_breakdown_prediction")
    if breakdown_for not in predictions:
        breakdown_for = predictions[0] if predictions else None
    pending = segments.pending_event_loads(definition, engine)
    loading = (
        st.spinner(f"Reading every {' and '.join(pending)} event once for this data (later counts are instant)...")
        if pending
        else nullcontext()
    )
    with loading:
        report = segments.overview(definition, engine, now, breakdown_for, names)
    st.metric("Audience", users(report.count), border=True, help=as_of_help(now))
    st.caption(f"{report.share:.1f}% of all {report.total:,} users · exact · {as_of(now)}")
    for line in segments.describe(definition, names):
        st.markdown(f"- {plain(line)}")

    st.markdown("**Reachable users per channel**")
    st.dataframe(
        pd.DataFrame([{"Channel": CHANNELS[c], "Users": n} for c, n in report.reachable.items()]),
        hide_index=True,
        key="seg_reach",
        column_config={"Users": USER_COUNT},
    )
    if predictions:
        st.selectbox("Likelihood breakdown for", predictions, key="seg_breakdown_prediction", format_func=names.get)
        st.dataframe(
            pd.DataFrame([{"Tier": r["label"], "Users": r["users"], "Share": r["share"]} for r in report.breakdown]),
            hide_index=True,
            key="seg_breakdown",
            column_config={"Users": USER_COUNT, "Share": st.column_config.NumberColumn(format="%.1f%%", width="small")},
        )
    _saving(definition, report.count, now)
    return report


def _funnel(steps: list[segments.FunnelStep]) -> None:
    if not steps:
        return
    st.markdown("**Funnel**: size after each filter")
    st.dataframe(
        pd.DataFrame([{"Filter": s.sentence, "After": s.after, "Alone": s.alone} for s in steps]),
        hide_index=True,
        key="seg_funnel",
        row_height=WRAPPED_ROWS,
        column_config={
            "Filter": st.column_config.TextColumn("Filter", width=260),  # wraps; the table stretches wider
            "After": st.column_config.NumberColumn(
                "After", format="localized", width="small", help="Users left once this filter and those above apply"
            ),
            "Alone": st.column_config.NumberColumn(
                "Alone", format="localized", width="small", help="Users this filter keeps on its own"
            ),
        },
    )


# The sample's columns: header and width (px), sized to their content: all nine show from 1024 px wide
# (narrower, the grid scrolls sideways with the user id pinned).
SAMPLE_COLUMNS = {
    "external_id": st.column_config.TextColumn("User id", width=78, pinned=True),
    "first_name": st.column_config.TextColumn("First name", width=78),
    "email": st.column_config.TextColumn("Email", width=176),
    "platform": st.column_config.TextColumn("Platform", width=70),
    "country": st.column_config.TextColumn("Country", width=66),
    "language": st.column_config.TextColumn("Language", width=74),
    "timezone": st.column_config.TextColumn("Time zone", width=138),
    "last_used_at": st.column_config.DatetimeColumn("Last used (UTC)", format="D MMM HH:mm", width=108),
    "session_count": st.column_config.NumberColumn("Sessions", format="localized", width=68),
}


def _sample(definition: segments.SegmentDefinition, now) -> None:
    st.markdown("##### Sample of matching users")
    frame = segments.sample(definition, 10, engine, now)
    st.dataframe(frame, hide_index=True, key="seg_sample", column_config=SAMPLE_COLUMNS, placeholder="—")
    st.caption("Ten users picked at random among the audience.")


def _lookup(definition: segments.SegmentDefinition, now) -> None:
    st.markdown("##### User lookup")
    st.caption("Does this user match, and if not, which filter keeps them out?")
    lookup = st.text_input("User id", key="seg_lookup", placeholder="e.g. u0000042")
    if not lookup.strip():
        return
    answer = segments.explain_user(definition, lookup, engine, now, _all_predictions())
    verdict = "matches" if answer.matches else "does not match"
    (st.success if answer.matches else st.warning)(f"{answer.external_id} {verdict}: " + "; ".join(answer.reasons))
    if answer.checks:
        rows = [{"Filter": c.sentence, "Passes": "yes" if c.passed else "no", "Where": c.where} for c in answer.checks]
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            key="seg_lookup_table",
            row_height=WRAPPED_ROWS,
            column_config={
                "Filter": st.column_config.TextColumn(width="large"),
                "Passes": st.column_config.TextColumn(width="small"),
                "Where": st.column_config.TextColumn(width="medium"),
            },
        )


def _flash(message: str) -> None:
    """Show `message` after a full rerun (the saved-segment list outside this fragment changed)."""
    st.session_state["seg_flash"] = message
    st.rerun(scope="app")


def _saved(segment, size: int) -> None:
    """`segment` was just written: edit it from now on, with its name fields cleared for next time."""
    st.session_state[CURRENT] = {"id": segment.id, "name": segment.name, "version": segment.version}
    st.session_state["seg_clear_names"] = True
    _flash(f"Saved “{plain(segment.name)}”: {users(size)}.")


def _start_new() -> None:
    """The New segment button: an empty builder, no saved segment open, no carried selection."""
    _load(segments.empty_definition(), None)
    st.session_state["seg_clear_names"] = True
    st.session_state.pop("seg_carried", None)
    st.query_params.clear()


def _saving(definition: segments.SegmentDefinition, size: int, now) -> None:
    """One state at a time: a new segment has a name and Save segment; a saved one has Save changes
    and Save as new. New segment (start again) and Export CSV are always there."""
    current = st.session_state.get(CURRENT)
    if st.session_state.pop("seg_clear_names", False):  # before the fields exist in this run
        for key in ("seg_name", "seg_save_as_name"):
            st.session_state.pop(key, None)
    with st.container(border=True):
        if st.session_state.get("seg_flash"):
            st.success(st.session_state.pop("seg_flash"))
        problem = None
        if current:
            st.markdown(f"Editing saved segment **{plain(current['name'])}**")
            buttons = st.container(horizontal=True)
            if buttons.button("Save changes", key="seg_save_changes", type="primary", disabled=not may_save):
                try:
                    _saved(
                        segments.update_segment(
                            engine, current["id"], definition, expected_version=current["version"], actor=actor
                        ),
                        size,
                    )
                except UserError as error:
                    problem = str(error)
            with buttons.popover("Save as new…", key="seg_save_as"):
                copy_name = st.text_input("Name of the new segment", key="seg_save_as_name")
                if st.button("Save as new segment", key="seg_save_new", type="primary", disabled=not may_save):
                    try:
                        _saved(segments.save_segment(engine, copy_name, definition, actor=actor), size)
                    except UserError as error:
                        st.error(plain(error))
        else:
            name = st.text_input("Segment name", key="seg_name", placeholder="e.g. Lapsed users - 2 weeks")
            buttons = st.container(horizontal=True)
            if buttons.button("Save segment", key="seg_save", type="primary", disabled=not may_save):
                try:
                    _saved(segments.save_segment(engine, name, definition, actor=actor), size)
                except UserError as error:
                    problem = str(error)
        buttons.button("New segment", key="seg_new", on_click=_start_new, help="Start again from an empty builder")
        with buttons:
            download_link.download_link(
                "Export CSV",
                f"{(current or {}).get('name') or 'segment'}.csv".replace("/", "-"),
                partial(
                    export_csv_stream,
                    definition,
                    engine,
                    now,
                    actor=actor,
                    subject=(st.session_state.get(CURRENT) or {}).get("name") or "an unsaved segment",
                ),
                key="seg_export",
                disabled=size == 0 or not can(actor, Permission.EXPORT),
                help="One row per user with their main facts and the likelihood of every prediction the segment "
                "uses. The file is made as it downloads, whatever its size.",
            )
        if problem:
            st.error(plain(problem))


# --- page --------------------------------------------------------------------------------

st.title("Segments")
actor = page_actor(engine)
may_save = can(actor, Permission.SAVE_SEGMENT)
st.caption(
    "Combine filters into groups (AND / OR), exclude users, and see the exact audience live. "
    'Relative dates ("last used more than 2 weeks ago") move with time, so a saved segment stays current.'
)

if STATE not in st.session_state:
    st.session_state[STATE] = _blank_state()
    st.session_state[CURRENT] = None

try:
    carried = LikelihoodSelection.from_query_params(st.query_params.to_dict())
except UserError as error:
    carried = None
    st.error(plain(error))
if carried is not None and st.session_state.get("seg_carried") != carried.to_query_params():
    st.session_state["seg_carried"] = carried.to_query_params()
    _load(segments.definition_of(carried.to_filter()), None)
    st.session_state["seg_clear_names"] = True

saved = segments.list_segments(engine)
with st.expander("Saved segments", expanded=not st.session_state[STATE]["groups"] and bool(saved)):
    if saved:
        by_id = {s.id: s for s in saved}
        pick, open_col = st.columns([4, 1], vertical_alignment="bottom")
        chosen = pick.selectbox("Saved segment", list(by_id), key="seg_open_id", format_func=lambda i: by_id[i].name)
        if open_col.button("Open segment", key="seg_open"):
            segment = by_id[chosen]
            try:
                _load(segment.definition, {"id": segment.id, "name": segment.name, "version": segment.version})
                st.session_state["seg_clear_names"] = True
                st.rerun()
            except UserError as error:
                st.error(f"“{plain(segment.name)}” cannot be opened: {plain(error)}")
        rename_col, rename_button, duplicate_col, delete_col = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
        new_name = rename_col.text_input("New name", key="seg_rename_to")
        if rename_button.button("Rename segment", key="seg_rename", disabled=not may_save):
            try:
                renamed = segments.rename_segment(engine, chosen, new_name, actor=actor)
                st.success(f"Renamed to “{plain(renamed.name)}”.")
                if (st.session_state.get(CURRENT) or {}).get("id") == renamed.id:
                    st.session_state[CURRENT] = {"id": renamed.id, "name": renamed.name, "version": renamed.version}
                st.rerun()
            except UserError as error:
                st.error(plain(error))
        if duplicate_col.button("Duplicate segment", key="seg_duplicate", disabled=not may_save):
            copy = segments.duplicate_segment(engine, chosen, actor=actor)
            st.success(f"Created “{plain(copy.name)}”.")
            st.rerun()
        if delete_col.button("Delete segment", key="seg_delete", disabled=not may_save):
            try:
                segments.delete_segment(engine, chosen, actor=actor)
                if (st.session_state.get(CURRENT) or {}).get("id") == chosen:
                    st.session_state[CURRENT] = None
                st.rerun()
            except UserError as error:
                st.error(plain(error))
    else:
        st.caption("No saved segments yet: build one below and press Save segment.")

try:
    builder()
except UserError as error:
    st.error(plain(error))
