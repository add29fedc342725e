"""Campaigns: compose (target -> message -> schedule -> review & launch), the list, the outbox, results.

The screen entry that st.navigation runs. Each composer step is its own file in
pages/campaign_steps/, over one typed draft (core/campaigns/draft.py).
"""

from __future__ import annotations

import streamlit as st

from core.access import Permission, can
from core.campaigns.draft import ComposerDraft
from core.db import get_engine
from core.errors import UserError
from core.markup import plain
from core.segments import definition_of
from core.selection import LikelihoodSelection
from core.timeutil import utcnow
from pages import campaign_results, ensure_frame, outbox_view
from pages.campaign_steps import compose, listing, state
from pages.team.access import page_actor

ensure_frame("pages/campaigns.py")


def _receive_selection() -> None:
    """A selection carried from the Predictions page becomes the composer's audience (once per link)."""
    try:
        selection = LikelihoodSelection.from_query_params(st.query_params.to_dict())
    except UserError as error:
        st.error(plain(error))
        return
    if selection is None:
        return
    token = str(sorted(st.query_params.to_dict().items()))
    if st.session_state.get("c_selection_token") == token:
        return
    st.session_state["c_selection_token"] = token
    state.reset()
    draft = ComposerDraft.new(utcnow().date()).with_(source="selection", selection=definition_of(selection.to_filter()))
    state.replace(draft.with_message(prediction_id=selection.prediction_id))
    st.session_state["campaigns_view"] = "Compose"


engine = get_engine()
st.session_state.setdefault("campaigns_view", "Compose")
_receive_selection()
st.title("Campaigns")
actor = page_actor(engine)
if not can(actor, Permission.COMPOSE_CAMPAIGN):
    st.info(
        f"As {'an' if actor.role[0] in 'aeiou' else 'a'} {actor.role} you see campaigns; composing and launching them needs the marketer role."
    )
state.show_flash()
view = st.radio(
    "View",
    ["Compose", "Campaigns", "Outbox", "Results"],
    key="campaigns_view",
    horizontal=True,
    label_visibility="collapsed",
)
if view == "Compose":
    compose(engine, actor)
elif view == "Campaigns":
    listing.render(engine, actor)
elif view == "Results":
    campaign_results.render(engine)
else:
    outbox_view.render(engine, actor)
