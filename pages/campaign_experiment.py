"""The composer's measurement and A/B/n variant editors (UI only; core/campaigns/experiment.py decides).

The composer (pages/campaigns.py) calls: `defaults()` for its session keys, `message_from_state()` and
`settings_from_state()` when it builds the spec, `load_into_state(spec)` when it opens a draft,
`variant_editor(...)` on the Message step, `measurement_editor(...)` on the Schedule step and
`review_rows(...)` on the Review step.
"""

from __future__ import annotations

import streamlit as st

from core.campaigns import experiment as X
from core.campaigns.personalise import targetable_predictions
from core.predictions.features import event_names
from core.tiers import TIER_NAMES

NAMES = "ABCDE"
DEFAULT_EVENT = ""  # the selectbox's "default" choice: the prediction's event, else a session


def _variant_keys(index: int) -> dict:
    return {
        f"x_v{index}_name": NAMES[index],
        f"x_v{index}_share": 50 if index < 2 else 0,
        f"x_v{index}_delay": 0,
        f"x_v{index}_title": "",
        f"x_v{index}_body": "",
        **{f"x_v{index}_offer_{tier}": "" for tier in TIER_NAMES},
    }


def defaults() -> dict:
    keys = {
        "x_event": DEFAULT_EVENT,
        "x_window": X.DEFAULT_WINDOW_DAYS,
        "x_control": int(X.DEFAULT_CONTROL_PERCENT),
        "x_ab": False,
        "x_variant_count": 2,
    }
    for index in range(X.MAX_VARIANTS):
        keys |= _variant_keys(index)
    return keys


def message_from_state() -> dict:
    s = st.session_state
    if not s["x_ab"]:
        return {X.VARIANTS_KEY: []}
    variants = []
    for index in range(int(s["x_variant_count"])):
        offers = {t: s[f"x_v{index}_offer_{t}"] for t in TIER_NAMES if s[f"x_v{index}_offer_{t}"].strip()}
        variants.append(
            {
                "name": s[f"x_v{index}_name"].strip(),
                "share": s[f"x_v{index}_share"],
                "delay_minutes": int(s[f"x_v{index}_delay"]),
                "title": s[f"x_v{index}_title"],
                "body": s[f"x_v{index}_body"],
                "offers": offers,
            }
        )
    return {X.VARIANTS_KEY: variants}


def settings_from_state() -> dict:
    s = st.session_state
    return {
        X.EVENT_KEY: s["x_event"] or None,
        X.WINDOW_KEY: int(s["x_window"]),
        X.CONTROL_KEY: s["x_control"],
    }


def load_into_state(spec) -> None:
    """A saved draft's measurement and variants into the widgets."""
    s = st.session_state
    settings = spec.settings or {}
    s["x_event"] = settings.get(X.EVENT_KEY) or DEFAULT_EVENT
    s["x_window"] = int(settings.get(X.WINDOW_KEY, X.DEFAULT_WINDOW_DAYS))
    s["x_control"] = int(settings.get(X.CONTROL_KEY, X.DEFAULT_CONTROL_PERCENT))
    variants = (spec.message or {}).get(X.VARIANTS_KEY) or []
    s["x_ab"] = bool(variants)
    if variants:
        s["x_variant_count"] = len(variants)
    for index, variant in enumerate(variants[: X.MAX_VARIANTS]):
        s[f"x_v{index}_name"] = variant.get("name", NAMES[index])
        s[f"x_v{index}_share"] = int(variant.get("share", 0))
        s[f"x_v{index}_delay"] = int(variant.get("delay_minutes") or 0)
        s[f"x_v{index}_title"] = variant.get("title", "")
        s[f"x_v{index}_body"] = variant.get("body", "")
        for tier in TIER_NAMES:
            s[f"x_v{index}_offer_{tier}"] = (variant.get("offers") or {}).get(tier, "")


def _split_evenly() -> None:
    count = int(st.session_state["x_variant_count"])
    shares = [100 // count + (1 if i < 100 % count else 0) for i in range(count)]
    for index, share in enumerate(shares):
        st.session_state[f"x_v{index}_share"] = share


def variant_editor(title_label: str) -> None:
    """A/B/n variants on the Message step: name, share, a later send time, copy and offers."""
    st.checkbox(
        "A/B test: send variants of this message",
        key="x_ab",
        help="Each treated user gets one variant, from their random bucket; Results compares them.",
    )
    if not st.session_state["x_ab"]:
        return
    left, right = st.columns([1, 3])
    left.number_input("Variants", min_value=2, max_value=X.MAX_VARIANTS, step=1, key="x_variant_count")
    right.button("Split evenly", on_click=_split_evenly)
    st.caption(
        "Blank copy or offers fall back to the message above. 'Send later' tests a second send time: "
        "that variant goes out this many minutes after the schedule's time."
    )
    for index in range(int(st.session_state["x_variant_count"])):
        with st.container(border=True):
            name, share, delay = st.columns(3)
            name.text_input("Variant name", key=f"x_v{index}_name", max_chars=X.VARIANT_NAME_LENGTH)
            share.number_input("Share of treated users (%)", min_value=0, max_value=100, key=f"x_v{index}_share")
            delay.number_input(
                "Send later by (minutes)", min_value=0, max_value=X.MAX_DELAY_MINUTES, step=15, key=f"x_v{index}_delay"
            )
            st.text_input(f"{title_label} (variant)", key=f"x_v{index}_title")
            st.text_area("Body (variant)", key=f"x_v{index}_body", height=70)
            for column, tier in zip(st.columns(len(TIER_NAMES)), reversed(TIER_NAMES), strict=True):
                column.text_input(f"{tier} offer (variant)", key=f"x_v{index}_offer_{tier}")
    for problem in X.problems({}, message_from_state()):
        st.error(problem)


def measurement_editor(engine, prediction_id: int | None) -> None:
    """What counts as a conversion, for how long, and how many users are held out (the Schedule step)."""
    st.markdown("**Measure the effect**")
    predictions = targetable_predictions(engine)
    events = dict(zip(predictions["id"], predictions["event"], strict=True))
    default = X.default_conversion_event(events.get(prediction_id))
    names = [DEFAULT_EVENT, *[n for n in event_names(engine) if n]]
    if st.session_state["x_event"] not in names:
        names.append(st.session_state["x_event"])
    event, window, control = st.columns(3)
    event.selectbox(
        "Conversion event",
        names,
        key="x_event",
        format_func=lambda n: f"Default ({default})" if n == DEFAULT_EVENT else n,
        help="Default: the prediction's event when the campaign uses one, else a session.",
    )
    window.number_input("Conversion window (days)", min_value=1, max_value=X.MAX_WINDOW_DAYS, step=1, key="x_window")
    control.slider(
        "Control group (%)",
        min_value=0,
        max_value=int(X.MAX_CONTROL_PERCENT),
        key="x_control",
        help="A random share of the audience that is never messaged, the same users at every send: "
        "the only way to tell what the message changed from what would have happened anyway.",
    )
    for problem in X.problems(settings_from_state(), {}):
        st.error(problem)


def review_rows(spec) -> list[tuple[str, str]]:
    """The Review step's lines about measurement and variants."""
    settings = spec.settings or {}
    event = settings.get(X.EVENT_KEY) or "default (the prediction's event, else a session)"
    rows = [
        ("Conversion", f"'{event}' within {settings.get(X.WINDOW_KEY, X.DEFAULT_WINDOW_DAYS)} days of a send"),
        (
            "Control group",
            f"{settings.get(X.CONTROL_KEY, X.DEFAULT_CONTROL_PERCENT):g}% of the audience, never messaged",
        ),
    ]
    variants = (spec.message or {}).get(X.VARIANTS_KEY) or []
    if variants:
        described = " · ".join(
            f"{v.get('name')}: {v.get('share')}%"
            + (f", {v['delay_minutes']} min later" if v.get("delay_minutes") else "")
            for v in variants
        )
        rows.append(("A/B variants", described))
    return rows
