"""Real providers on localhost for the delivery tests: a webhook receiver and an SMTP server.

The webhook receiver checks every request's signature, answers from a script of behaviours
(ok, an HTTP status, silence past the timeout, a slow answer, a malformed answer) and keeps
each message id it accepted - every time, and the first time (what a provider that honours
the idempotency key delivers). The SMTP server is aiosmtpd; it keeps every message.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

SECRET = "webhook-test-secret"


@dataclass
class WebhookReceiver:
    url: str
    script: list[str] = field(default_factory=list)  # behaviours for the next requests; then "ok"
    accepted: list[str] = field(default_factory=list)  # every accepted message id, repeats included
    requests: int = 0
    bad_signatures: int = 0
    reject_ids: set[str] = field(default_factory=set)  # answered per message as rejected
    bodies: list[dict] = field(default_factory=list)
    hang_on_request: int | None = None  # accept this request's messages, then never answer (a crash's window)
    hanging: threading.Event = field(default_factory=threading.Event)

    @property
    def delivered(self) -> Counter:
        """Messages a deduplicating provider delivered: id -> times received."""
        return Counter(self.accepted)


def start_webhook_receiver(slow_seconds: float = 0.3, silent_seconds: float = 3.0):
    """A ThreadingHTTPServer on a free port; returns (receiver, server)."""
    lock = threading.Lock()
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stamp = self.headers.get("X-Likely-Timestamp", "")
            expected = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            with lock:
                receiver.requests += 1
                number = receiver.requests
                behaviour = receiver.script.pop(0) if receiver.script else "ok"
                if not hmac.compare_digest(expected, self.headers.get("X-Likely-Signature", "")):
                    receiver.bad_signatures += 1
                    behaviour = "401"
            if behaviour == "silent":
                time.sleep(silent_seconds)
                self.close_connection = True
                return
            if behaviour == "malformed":
                self.wfile.write(b"this is not HTTP\r\n\r\n")
                self.close_connection = True
                return
            if behaviour == "slow":
                time.sleep(slow_seconds)
                behaviour = "ok"
            if behaviour == "ok":
                document = json.loads(body)
                results = []
                with lock:
                    receiver.bodies.append(document)
                    for message in document["messages"]:
                        if message["id"] in receiver.reject_ids:
                            results.append({"id": message["id"], "status": "rejected", "error": "unknown device"})
                        else:
                            receiver.accepted.append(message["id"])
                            results.append(
                                {"id": message["id"], "status": "accepted", "provider_id": f"p-{message['id']}"}
                            )
                    hang = number == receiver.hang_on_request
                if hang:
                    receiver.hanging.set()
                    time.sleep(60)
                    return
                self._answer(200, json.dumps({"results": results}).encode())
            elif behaviour == "garbage-200":
                with lock:
                    receiver.accepted.extend(m["id"] for m in json.loads(body)["messages"])
                self._answer(200, b"<html>thanks</html>")
            elif behaviour == "429":
                self._answer(429, b"slow down", {"Retry-After": "120"})
            else:
                self._answer(int(behaviour), f"status {behaviour} from the test receiver".encode())

        def _answer(self, status: int, body: bytes, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/likely"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server


@dataclass
class SmtpInbox:
    messages: list = field(default_factory=list)  # email.message.EmailMessage
    refuse: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." / "451 ..."
    logins: list[str] = field(default_factory=list)
    hang_on_message: int | None = None  # keep this message, then never answer
    hanging: threading.Event = field(default_factory=threading.Event)

    @property
    def message_ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


class _Handler:
    def __init__(self, inbox: SmtpInbox):
        self.inbox = inbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if address in self.inbox.refuse:
            return self.inbox.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.inbox.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        if len(self.inbox.messages) == self.inbox.hang_on_message:
            self.inbox.hanging.set()
            await asyncio.sleep(60)
        return "250 Message accepted for delivery"


def start_smtp_server(port: int, tls_context=None, users: dict[str, str] | None = None):
    """aiosmtpd on localhost:`port` (STARTTLS offered when tls_context; AUTH when users); returns (inbox, controller)."""
    inbox = SmtpInbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = users is not None and users.get(auth_data.login.decode()) == auth_data.password.decode()
        if ok:
            inbox.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    kwargs = {}
    if tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=False)
    if users is not None:
        kwargs.update(authenticator=authenticate, auth_require_tls=True)
    controller = Controller(_Handler(inbox), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return inbox, controller
