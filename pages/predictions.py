"""Predictions: pick whom to target by how likely they are to perform an event.

UI only: every number comes from core.predictions. The selection (prediction, score range,
categories) lives in the URL and in the session, so it is shareable and survives page moves.
"""

import math
from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import predictions as P
from core.access import Permission, can
from core.db import get_engine
from core.errors import UserError
from core.segments import list_segments
from core.selection import LikelihoodSelection
from core.tiers import TIER_BY_NAME, TIER_NAMES, score_range_of
from pages import ensure_frame
from pages.team.access import page_actor

ensure_frame("pages/predictions.py")

TIER_COLOURS = {"Low": "#8fa3bf", "Medium": "#f0a43a", "High": "#2e9e6b"}
SAVED = "predictions_selection"  # the last selection, kept across page moves

engine = get_engine()
st.title("Predictions")
actor = page_actor(engine)
may_train = can(actor, Permission.TRAIN_PREDICTIONS)
st.caption(
    "How likely each user is to perform an event within a window. Tiers: "
    + ", ".join(TIER_BY_NAME[name].label() for name in TIER_NAMES)
    + "."
)


def new_prediction_form() -> None:
    events = P.event_names(engine)
    if not events:
        st.info("The database holds no events yet: import events on the Data page first.")
        return
    segments = list_segments(engine)
    with st.form("new_prediction"):
        left, middle, right = st.columns(3)
        event = left.selectbox("Event", events, index=events.index("purchase") if "purchase" in events else 0)
        window = middle.number_input("Window (days ahead)", min_value=1, max_value=P.MAX_WINDOW_DAYS, value=30)
        kind = right.selectbox("Kind", list(P.KINDS), format_func=lambda k: P.KINDS[k])
        audience_choice = st.selectbox(
            "Audience",
            [None, *[s.id for s in segments]],
            format_func=lambda i: "All users" if i is None else next(s.name for s in segments if s.id == i),
        )
        name = st.text_input("Name", placeholder="default: '<Event> in next N days'")
        submitted = st.form_submit_button("Train prediction", type="primary", disabled=not may_train)
    if submitted:
        audience = next((s.definition for s in segments if s.id == audience_choice), None)
        with st.status("Training the prediction...", expanded=True) as status:
            try:
                new_id = P.train_prediction(
                    engine,
                    event,
                    int(window),
                    kind=kind,
                    name=name or None,
                    audience=audience,
                    progress=st.write,
                    actor=actor,
                )
            except UserError as error:
                status.update(label="Nothing was trained", state="error")
                st.error(str(error))
                return
            status.update(label="Trained and scored", state="complete")
        st.session_state[SAVED] = {"prediction": str(new_id)}
        st.query_params.from_dict({"prediction": str(new_id)})
        st.rerun()


def update_form(prediction: P.PredictionInfo) -> None:
    newest = P.latest_event_time(engine) or prediction.as_of
    age = P.model_age_days(prediction, newest)
    st.markdown(
        f"Scores as of **{prediction.as_of:%Y-%m-%d %H:%M} UTC**; the model learned from data up to "
        f"{prediction.trained_as_of:%Y-%m-%d %H:%M} UTC, "
        f"{age:.0f} days before the newest event."
    )
    st.caption(
        f"Refreshing rescores every user on the newest data; it retrains the model too once it is "
        f"{P.RETRAIN_AFTER_DAYS} days behind. `python -m core predict --refresh NAME` does the same from a daily cron."
    )
    refresh, retrain = st.columns(2)
    action = None
    if refresh.button("Refresh scores", key="update_refresh", width="stretch", disabled=not may_train):
        action = ("Refreshing the scores...", partial(P.refresh_scores, actor=actor))
    if retrain.button("Retrain model", key="update_retrain", width="stretch", disabled=not may_train):
        action = ("Retraining the model...", partial(P.retrain_prediction, actor=actor))
    if action is None:
        return
    label, run = action
    with st.status(label, expanded=True) as status:
        try:
            run(engine, prediction.id, progress=st.write)
        except UserError as error:
            status.update(label="Nothing was changed", state="error")
            st.error(str(error))
            return
        status.update(label="Updated", state="complete")
    st.rerun()


predictions = P.list_predictions(engine)
if not predictions:
    st.info("No predictions yet. Train one: the model learns from your users' history in seconds.")
    new_prediction_form()
    st.stop()
by_id = {p.id: p for p in predictions}

# Restore the selection: the URL wins (a shared link), then this session's last one.
try:
    restored = LikelihoodSelection.from_query_params(st.query_params.to_dict())
except UserError as error:
    st.warning(str(error))
    restored = None
if restored is None and st.session_state.get(SAVED):
    restored = LikelihoodSelection.from_query_params(st.session_state[SAVED])
if restored is not None and restored.prediction_id not in by_id:
    st.warning(f"Prediction {restored.prediction_id} from the link no longer exists; showing another one.")
    restored = None
# Widget state is dropped while another page runs, so re-apply when it is missing too.
if restored is not None and (
    st.session_state.get("_applied") != restored.to_query_params() or "score_range" not in st.session_state
):
    st.session_state["prediction_pick"] = restored.prediction_id
    st.session_state["tier_pick"] = list(restored.categories)
    low, high = (
        score_range_of(list(restored.categories)) if restored.categories else (restored.score_min, restored.score_max)
    )
    st.session_state["score_range"] = (int(low), int(high))
    st.session_state["_applied"] = restored.to_query_params()
if st.session_state.get("prediction_pick") not in by_id:
    st.session_state["prediction_pick"] = next((p.id for p in predictions if p.kind == "full"), predictions[0].id)
if "score_range" not in st.session_state:  # first visit: start on the High tier
    st.session_state["tier_pick"] = ["High"]
    st.session_state["score_range"] = tuple(int(v) for v in score_range_of(["High"]))


def on_prediction_change() -> None:
    st.session_state["score_range"] = (int(score_range_of(["High"])[0]), 100)
    st.session_state["tier_pick"] = ["High"]


pick_col, update_col, new_col = st.columns([4, 1, 1], vertical_alignment="bottom")
prediction_id = pick_col.selectbox(
    "Prediction",
    list(by_id),
    format_func=lambda i: (
        by_id[i].name if by_id[i].kind in by_id[i].name.lower() else f"{by_id[i].name} ({by_id[i].kind})"
    ),
    key="prediction_pick",
    on_change=on_prediction_change,
)
prediction = by_id[prediction_id]
with new_col.popover("New prediction", width="stretch"):
    new_prediction_form()
with update_col.popover(
    "Update",
    width="stretch",
    disabled=prediction.kind != "full",
    help=None if prediction.kind == "full" else f"A {prediction.kind} prediction's scores do not update",
):
    update_form(prediction)

quality_text = "n/a" if prediction.quality is None else f"{prediction.quality_band} ({prediction.quality:.0f}%)"
facts = [
    ("Event", prediction.event, None),
    ("Window", f"{prediction.window_days} days", None),
    ("Audience", f"{prediction.audience_size:,} users", "All users" if not prediction.audience else "A segment"),
    ("Kind", prediction.kind.capitalize(), P.KINDS[prediction.kind]),
    (
        "Quality",
        quality_text,
        "Accuracy ratio on held-out users: 0% = random, 100% = perfect (2·AUC − 1). "
        "Excellent 60–100, Good 40–60, Fair 20–40, Poor 0–20."
        + (f" AUC {prediction.auc:.3f}." if prediction.auc is not None else ""),
    ),
    (
        "Last update",
        f"{prediction.updated_at:%Y-%m-%d %H:%M} UTC",
        f"Scores as of {prediction.as_of:%Y-%m-%d %H:%M} UTC",
    ),
]
with st.container(border=True):
    for column, (label, value, help_text) in zip(st.columns(len(facts)), facts, strict=True):
        column.caption(label, help=help_text)
        column.markdown(f"**{value}**")
if prediction.kind == "preview":
    st.info("Preview prediction: a first look on real data. Its scores do not update and it cannot be targeted.")
elif prediction.kind == "demo":
    st.info("Demo prediction: for trying things out. It cannot be targeted.")


def on_tiers_change() -> None:
    chosen = st.session_state.get("tier_pick") or []
    if chosen:
        low, high = score_range_of(chosen)
        st.session_state["score_range"] = (int(low), int(high))


def on_range_change() -> None:
    st.session_state["tier_pick"] = []  # a hand-set range is no longer a set of tiers


def histogram_figure(bars: list[dict], log_scale: bool = False) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=[(b["low"] + b["high"]) / 2 for b in bars],
            y=[b["users"] for b in bars],
            width=[4.6] * len(bars),
            marker={
                "color": [TIER_COLOURS[b["tier"]] for b in bars],
                "opacity": [1.0 if b["selected"] else 0.25 for b in bars],
            },
            customdata=[[f"{b['low']}–{b['high']}", b["tier"]] for b in bars],
            hovertemplate="Score %{customdata[0]} (%{customdata[1]})<br>%{y:,} users<extra></extra>",
            text=[f"{b['users']:,}" if b["users"] else "" for b in bars],
            textposition="outside",
            textfont={"size": 10},
            cliponaxis=False,
        )
    )
    for name in TIER_NAMES[1:]:
        figure.add_vline(x=TIER_BY_NAME[name].low, line_dash="dot", line_color="#999")
    for name in TIER_NAMES:
        tier = TIER_BY_NAME[name]
        figure.add_annotation(
            x=(tier.low + tier.high) / 2,
            y=1.06,
            yref="paper",
            text=name,
            showarrow=False,
            font={"color": TIER_COLOURS[name]},
        )
    figure.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"range": [0, 100], "tickvals": list(range(0, 101, 10)), "title": "Likelihood score"},
        yaxis=_log_axis(max(b["users"] for b in bars)) if log_scale else {"title": "Users", "type": "linear"},
        bargap=0,
        showlegend=False,
    )
    return figure


def _log_axis(most_users: int) -> dict:
    """A log axis from 1 user, with a tick per power of ten, so one user still shows as a bar."""
    return {
        "title": "Users (log scale)",
        "type": "log",
        "range": [-0.3, math.log10(max(most_users, 10)) + 0.25],  # from half a user: 1 shows
        "dtick": 1,
    }


@st.fragment
def selection_panel(prediction: P.PredictionInfo) -> None:
    distribution = P.score_distribution(engine, prediction.id)
    pick, scale = st.columns([3, 1], vertical_alignment="bottom")
    pick.segmented_control(
        "Likelihood category", TIER_NAMES, selection_mode="multi", key="tier_pick", on_change=on_tiers_change
    )
    log_scale = scale.toggle(
        "Log scale", key="hist_log", help="Shows small bars, e.g. a thin High tier, next to big ones"
    )
    categories = tuple(st.session_state.get("tier_pick") or ())
    low, high = st.session_state["score_range"]
    bars = distribution.histogram(low, high, categories)
    st.plotly_chart(histogram_figure(bars, log_scale), width="stretch", config={"displayModeBar": False})
    low, high = st.slider("Score range", 0, 100, key="score_range", on_change=on_range_change)
    categories = tuple(st.session_state.get("tier_pick") or ())
    selection = LikelihoodSelection(prediction.id, float(low), float(high), categories)
    if st.query_params.to_dict() != selection.to_query_params():
        st.query_params.from_dict(selection.to_query_params())
    st.session_state[SAVED] = selection.to_query_params()
    st.session_state["_applied"] = selection.to_query_params()

    figures = distribution.summary(low, high, categories)
    what = ", ".join(categories) + " likelihood" if categories else f"scores {low}–{high}"
    st.markdown(f"**Selection: {what}**")
    cols = st.columns(4)
    cols[0].metric("Users selected", f"{figures.selected:,}")
    cols[0].caption(f"{figures.selected_share:.1%} of the {figures.audience:,} users in the audience")
    cols[1].metric("Expected to perform", f"{figures.expected_captured:,.0f}")
    cols[1].progress(min(1.0, figures.expected_captured_share))
    cols[1].caption(f"{figures.expected_captured_share:.1%} of all {figures.expected_total:,.0f} expected performers")
    cols[2].metric("Not expected to perform", f"{figures.not_expected_targeted:,.0f}")
    cols[2].caption("selected users who are expected not to perform")
    cols[3].metric("Expected conversion rate", f"{figures.conversion_rate:.1%}")
    cols[3].caption(f"{figures.lift:.1f}× targeting at random ({figures.base_rate:.1%})")
    st.caption(
        "Expected figures add up each user's calibrated probability. Expected performers may "
        "perform the event without any message: the selection shows whom to reach, not what a message adds."
    )

    reason = prediction.not_targetable_reason
    left, right, _ = st.columns([1, 1, 3])
    if left.button(
        "Create segment", type="primary", disabled=reason is not None or not figures.selected, key="create_segment"
    ):
        st.switch_page("pages/segments.py", query_params=selection.to_query_params())
    if right.button("Create campaign", disabled=reason is not None or not figures.selected, key="create_campaign"):
        st.switch_page("pages/campaigns.py", query_params=selection.to_query_params())
    if reason:
        st.caption(f":material/block: {reason}")


@st.fragment
def playbook_section(prediction: P.PredictionInfo) -> None:
    distribution = P.score_distribution(engine, prediction.id)
    default_value = prediction.details.get("average_value") or P.DEFAULT_AVERAGE_ORDER_VALUE
    order_value = st.number_input(
        "Average order value (assumption)",
        min_value=0.0,
        value=round(float(default_value), 2),
        step=1.0,
        help="Defaults to the event's average value in the data, when it carries one.",
        key=f"aov_{prediction.id}",
    )
    defaults = P.default_discounts()
    discounts = {name: st.session_state.get(f"discount_{name}", defaults[name]) for name in TIER_NAMES}
    plans = P.tier_playbook(distribution, discounts, order_value)
    for column, plan in zip(st.columns(len(plans)), plans, strict=True):
        with column.container(border=True):
            st.markdown(f"#### :{_colour_name(plan.tier)}[{plan.tier}] · {plan.range_label.split(' ', 1)[1]}")
            st.caption(plan.who)
            st.markdown(
                f"**{plan.users:,} users**, about **{plan.expected_conversions:,.0f}** expected to perform '{prediction.event}'"
            )
            st.markdown("\n".join(f"- {message}" for message in plan.messages))
            st.number_input(
                "Discount (%)", 0.0, 100.0, step=5.0, value=float(defaults[plan.tier]), key=f"discount_{plan.tier}"
            )
            st.markdown(f"Earns **{plan.revenue:,.0f}** · discount costs **{plan.discount_cost:,.0f}**")
    st.caption(
        "Sliding scale: the more likely a user is to buy, the smaller the discount they need. Figures assume "
        "the expected conversions at the average order value; some would happen without the offer."
    )


def _colour_name(tier: str) -> str:
    return {"Low": "blue", "Medium": "orange", "High": "green"}[tier]


def calibration_section(prediction: P.PredictionInfo) -> None:
    table = prediction.details.get("calibration") or []
    if not table:
        st.caption("No calibration table for this prediction.")
        return
    frame = pd.DataFrame(table)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, frame["expected_rate"].max() * 100],
            y=[0, frame["expected_rate"].max() * 100],
            mode="lines",
            line={"dash": "dot", "color": "#999"},
            name="Perfect",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=frame["expected_rate"] * 100,
            y=frame["observed_rate"] * 100,
            mode="lines+markers",
            name="Held-out users",
            customdata=frame[["decile", "users"]],
            hovertemplate="Decile %{customdata[0]} (%{customdata[1]:,} users)<br>expected %{x:.1f}%, observed %{y:.1f}%<extra></extra>",
        )
    )
    figure.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": "Expected rate (%)"},
        yaxis={"title": "Observed rate (%)"},
        legend={"orientation": "h", "y": -0.25},
    )
    st.plotly_chart(figure, width="stretch", config={"displayModeBar": False})
    held = prediction.details.get("holdout_users", 0)
    st.caption(
        f"{held:,} held-out users, by decile of predicted probability. "
        f"Observed {prediction.details.get('holdout_observed_rate', 0):.1%}, expected "
        f"{prediction.details.get('holdout_expected_rate', 0):.1%} overall."
    )


def drivers_section(prediction: P.PredictionInfo) -> None:
    drivers = prediction.details.get("drivers") or []
    if not drivers:
        st.caption("No drivers for this prediction.")
        return
    frame = pd.DataFrame(drivers)
    st.dataframe(
        pd.DataFrame(
            {
                "Trait": frame["trait"],
                "Group": frame["group"],
                "Share": frame["users_share"] * 100,
                "vs average": frame["ratio"],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "Share": st.column_config.NumberColumn(format="%.0f%%", help="Share of the audience in the group"),
            "vs average": st.column_config.NumberColumn(format="%.2f×", help="Group mean score / audience mean"),
        },
    )
    st.caption("The group's mean score divided by the audience's mean score.")


def reasons_section(prediction: P.PredictionInfo) -> None:
    with st.form("user_reasons"):
        user = st.text_input("User id", placeholder="e.g. u0000042")
        asked = st.form_submit_button("Explain this user's score")
    if asked and user.strip():
        try:
            answer = P.user_reasons(engine, prediction.id, user)
        except UserError as error:
            st.error(str(error))
            return
        st.markdown(f"**Score {answer['score']:.1f}** · {answer['category']} likelihood")
        if not answer["reasons"]:
            st.caption("This user is close to a typical user on every trait.")
            return
        st.dataframe(
            pd.DataFrame(
                {
                    "Trait": [r["trait"] for r in answer["reasons"]],
                    "This user": [r["value"] for r in answer["reasons"]],
                    "Typical user": [r["typical"] for r in answer["reasons"]],
                    "Effect on score": [r["effect"] for r in answer["reasons"]],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"Effect on score": st.column_config.NumberColumn(format="%+.1f points")},
        )
        st.caption("Each effect: how the score would change if this trait were a typical user's.")


selection_panel(prediction)
st.divider()
st.subheader("Tier playbook")
playbook_section(prediction)
st.divider()
trust_left, trust_right = st.columns([2, 3], gap="large")
with trust_left:
    st.subheader("Calibration")
    calibration_section(prediction)
with trust_right:
    st.subheader("Drivers")
    drivers_section(prediction)
st.subheader("Why does a user score what they score?")
reasons_section(prediction)
