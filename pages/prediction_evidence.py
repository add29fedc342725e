"""The Predictions page's "Measured in campaigns" section: uplift per tier next to the playbook (UI only)."""

from __future__ import annotations

import streamlit as st

from core.campaigns.results import evidence_for_prediction
from core.errors import UserError
from core.markup import plain
from core.timeutil import utcnow
from pages import uplift_table


def measured_in_campaigns(engine, prediction_id: int, event: str) -> None:
    """Campaigns that targeted this prediction: what each tier got, what the playbook assumed, what it changed."""
    st.subheader("Measured in campaigns")
    try:
        evidence = evidence_for_prediction(prediction_id, engine, utcnow())
    except UserError as error:  # a campaigns row edited by hand that no longer parses
        st.error(plain(error))
        return
    if evidence.empty:
        st.caption(
            "No launched campaign has used this prediction yet. Campaigns that do hold out a control group, "
            "and the uplift they measure per tier appears here, next to the playbook's assumptions."
        )
        return
    number = st.column_config.NumberColumn
    uplift_table.show(  # the verdicts are sentences: they follow the table, where they read whole
        evidence.drop(columns=["rate_treated", "rate_control", "verdict"]),
        {
            "campaign": st.column_config.TextColumn("campaign", pinned=True),
            "offer": st.column_config.TextColumn("offer sent"),
            "playbook_discount": number("playbook", format="%.0f%%", help="The discount the tier playbook suggests"),
            "uplift": number("uplift (pts)", format="%+.2f", help="Measured against the campaign's control group"),
        },
    )
    for row in evidence.itertuples():
        st.markdown(f"- **{plain(row.campaign)}, {row.tier}**: {plain(row.verdict)}")
    st.caption(
        f"Uplift: the extra share of each tier that performed '{event}' within the campaign's window, "
        "messaged against held out. The playbook assumes a larger discount pays off lower down the scale; "
        "where the interval includes 0, the data cannot yet tell."
    )
