"""Campaigns: compose (target -> message -> schedule -> review & launch), the list, the outbox.

The screen entry that st.navigation runs. Each composer step is its own file in
pages/campaign_steps/, over one typed draft (core/campaigns/draft.py).
"""

from __future__ import annotations

import streamlit as st

from core import campaigns as cc
from core.campaigns.draft import ComposerDraft
from core.csvout import frame_csv_bytes
from core.db import get_engine
from core.errors import UserError
from core.markup import plain
from core.segments import definition_of
from core.selection import LikelihoodSelection
from core.timeutil import utcnow
from pages import ensure_frame
from pages.campaign_steps import compose, listing, state

ensure_frame("pages/campaigns.py")

RECENT_OUTBOX_ROWS = 1_000
_flash = state.flash


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
        _flash("error", f"Campaign {campaign_id}: {plain(problem)}")


def _outbox(engine) -> None:
    st.caption(
        "This version talks to no push or email provider: due messages are rendered into this outbox, "
        "one per campaign, occurrence and user, ready for one."
    )
    st.button("Write due messages now", on_click=_dispatch_clicked)
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
        data=frame_csv_bytes(rows),  # formula-safe, like every CSV we write
        file_name="outbox.csv",
        mime="text/csv",
        disabled=rows.empty,
    )


engine = get_engine()
st.session_state.setdefault("campaigns_view", "Compose")
_receive_selection()
st.title("Campaigns")
state.show_flash()
view = st.radio(
    "View", ["Compose", "Campaigns", "Outbox"], key="campaigns_view", horizontal=True, label_visibility="collapsed"
)
if view == "Compose":
    compose(engine)
elif view == "Campaigns":
    listing.render(engine)
else:
    _outbox(engine)
