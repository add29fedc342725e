"""The composer's session: one `ComposerDraft` (core/campaigns/draft.py) and the step on screen.

Widgets keep keys (`c_name`, `c_time`, ...) so tests and the browser can find them, but those
keys are only Streamlit's widget memory: the draft is the state of record. Each step seeds its
widgets from the draft (`value=`/`index=`) and writes their answers back into a new draft.
Replacing the draft (open a saved one, start over, a suggested send hour) forgets the widget
keys, so the widgets seed again from it.
"""

from __future__ import annotations

import streamlit as st

from core import campaigns as cc
from core import segments
from core.campaigns import audience as aud
from core.campaigns import personalise
from core.campaigns.draft import ComposerDraft
from core.campaigns.spec import CampaignSpec
from core.errors import UserError
from core.markup import plain
from core.timeutil import screen_time, utcnow

STEPS = ["Target", "Message", "Schedule", "Review & launch"]
DRAFT = "composer_draft"
STEP = "composer_step"
WIDGET_PREFIX = "c_"
KEPT = {"c_flash", "c_selection_token", "c_list_choice", "c_outbox_choice", "c_preview_seed"}  # not the draft's widgets


def draft() -> ComposerDraft:
    if DRAFT not in st.session_state:
        st.session_state[DRAFT] = ComposerDraft.new(utcnow().date())
    return st.session_state[DRAFT]


def keep(new: ComposerDraft) -> ComposerDraft:
    """Store the draft the widgets now describe."""
    st.session_state[DRAFT] = new
    return new


def replace(new: ComposerDraft) -> None:
    """Put a different draft in the composer: its widgets seed again from it."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(WIDGET_PREFIX) and k not in KEPT]:
        del st.session_state[key]
    st.session_state[DRAFT] = new


def forget_widget(key: str) -> None:
    """Let one widget seed again from the draft (after a button changed that field)."""
    st.session_state.pop(key, None)


def reset() -> None:
    replace(ComposerDraft.new(utcnow().date()))
    st.session_state[STEP] = STEPS[0]


def go(step: str) -> None:
    st.session_state[STEP] = step


def nav(index: int) -> None:
    left, _, right = st.columns([1, 4, 1])
    if index > 0:
        left.button("Back", on_click=go, args=(STEPS[index - 1],), width="stretch")
    if index < len(STEPS) - 1:
        right.button("Next", type="primary", on_click=go, args=(STEPS[index + 1],), width="stretch")


UNREADABLE_RULES = (
    "The stored delivery rules cannot be read: set them again on the Data page. Nothing is sent until then."
)


def company_rules(engine) -> cc.DeliveryRules | None:
    """The company's delivery rules, or None when the stored row cannot be read (dispatch refuses to run then)."""
    try:
        return cc.delivery_rules(engine)
    except UserError:
        return None


def flash(kind: str, text: str) -> None:
    st.session_state.setdefault("c_flash", []).append((kind, text))


def show_flash() -> None:
    for kind, text in st.session_state.pop("c_flash", []):
        {"error": st.error, "success": st.success, "toast": st.toast}[kind](text)


# --- what the steps look up -------------------------------------------------------------------


def segment_definitions(engine) -> dict[int, segments.SegmentDefinition]:
    """Saved segments' definitions, parsed from their rows (those that no longer parse are left out)."""
    definitions = {}
    for row in aud.list_segments(engine).itertuples():
        try:
            definitions[int(row.id)] = segments.parse_definition(row.definition)
        except UserError:
            continue
    return definitions


def segment_names(engine) -> dict[int, str]:
    frame = aud.list_segments(engine)
    return dict(zip(frame["id"].astype(int), frame["name"], strict=True))


def prediction_names(engine) -> dict[int, str]:
    """Targetable predictions by id (the copy's likelihood and the selections name them)."""
    predictions = personalise.targetable_predictions(engine)
    return dict(zip(predictions["id"].astype(int), predictions["name"], strict=True))


def spec_of(current: ComposerDraft) -> CampaignSpec | None:
    """The draft as a campaign spec (None, with the message shown, when it does not make one)."""
    try:
        return current.to_spec()
    except UserError as error:
        st.error(plain(error))
        return None


def audience(engine, spec: CampaignSpec):
    """(definition, audience ids, reachable ids), or None when no audience is chosen."""
    try:
        definition = aud.campaign_definition(engine, spec.segment_id, spec.audience)
        if definition is None:
            return None
        now = st.session_state["c_counted_at"] = screen_time()  # the figures say which minute they counted at
        found, reachable = aud.reachable_user_ids(engine, definition, spec.channel, spec.platforms, now)
    except UserError as error:
        st.error(plain(error))
        return None
    return definition, found, reachable
