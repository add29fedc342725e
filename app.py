"""Likely: the frame. Page config, sidebar and navigation; every screen lives in pages/."""

import streamlit as st

st.set_page_config(page_title="Likely", page_icon="🎯", layout="wide")

PAGES = [
    st.Page(
        "pages/predictions.py", title="Predictions", icon=":material/insights:", url_path="predictions", default=True
    ),
    st.Page("pages/segments.py", title="Segments", icon=":material/group:", url_path="segments"),
    st.Page("pages/campaigns.py", title="Campaigns", icon=":material/campaign:", url_path="campaigns"),
    st.Page("pages/data.py", title="Data", icon=":material/database:", url_path="data"),
]

with st.sidebar:
    st.markdown("### 🎯 Likely")
    st.caption("Target users by how likely they are to act.")

st.navigation(PAGES).run()
