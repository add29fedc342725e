"""Likely: the frame. Page config, sidebar and navigation; every screen lives in pages/."""

import streamlit as st

from pages import FRAME_FLAG, OPEN_PARAM

st.set_page_config(page_title="Likely", page_icon=":material/target:", layout="wide")
st.session_state[FRAME_FLAG] = True

SCREENS = [  # file, title, icon, url path
    ("pages/predictions.py", "Predictions", ":material/insights:", "predictions"),
    ("pages/segments.py", "Segments", ":material/group:", "segments"),
    ("pages/campaigns.py", "Campaigns", ":material/campaign:", "campaigns"),
    ("pages/data.py", "Data", ":material/database:", "data"),
]

with st.sidebar:
    st.markdown("### :material/target: Likely")
    st.caption("Target users by how likely they are to act.")

page = st.navigation(
    [
        st.Page(file, title=title, icon=icon, url_path=url_path, default=index == 0)
        for index, (file, title, icon, url_path) in enumerate(SCREENS)
    ]
)
if OPEN_PARAM in st.query_params:  # a deep link that first ran without the frame (see pages.ensure_frame)
    params = st.query_params.to_dict()
    target = params.pop(OPEN_PARAM)
    if target in [file for file, *_ in SCREENS]:
        st.switch_page(target, query_params=params)
page.run()
