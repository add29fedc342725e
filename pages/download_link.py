"""Downloads streamed to the browser as they are made: the control a page shows, and the route that serves it.

A page offers a file (core.downloads) and shows a same-tab link to it that the browser saves
(`download`); nothing is made until it is clicked, and nothing is kept in the session. The link
lands on `serve_download`, which server.py mounts beside the app. Started without server.py (a
bare `streamlit run app.py`) there is no such route, so the control falls back to Streamlit's
own download, which makes the whole file in memory on click.
"""

from collections.abc import Callable, Iterator
from html import escape

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from core.downloads import ROUTE, SHELF, content_disposition, new_token
from core.errors import UserError

ENDED = "This download link has ended. Go back to Likely and click the download button again.\n"


def download_link(
    label: str, name: str, make: Callable[[], Iterator[bytes]], *, key: str, disabled: bool = False, help: str
) -> None:
    """`make` is called once per click for the file's bytes, chunk by chunk; `name` is the saved file's name."""
    if disabled:
        st.button(label, key=key, disabled=True, help=help)
    elif not SHELF.served:
        st.download_button(
            label, data=lambda: b"".join(make()), file_name=name, mime="text/csv", key=key, on_click="ignore", help=help
        )
    else:
        token = st.session_state.setdefault(f"download_token_{key}", new_token())
        path = _base_path() + SHELF.offer(token, name, make)
        # st.html sanitises what it shows; every value here is escaped first all the same.
        st.html(
            f'<a class="likely-download" href="{escape(path)}" download="{escape(name)}" title="{escape(help)}" '
            f'data-testid="likelyDownload">{escape(label)}</a>',
            width="content",
        )


async def serve_download(request: Request) -> Response:
    offer = SHELF.take(request.path_params["token"])
    if offer is None:
        return PlainTextResponse(ENDED, status_code=404)
    try:
        chunks = await run_in_threadpool(offer.make)  # the checks and the first query: off the event loop
    except UserError as refusal:  # e.g. the person's role changed since the page offered the file
        return PlainTextResponse(f"{refusal}\n", status_code=403)
    headers = {
        "Content-Disposition": content_disposition(offer.name),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(chunks, media_type=offer.media_type, headers=headers)


def _base_path() -> str:
    """Where the app is served below the host ("/likely" with server.baseUrlPath = "likely"), or ""."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


ROUTES = [Route(_base_path() + ROUTE, serve_download, methods=["GET"])]
