"""UI helpers shared by the screens in this folder (Streamlit lists only the other files as pages)."""

from datetime import datetime

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


def as_of(now: datetime) -> str:
    """The words beside a live count: the minute its relative dates were evaluated at."""
    return f"relative dates as of {now:%Y-%m-%d %H:%M} UTC"


def as_of_help(now: datetime) -> str:
    """Why a live count can differ by a few users between two pages opened a minute apart."""
    return (
        f'Counted exactly at {now:%H:%M} UTC. Filters with relative dates ("last used more than 2 weeks ago") '
        "move with the clock, so users cross their edges from one minute to the next: a page opened a minute "
        "later can count a few users more or fewer."
    )


def users(count: int) -> str:
    """'1 user', '1,473 users': how the screens name a number of users."""
    return f"{count:,} user" if count == 1 else f"{count:,} users"
