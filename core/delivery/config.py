"""Which provider each channel uses, and how to reach it: the Data page or the environment.

The environment wins over the Data page, for a team that keeps secrets out of the database:
LIKELY_SMTP_URL (`smtp://` or `smtps://user:password@host:port`) with LIKELY_SMTP_FROM, and
LIKELY_WEBHOOK_URL with LIKELY_WEBHOOK_SECRET. With none set, every channel uses the demo
provider (nothing leaves the machine). Secrets are never returned by `public_view` and never
put in an error message or a log line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine

from core.access import LOCAL_ADMIN, Actor, Permission, audit, audit_entry, require
from core.db import session_scope
from core.delivery.connectors import Connector, DemoConnector
from core.delivery.smtp import SmtpConnector, check_sender, parse_smtp_url
from core.delivery.webhook import WebhookConnector, check_url
from core.errors import UserError
from core.models import AppMeta

SETTINGS_KEY = "delivery_channels"
CHANNELS = ("push", "email", "in_app")  # the campaign channels (core.campaigns.audience)
PROVIDERS = {"demo": "Demo (local)", "webhook": "Webhook", "smtp": "Email server (SMTP)"}
CHANNEL_NAMES = {"push": "Push", "email": "Email", "in_app": "In-app"}
ALLOWED = {"push": ("demo", "webhook"), "in_app": ("demo", "webhook"), "email": ("demo", "smtp", "webhook")}
ENVIRONMENT = {
    "smtp_url": "LIKELY_SMTP_URL",
    "smtp_from": "LIKELY_SMTP_FROM",
    "webhook_url": "LIKELY_WEBHOOK_URL",
    "webhook_secret": "LIKELY_WEBHOOK_SECRET",
}
SECRET_FIELDS = ("smtp_url", "webhook_secret")  # the SMTP URL holds the password


@dataclass(frozen=True)
class DeliverySettings:
    providers: dict[str, str] = field(default_factory=lambda: dict.fromkeys(CHANNELS, "demo"))
    smtp_url: str | None = None
    smtp_from: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    from_environment: frozenset[str] = frozenset()  # fields set by the environment (the page cannot change them)

    def check(self) -> None:
        """One UserError naming the first thing wrong; secrets are never quoted."""
        for channel, provider in self.providers.items():
            if channel not in ALLOWED:
                raise UserError(f"unknown channel {channel!r}")
            if provider not in ALLOWED[channel]:
                raise UserError(
                    f"{channel} cannot be sent by {provider!r}; choose one of {', '.join(ALLOWED[channel])}"
                )
        used = set(self.providers.values())
        if "smtp" in used:
            if not self.smtp_url:
                raise UserError("email goes by SMTP but no SMTP URL is set (LIKELY_SMTP_URL)")
            parse_smtp_url(self.smtp_url)
            check_sender(self.smtp_from or "")
        if "webhook" in used:
            if not self.webhook_url:
                raise UserError("a channel goes by webhook but no webhook URL is set (LIKELY_WEBHOOK_URL)")
            check_url(self.webhook_url)
            if not self.webhook_secret:
                raise UserError("the webhook has no signing secret (LIKELY_WEBHOOK_SECRET)")

    @property
    def live(self) -> bool:
        return any(p != "demo" for p in self.providers.values())


def _stored(engine: Engine) -> dict:
    with session_scope(engine) as session:
        row = session.get(AppMeta, SETTINGS_KEY)
        if row is None:
            return {}
        try:
            value = json.loads(row.value)
        except ValueError:
            raise UserError("the stored delivery settings cannot be read; set them again on the Data page") from None
    return value if isinstance(value, dict) else {}


def load_settings(engine: Engine, environ: Mapping[str, str] | None = None) -> DeliverySettings:
    """The settings in force: the Data page's, overridden field by field by the environment."""
    environ = os.environ if environ is None else environ
    stored = _stored(engine)
    values = {name: stored.get(name) or None for name in ENVIRONMENT}
    from_env = {name for name, variable in ENVIRONMENT.items() if environ.get(variable)}
    for name in from_env:
        values[name] = environ[ENVIRONMENT[name]]
    providers = dict.fromkeys(CHANNELS, "demo")
    # A provider set up only in the environment is used without another step.
    if "webhook_url" in from_env:
        providers.update(push="webhook", in_app="webhook")
    if "smtp_url" in from_env:
        providers["email"] = "smtp"
    providers.update({c: p for c, p in (stored.get("providers") or {}).items() if c in CHANNELS})
    return DeliverySettings(providers=providers, from_environment=frozenset(from_env), **values)


def save_settings(engine: Engine, settings: DeliverySettings, *, actor: Actor = LOCAL_ADMIN) -> None:
    """Store the page's settings after checking them; a blank secret keeps the stored one.

    Admins only; the audit log records the providers and which fields are set, never their values
    (URLs and secrets can carry passwords and tokens).
    """
    require(actor, Permission.CHANGE_RULES)
    stored = _stored(engine)
    merged = replace(
        settings,
        **{name: getattr(settings, name) or stored.get(name) for name in SECRET_FIELDS},
    )
    merged.check()
    document = {"providers": merged.providers}
    for name in ENVIRONMENT:
        if name not in merged.from_environment and getattr(merged, name):
            document[name] = getattr(merged, name)
    with session_scope(engine) as session:
        row = session.get(AppMeta, SETTINGS_KEY)
        if row is None:
            session.add(AppMeta(key=SETTINGS_KEY, value=json.dumps(document)))
        else:
            row.value = json.dumps(document)
        fields_set = sorted(name for name in ENVIRONMENT if getattr(merged, name))
        session.add(
            audit_entry(actor, "rule change", "delivery channels", {"providers": merged.providers, "set": fields_set})
        )


def public_view(settings: DeliverySettings) -> dict[str, str]:
    """What the page may show: providers, addresses without passwords, whether a secret is set."""
    view = {
        f"{CHANNEL_NAMES[channel]} provider": PROVIDERS[provider] for channel, provider in settings.providers.items()
    }
    if settings.smtp_url:
        try:
            view["SMTP server"] = parse_smtp_url(settings.smtp_url).describe()
        except UserError as error:
            view["SMTP server"] = f"invalid: {error}"
    view["SMTP sender"] = settings.smtp_from or "—"
    view["Webhook URL"] = _without_password(settings.webhook_url) if settings.webhook_url else "—"
    view["Webhook secret"] = "set" if settings.webhook_secret else "not set"
    return view


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":•••@")))


def connectors_for(engine: Engine, settings: DeliverySettings, timeout: float | None = None) -> dict[str, Connector]:
    """One connector per channel (channels sharing a provider share its connection)."""
    settings.check()
    made: dict[str, Connector] = {}
    for provider in set(settings.providers.values()):
        if provider == "demo":
            made[provider] = DemoConnector(engine)
        elif provider == "webhook":
            extra = {"timeout": timeout} if timeout else {}
            made[provider] = WebhookConnector(settings.webhook_url, settings.webhook_secret, **extra)
        else:
            extra = {"timeout": timeout} if timeout else {}
            made[provider] = SmtpConnector(parse_smtp_url(settings.smtp_url), settings.smtp_from, **extra)
    return {channel: made[provider] for channel, provider in settings.providers.items()}


def send_test_message(
    engine: Engine, settings: DeliverySettings, channel: str, recipient: str, *, actor: Actor = LOCAL_ADMIN
) -> str:
    """Send one test message on `channel` to `recipient` (an email address, or a user id for a
    webhook) and return the provider's exact answer. The outbox is not touched. Admins only:
    it tries the channel settings only they may change."""
    from core.delivery.connectors import Envelope
    from core.timeutil import utcnow

    require(actor, Permission.CHANGE_RULES)
    if channel not in CHANNELS:
        raise UserError(f"unknown channel {channel!r}")
    provider = settings.providers[channel]
    if provider == "demo":
        _audit_test(engine, actor, channel, provider, "nothing sent (demo)")
        return "demo channel: nothing was sent and nothing leaves this machine"
    if not recipient.strip():
        raise UserError("give an email address to send the test to" if provider == "smtp" else "give a user id")
    now = utcnow()
    envelope = Envelope(
        message_id=0,
        campaign_id=0,
        channel=channel,
        user_id=recipient.strip(),
        email=recipient.strip() if channel == "email" else None,
        first_name=None,
        title="Likely test message",
        body=f"This is a test message from Likely, sent {now:%Y-%m-%d %H:%M} UTC.",
        send_at=now,
        key=f"likely-test-{now:%Y%m%d%H%M%S%f}",
    )
    connector = connectors_for(engine, settings, timeout=10)[channel]
    verdict = "not sent (the connector failed)"
    try:
        (outcome,) = connector.send([envelope])
        verdict = "sent" if outcome.sent else ("not sent (temporary)" if outcome.temporary else "not sent")
    finally:
        connector.close()
        _audit_test(engine, actor, channel, provider, verdict)  # every attempt, even one that raised
    answer = getattr(connector, "last_answer", "") or outcome.error or ""
    return f"{verdict}: {answer}"


def _audit_test(engine: Engine, actor: Actor, channel: str, provider: str, outcome: str) -> None:
    """Who tried which channel through which provider, and whether it went: never the recipient,
    a URL, a secret or the provider's answer (which may quote any of them)."""
    audit(engine, actor, "test message", CHANNEL_NAMES[channel], provider=provider, outcome=outcome)
