"""The table of treated-against-control figures that Campaigns → Results and Predictions → Measured
in campaigns both show: rates and uplift as percentage points, the interval, the p-value (UI only)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

PERCENT_COLUMNS = ("rate_treated", "rate_control", "uplift", "uplift_low", "uplift_high")


def show(frame: pd.DataFrame, column_config: dict | None = None) -> None:
    """`frame`'s rows with its rates and uplift shown in points; `column_config` adds or relabels columns."""
    shown = frame.copy()
    for column in PERCENT_COLUMNS:
        if column in shown:
            shown[column] = shown[column].astype(float) * 100
    number = st.column_config.NumberColumn
    shared = {
        "rate_treated": number("rate treated", format="%.2f%%"),
        "rate_control": number("rate control", format="%.2f%%"),
        "uplift": number("uplift (pts)", format="%+.2f"),
        "uplift_low": number("95% low", format="%+.2f"),
        "uplift_high": number("95% high", format="%+.2f"),
        "p_value": number("p-value", format="%.3f"),
    }
    config = {name: column for name, column in {**shared, **(column_config or {})}.items() if name in shown}
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config)
