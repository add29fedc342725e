"""The web server: the app (app.py) plus the route that streams downloads (pages/download_link.py).

`python -m core serve`, and so `make run`, starts it with `streamlit run server.py`: Streamlit
finds `app` below and serves app.py's pages beside the route, so an export of millions of rows
reaches the browser as it is made and never sits whole in memory.
"""

import streamlit as st

from core.downloads import SHELF
from pages.download_link import ROUTES

SHELF.served = True
app = st.App("app.py", routes=ROUTES)
