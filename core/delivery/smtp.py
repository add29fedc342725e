"""Email over SMTP: STARTTLS or SSL, login, a text and an HTML part from the same copy.

`smtps://user:password@host:465` connects over TLS; `smtp://user:password@host:587` upgrades
with STARTTLS when the server offers it, and refuses to send a password over a connection
that stays in clear. Each message carries `Message-ID: <likely-<id>@<sender's domain>>` (the
idempotency key: a message sent again after a crash has the same id) and a List-Unsubscribe
header. Replies 4xx and lost connections are temporary; 5xx refusals are permanent.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import quote, unquote, urlsplit

from core.delivery.connectors import Envelope, Outcome, clip
from core.errors import UserError

DEFAULT_TIMEOUT = 20.0
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    user: str | None
    password: str | None
    ssl: bool  # smtps: TLS from the first byte

    def describe(self) -> str:
        """The URL without its password: what the UI and logs may show."""
        who = f"{self.user}:•••@" if self.user else ""
        return f"{'smtps' if self.ssl else 'smtp'}://{who}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp[s]://[user:password@]host[:port]` as a target, else a UserError that never repeats the password."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UserError("the SMTP URL has a port that is not a number (smtp://user:password@host:587)") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise UserError("the SMTP URL must start with smtp:// (STARTTLS) or smtps:// (SSL)")
    if not parts.hostname:
        raise UserError("the SMTP URL names no host (smtp://user:password@host:587)")
    return SmtpTarget(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "smtps",
    )


def check_sender(address: str) -> str:
    _, email = parseaddr(address or "")
    if "@" not in email:
        raise UserError("the sender (LIKELY_SMTP_FROM) must be an email address, e.g. news@example.com")
    return address.strip()


def html_body(text: str) -> str:
    """The HTML part: the user's copy escaped (text is data, never markup), paragraphs kept."""
    paragraphs = [p for p in (text or "").split("\n\n") if p.strip()]
    inner = "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f'<!doctype html>\n<html><body style="font-family: sans-serif">\n{inner}\n</body></html>\n'


def build_message(envelope: Envelope, sender: str) -> EmailMessage:
    domain = parseaddr(sender)[1].rsplit("@", 1)[-1]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = envelope.email
    message["Subject"] = envelope.title or ""
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{envelope.idempotency_key}@{domain}>"
    unsubscribe = f"mailto:{parseaddr(sender)[1]}?subject={quote('unsubscribe ' + envelope.user_id)}"
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message.set_content(envelope.body or "")
    message.add_alternative(html_body(envelope.body or ""), subtype="html")
    return message


class SmtpConnector:
    name = "smtp"
    batch_size = 20  # messages recorded together: the most a crash can leave unmarked

    def __init__(
        self,
        target: SmtpTarget,
        sender: str,
        timeout: float = DEFAULT_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ):
        self.target = target
        self.sender = check_sender(sender)
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context()
        self.last_answer = ""
        self._client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._client is not None:
            return self._client
        t = self.target
        if t.ssl:
            client = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=self.tls_context)
        else:
            client = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        try:
            client.ehlo()
            if not t.ssl and client.has_extn("starttls"):
                client.starttls(context=self.tls_context)
                client.ehlo()
            if t.user:
                if not t.ssl and not isinstance(client.sock, ssl.SSLSocket):
                    raise _Refused(
                        "the SMTP server offers no STARTTLS: the password is not sent in clear (use smtps://)"
                    )
                client.login(t.user, t.password or "")
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                self._client.close()
            self._client = None

    def send(self, envelopes: list[Envelope]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for index, envelope in enumerate(envelopes):
            if not envelope.email:
                outcomes.append(Outcome(envelope.message_id, False, error="the user has no email address"))
                continue
            try:
                outcomes.append(self._send_one(envelope))
            except _ConnectionTrouble as trouble:
                # The connection is gone: this message and the rest of the batch wait for a retry.
                self.close()
                self.last_answer = trouble.reason
                outcomes.extend(
                    Outcome(e.message_id, False, error=trouble.reason, temporary=True) for e in envelopes[index:]
                )
                break
        return outcomes

    def _send_one(self, envelope: Envelope) -> Outcome:
        try:
            message = build_message(envelope, self.sender)
        except (ValueError, TypeError) as error:  # e.g. a line break inside an address
            return Outcome(envelope.message_id, False, error=clip(f"the message cannot be built: {error}"))
        try:
            client = self._connect()
            reply = _transaction(client, parseaddr(self.sender)[1], envelope.email, message)
        except _NotDeliverable as error:
            return Outcome(envelope.message_id, False, error=str(error))
        except _Refused as error:
            raise _ConnectionTrouble(str(error)) from None
        except smtplib.SMTPAuthenticationError as error:
            raise _ConnectionTrouble(
                clip(f"the SMTP login was refused ({_reply(error)}): check the user and password")
            ) from None
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return self._refusal(envelope, code, text)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            return self._refusal(envelope, error.smtp_code, error.smtp_error)
        except smtplib.SMTPResponseException as error:
            if 400 <= error.smtp_code < 500:
                raise _ConnectionTrouble(clip(f"SMTP {_reply(error)}")) from None
            return self._refusal(envelope, error.smtp_code, error.smtp_error)
        except TimeoutError:
            raise _ConnectionTrouble(f"the SMTP server did not answer within {self.timeout:g} s") from None
        except (smtplib.SMTPException, OSError) as error:
            raise _ConnectionTrouble(clip(f"SMTP connection failed: {error}")) from None
        self.last_answer = f"{reply} (Message-ID {message['Message-ID']})"
        return Outcome(envelope.message_id, True, provider_id=clip(reply))

    def _refusal(self, envelope: Envelope, code: int, text: bytes | str) -> Outcome:
        reason = clip(f"SMTP {code} {_text(text)}")
        self.last_answer = reason
        return Outcome(envelope.message_id, False, error=reason, temporary=400 <= code < 500)


def _transaction(client: smtplib.SMTP, sender: str, recipient: str, message: EmailMessage) -> str:
    """MAIL, RCPT, DATA for one recipient; the server's final reply (often its queue id), which
    smtplib's sendmail would drop. Refusals raise as sendmail's do. An address beyond ASCII
    needs the server's SMTPUTF8 (RFC 6531)."""
    options: list[str] = []
    if not (sender + recipient).isascii():
        if not client.has_extn("smtputf8"):
            raise _NotDeliverable("the address has non-ASCII characters and the SMTP server does not take SMTPUTF8")
        options = ["SMTPUTF8", "BODY=8BITMIME"]
        data = message.as_bytes(policy=message.policy.clone(utf8=True))
    else:
        data = message.as_bytes()
    code, reply = client.mail(sender, options)
    if code != 250:
        client.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = client.rcpt(recipient)
    if code not in (250, 251):
        client.rset()
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = client.data(data)
    if code != 250:
        client.rset()
        raise smtplib.SMTPDataError(code, reply)
    return f"{code} {_text(reply)}"


class _NotDeliverable(Exception):
    """This message can never go through this server (a permanent failure of it alone)."""


class _Refused(Exception):
    pass


class _ConnectionTrouble(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reply(error: smtplib.SMTPResponseException) -> str:
    return f"{error.smtp_code} {_text(error.smtp_error)}"
