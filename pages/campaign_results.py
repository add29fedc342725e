"""The Campaigns page's Results view: treated against control, per send, tier and variant (UI only)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.campaigns import results as R
from core.errors import UserError
from core.markup import plain
from core.timeutil import utcnow
from pages import uplift_table

GROUP_COLOURS = {"Treated": "#2e7d32", "Control": "#9e9e9e"}


def count(value: int) -> str:
    return f"{value:,}"


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def points(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.2f} pts"


def interval(ci: tuple[float, float] | None) -> str:
    return "—" if ci is None else f"95% interval {ci[0] * 100:+.2f} to {ci[1] * 100:+.2f} pts"


def money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def p_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _table(frame: pd.DataFrame, label: str) -> None:
    """A group table: counts, rates, uplift with its interval, and the verdict."""
    if frame.empty:
        return
    number = st.column_config.NumberColumn
    uplift_table.show(
        frame.rename(columns={"group": label}),
        {
            "converted_treated": number("converted (treated)", format="localized"),
            "converted_control": number("converted (control)", format="localized"),
            "revenue_per_user_treated": number("revenue/user treated", format="%.2f"),
            "revenue_per_user_control": number("revenue/user control", format="%.2f"),
        },
    )


def _curve(curve: pd.DataFrame) -> None:
    figure = go.Figure()
    for group, points_of_group in curve.groupby("group", sort=False):
        figure.add_trace(
            go.Scatter(
                x=points_of_group["time"],
                y=points_of_group["rate"] * 100,
                mode="lines",
                line={"shape": "hv", "color": GROUP_COLOURS.get(group)},
                name=group,
                customdata=points_of_group["converted"],
                hovertemplate="%{x}<br>%{y:.2f}% converted (%{customdata:,} users)<extra>" + group + "</extra>",
            )
        )
    figure.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis_title="converted (% of group)",
        legend={"orientation": "h", "y": 1.12},
    )
    st.plotly_chart(figure, width="stretch")


def render(engine) -> None:
    """The Results view: pick a launched campaign, see whether its messages changed anything."""
    campaigns = R.launched_campaigns(engine)
    if campaigns.empty:
        st.info("No campaign has been launched yet: results appear here once one sends.")
        return
    names = dict(zip(campaigns["id"], campaigns["name"], strict=True))
    chosen = st.selectbox("Results of", campaigns["id"].tolist(), format_func=names.get, key="r_campaign")
    try:
        results = R.campaign_results(int(chosen), engine, utcnow())
    except UserError as error:
        st.error(plain(error))
        return
    m = results.measurement
    st.caption(
        f"Converted = performed '{m.conversion_event}' within {m.window_days} days of a send. "
        f"Control group: {m.control_percent:g}% of the audience, never messaged, recorded when the send "
        "would have happened. Treated counts every user messaged, delivered or not, so both groups are "
        "built the same way."
    )
    overall = results.overall
    c = overall.comparison
    if c.significant:
        st.success(c.verdict())
    else:
        st.info(c.verdict())
    first, second, third, fourth = st.columns(4)
    first.metric("Treated", count(c.treated))
    second.metric("Control", count(c.control))
    third.metric("Delivered", count(overall.delivered))
    fourth.metric("Audience", count(overall.audience))
    first, second, third, fourth = st.columns(4)
    first.metric(
        "Converted (treated)", count(c.converted_treated), rate(c.rate_treated), delta_color="off", delta_arrow="off"
    )
    second.metric(
        "Converted (control)", count(c.converted_control), rate(c.rate_control), delta_color="off", delta_arrow="off"
    )
    third.metric("Uplift", points(c.uplift), interval(c.uplift_ci), delta_color="off", delta_arrow="off")
    fourth.metric("p-value", p_value(c.p_value))
    first, second, third, _ = st.columns(4)
    relative_ci = c.relative_uplift_ci
    first.metric(
        "Relative uplift",
        "—" if c.relative_uplift is None else f"{c.relative_uplift * 100:+.1f}%",
        None if relative_ci is None else f"95% interval {relative_ci[0] * 100:+.1f}% to {relative_ci[1] * 100:+.1f}%",
        delta_color="off",
        delta_arrow="off",
    )
    if results.has_values:
        second.metric("Revenue per user (treated)", money(overall.revenue_per_user_treated))
        third.metric("Revenue per user (control)", money(overall.revenue_per_user_control))
    st.subheader("Cumulative conversions, treated against control")
    _curve(results.curve)
    if results.by_tier:
        st.subheader(f"By likelihood tier ({results.prediction})")
        _table(R.summary_frame(results.by_tier), "tier")
        st.caption("Each user's tier when the message was written.")
    if results.by_variant:
        st.subheader("By message variant, each against control")
        _table(R.summary_frame(results.by_variant), "variant")
        for name, versus in results.variants_vs_first.items():
            first_name = next(iter(results.by_variant))
            st.caption(
                f"Variant {plain(name)} against variant {plain(first_name)}: {points(versus.uplift)} "
                f"({interval(versus.uplift_ci)}), p = {p_value(versus.p_value)}."
            )
    st.subheader("Per send")
    sends = {
        send.occurrence.replace("T", " ") + ("" if send.window_complete else " (window open)"): send.result
        for send in results.sends
    }
    _table(R.summary_frame(sends), "send")
