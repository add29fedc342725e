"""UI helpers shared by the screens in this folder (Streamlit lists only the other files as pages)."""

import streamlit as st

FRAME_FLAG = "_likely_frame"
OPEN_PARAM = "open"


def ensure_frame(page_file: str) -> None:
    """Send a page that runs without the frame through app.py.

    Because this folder is called `pages/`, Streamlit's legacy router serves a deep link such as
    /segments by running the page alone when it is the first request of a fresh server. The page
    then hops through app.py (which owns st.navigation) and lands back here, query parameters kept.
    """
    if st.session_state.get(FRAME_FLAG):
        return
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), OPEN_PARAM: page_file})
