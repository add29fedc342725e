"""Predictions: pick whom to target by how likely they are to perform an event.

UI only: every number comes from core.predictions. The selection (prediction, score range,
categories) lives in the URL and in the session, so it is shareable and survives page moves.
"""

from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import predictions as P
from core.access import Permission, can
from core.db import get_engine
from core.errors import UserError
from core.markup import plain
from core.segments import list_segments
from core.selection import LikelihoodSelection
from core.tiers import TIER_BY_NAME, TIER_NAMES, score_range_of
from pages import ensure_frame, prediction_evidence
from pages.components.score_slider import LOG_SCALE_RATIO, committed_selection, readable_scale, score_slider
from pages.team.access import page_actor

ensure_frame("pages/predictions.py")

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
        backtest_first = st.checkbox(
            "Run a backtest first",
            help="Replays the last two windows of your data: learns from the earlier one, predicts the later one, "
            "and compares the result with the classic models (most recent first, RFM, BG/NBD). Takes about as "
            "long again as training.",
        )
        submitted = st.form_submit_button("Train prediction", type="primary", disabled=not may_train)
    if submitted:
        audience = next((s.definition.to_json() for s in segments if s.id == audience_choice), None)
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
                    backtest=backtest_first,
                    actor=actor,
                )
            except UserError as error:
                status.update(label="Nothing was trained", state="error")
                st.error(plain(error))
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
            st.error(plain(error))
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
    st.warning(plain(error))
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


pick_col, update_col, new_col = st.columns([3, 1, 1], vertical_alignment="bottom")
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


SLIDER = "score_slider"  # the histogram-and-slider component's key


def on_slider_commit() -> None:
    """The browser released a thumb, pressed a key or a tier: that selection becomes the page's."""
    committed = committed_selection(SLIDER)
    if committed is None:
        return
    st.session_state["score_range"] = (committed["min"], committed["max"])
    st.session_state["tier_pick"] = [c for c in committed["categories"] if c in TIER_NAMES]


def on_scale_change() -> None:
    st.session_state["hist_log_chosen"] = True  # from now on the reader's choice, not the automatic one


@st.fragment
def selection_panel(prediction: P.PredictionInfo) -> None:
    distribution = P.score_distribution(engine, prediction.id)
    categories = tuple(st.session_state.get("tier_pick") or ())
    low, high = st.session_state["score_range"]
    bars = distribution.histogram(low, high, categories)
    if not st.session_state.get("hist_log_chosen"):
        st.session_state["hist_log"] = readable_scale(bars)
    log_scale = st.toggle(
        "Log scale",
        key="hist_log",
        on_change=on_scale_change,
        help=f"Shows small bars next to big ones. On by default when the tallest bar is over "
        f"{LOG_SCALE_RATIO}× the tallest selected one.",
    )
    score_slider(
        key=SLIDER,
        label="Score range",
        selection={"min": int(low), "max": int(high), "categories": list(categories)},
        on_change=on_slider_commit,
        steps=distribution.score_steps().to_payload(),
        log_scale=log_scale,
    )
    selection = LikelihoodSelection(prediction.id, float(low), float(high), categories)
    if st.query_params.to_dict() != selection.to_query_params():
        st.query_params.from_dict(selection.to_query_params())
    st.session_state[SAVED] = selection.to_query_params()
    st.session_state["_applied"] = selection.to_query_params()

    figures = distribution.summary(low, high, categories)
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


def backtest_section(prediction: P.PredictionInfo) -> None:
    result = P.stored_backtest(prediction.details)
    if result is None:
        st.caption(
            f"How would this prediction have done on your own history? A backtest learns from the window before "
            f"last, predicts the last {prediction.window_days} days, and compares with the classic models."
        )
    else:
        bullets = [f"- {plain(sentence)}" for sentence in P.summary_sentences(result)]
        st.markdown("\n".join(bullets))
        st.dataframe(
            pd.DataFrame(
                {
                    "Model": [s.label for s in result.scores],
                    "AUC": [s.auc for s in result.scores],
                    "95% interval": [f"{s.auc_low:.3f}–{s.auc_high:.3f}" for s in result.scores],
                    "Top tenth holds": [s.top_tenth_recall * 100 for s in result.scores],
                    "High tier lift": [
                        "nobody" if s.high_tier_lift is None else f"{s.high_tier_lift:.2f}×" for s in result.scores
                    ],
                    "Expected": [round(s.expected_performers) for s in result.scores],
                    "Observed": [s.observed_performers for s in result.scores],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "AUC": st.column_config.NumberColumn(
                    format="%.3f", help="Chance a user who did it ranks above one who did not (0.5 = random)"
                ),
                "Top tenth holds": st.column_config.NumberColumn(
                    format="%.0f%%", help="Share of the users who did it that the model's top 10% held"
                ),
                "High tier lift": st.column_config.TextColumn(
                    help="Rate in the High tier / overall rate ('nobody': the model scored nobody High)"
                ),
                "Expected": st.column_config.NumberColumn(format="localized"),
                "Observed": st.column_config.NumberColumn(format="localized"),
            },
        )
        st.caption(
            f"Learned from history up to {result.training_cutoff:%Y-%m-%d}, predicted "
            f"{result.evaluation_cutoff:%Y-%m-%d} to {result.as_of:%Y-%m-%d} for all "
            f"{result.evaluation_users:,} users ({result.evaluation_performers:,} did '{result.event}'). "
            f"`python -m core backtest --event {result.event} --window-days {result.window_days}` prints the same."
        )
    if st.button("Run the backtest again" if result else "Run a backtest", key="run_backtest", disabled=not may_train):
        with st.status("Backtesting...", expanded=True) as status:
            try:
                P.backtest_prediction(engine, prediction.id, progress=st.write, actor=actor)
            except UserError as error:
                status.update(label="No backtest", state="error")
                st.error(plain(error))
                return
            status.update(label="Backtested", state="complete")
        st.rerun()


def reasons_section(prediction: P.PredictionInfo) -> None:
    with st.form("user_reasons"):
        user = st.text_input("User id", placeholder="e.g. u0000042")
        asked = st.form_submit_button("Explain this user's score")
    if asked and user.strip():
        try:
            answer = P.user_reasons(engine, prediction.id, user)
        except UserError as error:
            st.error(plain(error))
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
with st.container(key="trust"):  # layout.css stacks these two below 1000 px: Drivers needs the width
    trust_left, trust_right = st.columns([2, 3], gap="large")
with trust_left:
    st.subheader("Calibration")
    calibration_section(prediction)
with trust_right:
    st.subheader("Drivers")
    drivers_section(prediction)
st.subheader("Backtest: against the classic models")
backtest_section(prediction)
st.subheader("Why does a user score what they score?")
reasons_section(prediction)
st.divider()
prediction_evidence.measured_in_campaigns(engine, prediction.id, prediction.event)
