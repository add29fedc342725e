"""Files the browser downloads as a stream: made while they are sent, never held whole in memory.

A page *offers* a file under an unguessable token: a name, and a function that makes its bytes
chunk by chunk. The web server's `/downloads/<token>/<name>` route (server.py) *takes* the offer
and streams what the function yields. Nothing is made until the browser asks, nothing is kept
after it is sent, and every request makes the file afresh (an export is audited each time).

Offers live in this process, beside the Streamlit sessions that make them (Streamlit keeps its own
sessions and media in memory too, so a deployment already routes a browser to one process). An
offer ends `OFFER_TTL_S` after it was last made; a page makes it again on every run. A link is
clicked in the page that shows it, so the limit is a working day: a tab left open over lunch still
downloads (a dead link's click fails in the browser's download list, with no page to explain it),
while a link copied out of the app stops working by the next morning.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

OFFER_TTL_S = 8 * 60 * 60
MAX_OFFERS = 10_000  # beyond this the oldest offers end first: memory stays bounded whatever happens
ROUTE = "/downloads/{token}/{name}"


@dataclass(frozen=True)
class Offer:
    name: str  # the file name the browser saves under
    media_type: str
    make: Callable[[], Iterator[bytes]]  # called once per request: the bytes, chunk by chunk
    expires_at: float


class Shelf:
    """The offers of this process, by token."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._offers: OrderedDict[str, Offer] = OrderedDict()
        self._lock = threading.Lock()
        self.served = False  # set by the web server that mounts the route (server.py)

    def offer(self, token: str, name: str, make: Callable[[], Iterator[bytes]], media_type: str = "text/csv") -> str:
        """Put (or put again) a file under `token`; returns the path the browser fetches it from."""
        if not _TOKEN.fullmatch(token):
            raise ValueError("a download token is 32 or more URL-safe characters")
        with self._lock:
            self._offers.pop(token, None)
            self._offers[token] = Offer(name, media_type, make, self._clock() + OFFER_TTL_S)
            while len(self._offers) > MAX_OFFERS:
                self._offers.popitem(last=False)
        return ROUTE.format(token=token, name=quote(name, safe=""))

    def take(self, token: str) -> Offer | None:
        """The live offer under `token`, or None (unknown, or ended)."""
        with self._lock:
            offer = self._offers.get(token)
            if offer is not None and offer.expires_at <= self._clock():
                del self._offers[token]
                return None
            return offer


def new_token() -> str:
    return secrets.token_urlsafe(32)


def content_disposition(name: str) -> str:
    """`attachment` with the name for every browser: an ASCII fallback, and the exact name (RFC 6266)."""
    fallback = re.sub(r"[^A-Za-z0-9 ._()\-]", "_", name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


_TOKEN = re.compile(r"[A-Za-z0-9_\-]{32,128}")
SHELF = Shelf()
