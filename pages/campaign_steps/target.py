"""Step 1, Target: the campaign's name, its audience (a saved segment or a Predictions selection),
the channel and the platforms, with how many users that reaches today."""

from __future__ import annotations

import streamlit as st

from core.campaigns import audience as aud
from core.campaigns.draft import selection_sentence, suggested_name
from pages import as_of, as_of_help
from pages.campaign_steps import state

SOURCES = {"segment": "Saved segment", "selection": "Predictions selection"}


def render(engine) -> None:
    before = state.draft()
    draft = before
    names = state.segment_names(engine)
    predictions = state.prediction_names(engine)
    name_slot = st.container()  # on top, but filled last: its example fits the audience chosen below

    sources = list(SOURCES) if draft.selection is not None else ["segment"]
    source = st.radio(
        "Audience",
        sources,
        index=sources.index(draft.source) if draft.source in sources else 0,
        format_func=SOURCES.get,
        key="c_source",
        horizontal=True,
    )
    draft = draft.with_(source=source)
    if source == "segment":
        if not names:
            st.info(
                "No saved segment yet: build one on the Segments page first, or pick users by likelihood "
                "on the Predictions page and choose Create campaign."
            )
            left, right, _ = st.columns([1, 1, 2])
            left.page_link("pages/segments.py", label="Build a segment", icon=":material/group_add:")
            right.page_link("pages/predictions.py", label="Pick by likelihood", icon=":material/query_stats:")
        else:
            ids = list(names)
            segment_id = st.selectbox(
                "Segment",
                ids,
                index=ids.index(draft.segment_id) if draft.segment_id in ids else None,
                key="c_segment",
                format_func=lambda i: names.get(i, str(i)),
                placeholder="Choose a segment",
            )
            draft = draft.with_(segment_id=segment_id)
    else:
        st.info(f"Users from the Predictions page: {selection_sentence(draft.selection, predictions)}.")

    left, right = st.columns(2)
    channels = list(aud.CAMPAIGN_CHANNELS)
    channel = left.selectbox(
        "Channel",
        channels,
        index=channels.index(draft.channel),
        key="c_channel",
        format_func=aud.CAMPAIGN_CHANNELS.get,
    )
    platforms = right.multiselect(
        "Platforms",
        list(aud.PLATFORMS),
        default=list(draft.platforms),
        key="c_platforms",
        placeholder="All platforms",
        help="Leave empty for every platform.",
    )
    draft = draft.with_(channel=channel, platforms=tuple(platforms))
    name = name_slot.text_input(
        "Campaign name", value=draft.name, key="c_name", placeholder=suggested_name(draft, names, predictions)
    )
    draft = draft.with_(name=name)
    if (draft.source, draft.segment_id) != (before.source, before.segment_id):
        # A new audience: the copy's likelihood follows the audience's own prediction, when it has one.
        definition = draft.audience_definition(state.segment_definitions(engine))
        draft = draft.with_audience_prediction(definition, set(predictions))
        state.forget_widget("c_prediction")
    state.keep(draft)

    spec = state.spec_of(draft)
    found = state.audience(engine, spec) if spec else None
    if found is None:
        st.caption("Choose an audience to see how many users it reaches.")
        return
    _, audience, reachable = found
    a, b, c = st.columns(3)
    counted_at = st.session_state["c_counted_at"]
    a.metric("Users in the audience today", f"{len(audience):,}", help=as_of_help(counted_at))
    b.metric(f"Reachable by {aud.CAMPAIGN_CHANNELS[spec.channel].lower()}", f"{len(reachable):,}")
    c.metric("Reachable share", f"{len(reachable) / len(audience):.0%}" if len(audience) else "—")
    st.caption(f"Exact counts, {as_of(counted_at)}.")
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
