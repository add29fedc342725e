"""The campaign composer, one file per step (UI only; the draft and every rule live in core).

state.py    the composer's one draft in the session, steps, flash messages, shared look-ups
target.py   step 1: name, audience, channel, platforms
message.py  step 2: copy, offers, variants, preview
schedule.py step 3: when it sends, delivery rules, sessions, next sends, rollout
review.py   step 4: review, save the draft, launch
listing.py  the campaigns list and its actions
"""

from __future__ import annotations

import streamlit as st

from core.access import Actor
from pages.campaign_steps import message, review, schedule, state, target

RENDERERS = [target.render, message.render, schedule.render]  # review.render acts, so it also takes the actor


def _start_over() -> None:
    state.reset()
    st.query_params.clear()


def compose(engine, actor: Actor) -> None:
    """The composer: the step chooser, the step on screen, Back / Next."""
    campaign_id = state.draft().campaign_id
    if campaign_id is not None:
        st.caption(f"Editing draft #{campaign_id}.")
    st.session_state.setdefault(state.STEP, state.STEPS[0])
    st.radio("Step", state.STEPS, key=state.STEP, horizontal=True, label_visibility="collapsed")
    index = state.STEPS.index(st.session_state[state.STEP])
    st.progress((index + 1) / len(state.STEPS), text=f"Step {index + 1} of {len(state.STEPS)}: {state.STEPS[index]}")
    if index < len(RENDERERS):
        RENDERERS[index](engine)
    else:
        review.render(engine, actor)
    if index < len(state.STEPS) - 1:
        state.nav(index)
    st.button("Start over", type="tertiary", on_click=_start_over)
