"""Webhook: an HTTP POST of a JSON batch of messages, signed with HMAC-SHA256.

The request (documented in docs/campaigns.md):

    POST <url>   Content-Type: application/json
    X-Likely-Timestamp: <unix seconds>
    X-Likely-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed by the secret>
    {"messages": [{"id": "likely-123", "message_id": 123, "campaign_id": 4, "channel": "push",
                   "user_id": "u-981", "email": null, "first_name": "Ana",
                   "title": "...", "body": "...", "send_at": "2030-01-03T16:45:00Z"}, ...]}

The answer: any 2xx accepts the batch. A JSON body may say more per message:
{"results": [{"id": "likely-123", "status": "rejected", "error": "unknown device"},
             {"id": "likely-124", "status": "accepted", "provider_id": "abc"}]}; a 2xx body that
is not that shape still accepts the whole batch (the status code is the contract). 408, 429
and 5xx are temporary (Retry-After is honoured); other 4xx are permanent; 3xx is refused
(a POST is never replayed elsewhere); no answer within the timeout, a refused connection or a
malformed answer is temporary. `id` is the idempotency key: a message sent again after a crash
carries the same one, and the receiver keeps the first.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from urllib.parse import urlsplit

from core.delivery.connectors import Envelope, Outcome, clip
from core.errors import UserError

DEFAULT_TIMEOUT = 10.0
TEMPORARY_STATUSES = {408, 429}
SIGNATURE_HEADER = "X-Likely-Signature"
TIMESTAMP_HEADER = "X-Likely-Timestamp"


def check_url(url: str) -> str:
    """The URL when it is an http(s) URL with a host, else a one-line UserError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError("the webhook URL must start with http:// or https:// and name a host")
    return url.strip()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Likely-Signature value a receiver recomputes to check a request came from us."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(envelopes: list[Envelope]) -> dict:
    return {
        "messages": [
            {
                "id": e.idempotency_key,
                "message_id": e.message_id,
                "campaign_id": e.campaign_id,
                "channel": e.channel,
                "user_id": e.user_id,
                "email": e.email,
                "first_name": e.first_name,
                "title": e.title,
                "body": e.body,
                "send_at": e.send_at.isoformat(timespec="seconds") + "Z",
            }
            for e in envelopes
        ]
    }


class WebhookConnector:
    name = "webhook"
    batch_size = 100

    def __init__(self, url: str, secret: str, timeout: float = DEFAULT_TIMEOUT):
        self.url = check_url(url)
        self.secret = secret
        self.timeout = timeout
        self.last_answer = ""  # the provider's exact answer to the latest request
        parts = urlsplit(self.url)
        self._parts = parts
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            self._connection = kind(self._parts.hostname, self._parts.port, timeout=self.timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def post(self, document: dict) -> tuple[int, dict[str, str], bytes]:
        """POST `document` signed; (status, headers, body). Raises OSError/HTTPException on transport failure."""
        body = json.dumps(document, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Likely-webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self.secret, timestamp, body),
        }
        connection = self._connect()
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            self.close()  # a half-read connection cannot carry the next request
            raise
        if response.getheader("connection", "").lower() == "close":
            self.close()
        self.last_answer = f"HTTP {response.status} {response.reason}: {answer.decode('utf-8', 'replace')}".strip()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer

    def send(self, envelopes: list[Envelope]) -> list[Outcome]:
        if not envelopes:
            return []
        try:
            status, headers, answer = self.post(payload(envelopes))
        except TimeoutError:
            self.last_answer = f"no answer within {self.timeout:g} s"
            return _all(envelopes, error=self.last_answer, temporary=True)
        except http.client.HTTPException as error:
            self.last_answer = f"malformed answer ({type(error).__name__}: {str(error).strip()})"
            return _all(envelopes, error=clip(self.last_answer), temporary=True)
        except OSError as error:
            self.last_answer = f"cannot connect to the webhook: {error.strerror or error}"
            return _all(envelopes, error=clip(self.last_answer), temporary=True)
        text = answer.decode("utf-8", "replace")
        if 200 <= status < 300:
            return _accepted(envelopes, answer)
        reason = clip(f"HTTP {status}: {text}" if text.strip() else f"HTTP {status}")
        if 300 <= status < 400:
            where = headers.get("location", "elsewhere")
            return _all(envelopes, error=clip(f"HTTP {status} redirect to {where}: set the final URL"), temporary=False)
        if status in TEMPORARY_STATUSES or status >= 500:
            return _all(envelopes, error=reason, temporary=True, retry_after=_retry_after(headers))
        return _all(envelopes, error=reason, temporary=False)


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: our own backoff decides


def _all(envelopes: list[Envelope], **outcome) -> list[Outcome]:
    return [Outcome(e.message_id, False, **outcome) for e in envelopes]


def _accepted(envelopes: list[Envelope], answer: bytes) -> list[Outcome]:
    """Per-message results when the 2xx body gives them; otherwise the whole batch is accepted."""
    try:
        results = json.loads(answer)["results"]
        by_id = {str(r["id"]): r for r in results if isinstance(r, dict) and "id" in r}
    except (ValueError, KeyError, TypeError):
        by_id = {}
    outcomes = []
    for e in envelopes:
        result = by_id.get(e.idempotency_key) or by_id.get(str(e.message_id)) or {}
        provider_id = result.get("provider_id")
        provider_id = None if provider_id is None else clip(str(provider_id))
        if str(result.get("status", "accepted")).lower() == "rejected":
            error = clip(f"rejected by the provider: {result.get('error') or 'no reason given'}")
            outcomes.append(Outcome(e.message_id, False, error=error, temporary=bool(result.get("retry"))))
        else:
            outcomes.append(Outcome(e.message_id, True, provider_id=provider_id))
    return outcomes
