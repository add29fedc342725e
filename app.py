"""Likely: the frame. Page config, layout rules and navigation; every screen lives in pages/."""

from pathlib import Path

import streamlit as st

from core.db import get_engine
from core.errors import UserError
from core.markup import plain
from core.worker import stale_warning
from pages import FRAME_FLAG, OPEN_PARAM
from pages.team.access import login_required, signed_in_actor

# The sidebar holds only the account (with a login configured) and, below 768 px, the navigation:
# it starts folded so it never takes 300 px of a small screen.
st.set_page_config(page_title="Likely", page_icon=":material/target:", layout="wide", initial_sidebar_state="collapsed")
st.session_state[FRAME_FLAG] = True
# Rules that keep every screen whole from 800 to 1920 px (no label or figure cut off): see the file.
st.html(f"<style>{(Path(__file__).parent / 'pages' / 'layout.css').read_text(encoding='utf-8')}</style>")

SCREENS = [  # file, title, icon, url path
    ("pages/predictions.py", "Predictions", ":material/insights:", "predictions"),
    ("pages/segments.py", "Segments", ":material/group:", "segments"),
    ("pages/campaigns.py", "Campaigns", ":material/campaign:", "campaigns"),
    ("pages/data.py", "Data", ":material/database:", "data"),
]


# The wordmark at the top left, beside the navigation.
LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="112" height="32" viewBox="0 0 112 32">'
    '<circle cx="16" cy="16" r="13" fill="none" stroke="#5B4FE9" stroke-width="3"/>'
    '<circle cx="16" cy="16" r="7" fill="none" stroke="#5B4FE9" stroke-width="3"/>'
    '<circle cx="16" cy="16" r="2.5" fill="#5B4FE9"/>'
    '<text x="36" y="23" font-family="Source Sans Pro, Helvetica, Arial, sans-serif" font-size="21" '
    'font-weight="700" fill="#31333F">Likely</text></svg>'
)


if login_required() and not st.user.get("is_logged_in"):
    st.title("Likely")
    st.write("Sign in with your company account to continue.")
    st.button("Log in", type="primary", on_click=st.login)
    st.stop()

st.logo(LOGO, size="large")


def open_default_screen() -> None:
    """/predictions: the default screen lives at / (Streamlit serves the default page only there)."""
    st.switch_page(SCREENS[0][0], query_params=st.query_params.to_dict())


page = st.navigation(
    [
        st.Page(file, title=title, icon=icon, url_path="" if index == 0 else url_path, default=index == 0)
        for index, (file, title, icon, url_path) in enumerate(SCREENS)
    ]
    # Without this hidden alias a link to /predictions shows Streamlit's "Page not found" dialog.
    + [st.Page(open_default_screen, title=SCREENS[0][1], url_path=SCREENS[0][3], visibility="hidden")],
    # At the top, the screens keep the whole width; below 768 px Streamlit folds it into a collapsed sidebar.
    position="top",
)
if OPEN_PARAM in st.query_params:  # a deep link that first ran without the frame (see pages.ensure_frame)
    params = st.query_params.to_dict()
    target = params.pop(OPEN_PARAM)
    if target in [file for file, *_ in SCREENS]:
        st.switch_page(target, query_params=params)
try:
    get_engine()  # a database Likely must not touch is refused here, in one sentence, before any page runs
except UserError as refusal:
    st.error(plain(refusal))
    st.stop()
actor = signed_in_actor(get_engine())  # refuses, and stops here, anyone outside the allow list
if login_required():  # the account sits in the (folded) sidebar; without a login there is no sidebar at all
    with st.sidebar:
        st.caption(f"Signed in as {plain(actor.email)} ({actor.role})")
        st.button("Log out", on_click=st.logout)
if worker_warning := stale_warning(get_engine()):  # above every screen: nothing is sent while it shows
    st.warning(worker_warning, icon=":material/schedule_send:")
page.run()
