"""Likely: the frame. Page config, sidebar and navigation; every screen lives in pages/."""

import streamlit as st

from core.db import get_engine
from pages import FRAME_FLAG, OPEN_PARAM
from pages.team.access import login_required, signed_in_actor

st.set_page_config(page_title="Likely", page_icon=":material/target:", layout="wide")
st.session_state[FRAME_FLAG] = True

SCREENS = [  # file, title, icon, url path
    ("pages/predictions.py", "Predictions", ":material/insights:", "predictions"),
    ("pages/segments.py", "Segments", ":material/group:", "segments"),
    ("pages/campaigns.py", "Campaigns", ":material/campaign:", "campaigns"),
    ("pages/data.py", "Data", ":material/database:", "data"),
]


if login_required() and not st.user.get("is_logged_in"):
    st.title("Likely")
    st.write("Sign in with your company account to continue.")
    st.button("Log in", type="primary", on_click=st.login)
    st.stop()
actor = signed_in_actor(get_engine())  # refuses, and stops here, anyone outside the allow list

with st.sidebar:
    st.markdown("### :material/target: Likely")
    st.caption("Target users by how likely they are to act.")
    if login_required():
        st.caption(f"Signed in as {actor.email} ({actor.role})")
        st.button("Log out", on_click=st.logout)


def open_default_screen() -> None:
    """/predictions: the default screen lives at / (Streamlit serves the default page only there)."""
    st.switch_page(SCREENS[0][0], query_params=st.query_params.to_dict())


page = st.navigation(
    [
        st.Page(file, title=title, icon=icon, url_path="" if index == 0 else url_path, default=index == 0)
        for index, (file, title, icon, url_path) in enumerate(SCREENS)
    ]
    # Without this hidden alias a link to /predictions shows Streamlit's "Page not found" dialog.
    + [st.Page(open_default_screen, title=SCREENS[0][1], url_path=SCREENS[0][3], visibility="hidden")]
)
if OPEN_PARAM in st.query_params:  # a deep link that first ran without the frame (see pages.ensure_frame)
    params = st.query_params.to_dict()
    target = params.pop(OPEN_PARAM)
    if target in [file for file, *_ in SCREENS]:
        st.switch_page(target, query_params=params)
page.run()
