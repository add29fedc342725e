"""Delivery on a fixed clock: each message's status, retries, expiry, and the three connectors
against real servers on localhost (an HTTP server, aiosmtpd, the demo table)."""

from __future__ import annotations

import csv
import io
import random
import socket
import ssl
import subprocess
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from core import access
from core.access import Actor
from core.campaigns import outbox_export
from core.delivery import outbox
from core.delivery.config import (
    DeliverySettings,
    connectors_for,
    load_settings,
    public_view,
    save_settings,
    send_test_message,
)
from core.delivery.connectors import DemoConnector, Envelope
from core.delivery.smtp import SmtpConnector, html_body, parse_smtp_url
from core.delivery.webhook import WebhookConnector, signature
from core.errors import UserError
from core.models import Campaign, DemoDelivery, OutboxMessage, User
from tests.delivery_servers import SECRET, start_smtp_server, start_webhook_receiver

NOW = datetime(2030, 1, 3, 17, 0)


def queue_messages(
    engine, count: int, channel: str = "push", send_at: datetime = NOW, status: str = "queued"
) -> list[int]:
    """`count` outbox rows of one campaign for users (with an email address for email); their ids."""
    with engine.begin() as connection:
        users = (
            connection.execute(select(User.id).where(User.email.is_not(None)).order_by(User.id).limit(count))
            .scalars()
            .all()
        )
        campaign_id = connection.execute(
            Campaign.__table__.insert().values(
                name=f"Delivery test {channel} {random.random()}",
                channel=channel,
                message={"title": "t", "body": "b"},
                schedule={"kind": "now"},
                status="scheduled",
                version=1,
            )
        ).inserted_primary_key[0]
        connection.execute(
            OutboxMessage.__table__.insert(),
            [
                {
                    "campaign_id": campaign_id,
                    "occurrence": "2030-01-03T17:00",
                    "user_id": user,
                    "channel": channel,
                    "send_at": send_at,
                    "title": f"Hello <b>{user}</b>",
                    "body": "Tom & Jerry <script>alert(1)</script>\nSecond line",
                    "status": status,
                }
                for user in users
            ],
        )
        return (
            connection.execute(
                select(OutboxMessage.id).where(OutboxMessage.campaign_id == campaign_id).order_by(OutboxMessage.id)
            )
            .scalars()
            .all()
        )


def statuses(engine) -> dict[int, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.status,
                OutboxMessage.attempts,
                OutboxMessage.last_error,
                OutboxMessage.provider_id,
                OutboxMessage.next_attempt_at,
            )
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture
def receiver():
    receiver, server = start_webhook_receiver(slow_seconds=0.3, silent_seconds=2.0)
    yield receiver
    server.shutdown()


def webhook(receiver, timeout: float = 1.0) -> dict:
    connector = WebhookConnector(receiver.url, SECRET, timeout=timeout)
    return {"push": connector, "in_app": connector, "email": connector}


def deliver(engine, connectors, now=NOW):
    return outbox.deliver_due(engine, now, connectors, rng=random.Random(1))


# ---------------------------------------------------------------- the Outbox CSV


def test_the_outbox_csv_holds_every_message_with_its_delivery_status_made_a_batch_at_a_time(
    demo_engine, receiver, monkeypatch
):
    monkeypatch.setattr(outbox_export, "BATCH_ROWS", 7)
    ids = queue_messages(demo_engine, 20)
    deliver(demo_engine, webhook(receiver))
    with demo_engine.begin() as connection:
        connection.execute(
            update(OutboxMessage).where(OutboxMessage.id == ids[0]).values(status="failed", last_error="=cmd() bounced")
        )
        campaign = connection.execute(select(OutboxMessage.campaign_id).where(OutboxMessage.id == ids[0])).scalar()
    chunks = list(outbox_export.outbox_csv_stream(demo_engine, campaign, actor=Actor("ana@x.io", "analyst")))
    assert len(chunks) == 1 + 3  # the header, then 20 messages in batches of 7
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8"))))
    assert list(rows[0]) == [
        "id", "campaign", "occurrence", "user", "time_zone", "channel", "variant", "send_at_utc",
        "status", "attempts", "sent_at_utc", "last_error", "title", "body",
    ]  # fmt: skip
    by_id = {int(row["id"]): row for row in rows}
    assert sorted(by_id) == ids
    stored = statuses(demo_engine)
    assert {i: (row["status"], int(row["attempts"])) for i, row in by_id.items()} == {i: stored[i][:2] for i in ids}
    assert [row["status"] for row in rows].count("sent") == 19
    assert by_id[ids[0]]["last_error"] == "'=cmd() bounced"  # formula-safe, like every CSV
    assert by_id[ids[1]]["body"] == "Tom & Jerry <script>alert(1)</script>\nSecond line"
    assert by_id[ids[1]]["sent_at_utc"] and by_id[ids[0]]["variant"] == ""


# ---------------------------------------------------------------- webhook
def test_a_webhook_batch_is_signed_and_each_message_marked_sent_with_the_providers_id(demo_engine, receiver):
    ids = queue_messages(demo_engine, 150)
    report = deliver(demo_engine, webhook(receiver))
    assert (report.sent, report.failed, receiver.requests, receiver.bad_signatures) == (150, 0, 2, 0)  # batches of 100
    assert sorted(receiver.accepted) == sorted(f"likely-{i}" for i in ids)
    assert {statuses(demo_engine)[i][:2] for i in ids} == {("sent", 1)}
    assert statuses(demo_engine)[ids[0]][3] == f"p-likely-{ids[0]}"


def test_the_signature_is_hmac_sha256_of_timestamp_and_body():
    # Recomputed independently: the documented recipe.
    assert signature("s3cret", "1700000000", b'{"messages": []}') == (
        "sha256=" + __import__("hmac").new(b"s3cret", b'1700000000.{"messages": []}', "sha256").hexdigest()
    )


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        ("500", "queued", "HTTP 500: status 500 from the test receiver"),
        ("503", "queued", "HTTP 503: status 503 from the test receiver"),
        ("429", "queued", "HTTP 429: slow down"),
        ("408", "queued", "HTTP 408: status 408 from the test receiver"),
        ("silent", "queued", "no answer within 1 s"),
        ("malformed", "queued", "malformed answer (BadStatusLine: this is not HTTP)"),
        ("400", "failed", "HTTP 400: status 400 from the test receiver"),
        ("404", "failed", "HTTP 404: status 404 from the test receiver"),
        ("422", "failed", "HTTP 422: status 422 from the test receiver"),
        ("301", "failed", "HTTP 301 redirect to elsewhere: set the final URL"),
    ],
)
def test_each_webhook_answer_is_temporary_or_permanent_with_its_reason(demo_engine, receiver, answer, status, error):
    (message,) = queue_messages(demo_engine, 1)
    receiver.script = [answer]
    deliver(demo_engine, webhook(receiver))
    got_status, attempts, last_error, _provider, next_attempt = statuses(demo_engine)[message]
    assert (got_status, attempts, last_error) == (status, 1, error)
    if status == "queued":
        wait = next_attempt - NOW
        floor = timedelta(seconds=120) if answer == "429" else timedelta(seconds=15)  # Retry-After: 120
        assert floor <= wait <= timedelta(seconds=120)


def test_a_provider_500_is_retried_then_sent_and_a_permanent_400_fails_at_once(demo_engine, receiver):
    retried, refused = queue_messages(demo_engine, 1)[0], queue_messages(demo_engine, 1, channel="in_app")[0]
    receiver.script = ["500", "400"]  # one request per channel, push first
    first = deliver(demo_engine, webhook(receiver))
    assert (first.sent, first.retrying, first.failed) == (0, 1, 1)
    assert statuses(demo_engine)[refused][:3] == ("failed", 1, "HTTP 400: status 400 from the test receiver")
    assert deliver(demo_engine, webhook(receiver), NOW + timedelta(seconds=10)).sent == 0  # still backing off
    second = deliver(demo_engine, webhook(receiver), NOW + timedelta(minutes=2))
    assert second.sent == 1
    assert statuses(demo_engine)[retried][:2] == ("sent", 2)
    assert receiver.delivered == {f"likely-{retried}": 1}


def test_a_slow_answer_within_the_timeout_is_sent_and_a_2xx_without_json_still_accepts(demo_engine, receiver):
    slow, plain = queue_messages(demo_engine, 1)[0], queue_messages(demo_engine, 1, channel="in_app")[0]
    receiver.script = ["slow", "garbage-200"]
    assert deliver(demo_engine, webhook(receiver)).sent == 2
    assert statuses(demo_engine)[slow][3] == f"p-likely-{slow}"
    assert statuses(demo_engine)[plain][0] == "sent" and statuses(demo_engine)[plain][3] is None


def test_a_message_the_provider_rejects_fails_alone_with_its_reason(demo_engine, receiver):
    ids = queue_messages(demo_engine, 3)
    receiver.reject_ids = {f"likely-{ids[1]}"}
    deliver(demo_engine, webhook(receiver))
    assert [statuses(demo_engine)[i][0] for i in ids] == ["sent", "failed", "sent"]
    assert statuses(demo_engine)[ids[1]][2] == "rejected by the provider: unknown device"


@pytest.mark.parametrize(
    ("script", "outcome"), [([], "sent"), (["500"], "not sent (temporary)"), (["400"], "not sent")]
)
def test_a_test_message_is_audited_with_channel_provider_and_outcome_but_no_address_or_secret(
    demo_engine, receiver, script, outcome
):
    receiver.script.extend(script)
    settings = DeliverySettings(
        providers={"push": "webhook", "email": "demo", "in_app": "demo"},
        webhook_url=receiver.url + "?token=abc123",
        webhook_secret=SECRET,
    )
    boss = Actor("boss@x.io", "admin")
    answer = send_test_message(demo_engine, settings, "push", "person-42@example.com", actor=boss)
    assert answer.startswith(f"{outcome}:")
    [entry] = access.audit_log(demo_engine, actor=boss, action="test message").to_dict("records")
    assert (entry["actor"], entry["target"], entry["details"]) == (
        "boss@x.io",
        "Push",
        {"provider": "webhook", "outcome": outcome},
    )
    stored = repr(entry)
    for private in (SECRET, "abc123", receiver.url, "person-42"):
        assert private not in stored


def test_a_test_message_on_the_demo_channel_is_audited_as_nothing_sent(empty_engine):
    boss = Actor("boss@x.io", "admin")
    send_test_message(empty_engine, DeliverySettings(), "in_app", "", actor=boss)
    log = access.audit_log(empty_engine, actor=boss)
    assert log[["actor", "action", "target"]].values.tolist() == [["boss@x.io", "test message", "In-app"]]
    assert log["details"].tolist() == [{"provider": "demo", "outcome": "nothing sent (demo)"}]


def test_a_webhook_nobody_listens_on_is_temporary(demo_engine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    (message,) = queue_messages(demo_engine, 1)
    connector = WebhookConnector(f"http://127.0.0.1:{port}/", SECRET, timeout=1)
    deliver(demo_engine, {"push": connector})
    status, _attempts, error, *_ = statuses(demo_engine)[message]
    assert status == "queued" and error.startswith("cannot connect to the webhook")


def test_temporary_errors_give_up_after_the_last_attempt_with_the_reason(demo_engine, receiver):
    (message,) = queue_messages(demo_engine, 1)
    receiver.script = ["503"] * outbox.MAX_ATTEMPTS
    moment = NOW
    for _ in range(outbox.MAX_ATTEMPTS):
        deliver(demo_engine, webhook(receiver), moment)
        moment += outbox.LONGEST_DELAY
    status, attempts, error, *_ = statuses(demo_engine)[message]
    assert (status, attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert error == f"gave up after {outbox.MAX_ATTEMPTS} attempts: HTTP 503: status 503 from the test receiver"


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 15, 30), (2, 30, 60), (3, 60, 120), (5, 240, 480), (8, 1800, 3600), (20, 1800, 3600)],
)
def test_backoff_doubles_with_jitter_and_stops_growing_at_an_hour(attempts, low, high):
    waits = [outbox.backoff(attempts, random.Random(seed)).total_seconds() for seed in range(50)]
    assert low <= min(waits) and max(waits) <= high
    assert len(set(waits)) > 40  # jittered: retries of many messages do not arrive together


# ---------------------------------------------------------------- statuses, expiry, the demo channel
def test_messages_queued_over_a_day_ago_expire_with_the_reason_and_control_rows_are_never_delivered(demo_engine):
    old = queue_messages(demo_engine, 2, send_at=NOW - timedelta(days=1, minutes=1))
    recent = queue_messages(demo_engine, 2, send_at=NOW - timedelta(hours=23))
    control = queue_messages(demo_engine, 2, status="control")
    future = queue_messages(demo_engine, 2, send_at=NOW + timedelta(minutes=1))
    report = deliver(demo_engine, {"push": DemoConnector(demo_engine)})
    rows = statuses(demo_engine)
    assert (report.expired, report.sent) == (2, 2)
    assert {rows[i][0] for i in old} == {"expired"}
    assert rows[old[0]][2] == "not sent within a day of its send time (was the worker running?)"
    assert {rows[i][0] for i in recent} == {"sent"}
    assert {rows[i][:2] for i in control} == {("control", 0)}
    assert {rows[i][:2] for i in future} == {("queued", 0)}


def test_the_demo_channel_records_each_message_once_even_when_sent_twice(demo_engine):
    ids = queue_messages(demo_engine, 5)
    demo = DemoConnector(demo_engine)
    envelopes = [Envelope(i, 1, "push", f"u{i}", None, None, "t", "b", NOW) for i in ids]
    demo.send(envelopes)
    demo.send(envelopes[:3])
    with demo_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(DemoDelivery)).scalar() == 5


def test_retry_failed_queues_a_campaigns_failed_messages_again(demo_engine, receiver):
    ids = queue_messages(demo_engine, 3)
    receiver.script = ["400"]
    deliver(demo_engine, webhook(receiver))
    with demo_engine.connect() as connection:
        campaign = connection.execute(select(OutboxMessage.campaign_id).where(OutboxMessage.id == ids[0])).scalar()
    later = NOW + timedelta(days=3)  # long after: a hand retry is not expired
    assert outbox.retry_failed(demo_engine, campaign, now=later) == 3
    assert deliver(demo_engine, webhook(receiver), later).sent == 3
    counts = outbox.status_counts(demo_engine, campaign)
    assert counts[["sent", "failed", "total"]].to_dict("records") == [{"sent": 3, "failed": 0, "total": 3}]


def test_a_channel_without_a_provider_waits_with_the_reason(demo_engine):
    (message,) = queue_messages(demo_engine, 1, channel="email")
    deliver(demo_engine, {"push": DemoConnector(demo_engine)})
    assert statuses(demo_engine)[message][:3] == (
        "queued",
        1,
        "no provider is set up for the email channel (Data page)",
    )


# ---------------------------------------------------------------- SMTP
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    port = free_port()
    inbox, controller = start_smtp_server(port)
    yield inbox, port
    controller.stop()


def smtp(port: int, url: str | None = None, **kwargs) -> SmtpConnector:
    return SmtpConnector(parse_smtp_url(url or f"smtp://127.0.0.1:{port}"), "Likely News <news@example.com>", **kwargs)


def test_an_email_has_text_and_escaped_html_from_the_same_copy_an_id_and_list_unsubscribe(demo_engine, smtp_server):
    inbox, port = smtp_server
    (message,) = queue_messages(demo_engine, 1, channel="email")
    assert deliver(demo_engine, {"email": smtp(port)}).sent == 1
    (received,) = inbox.messages
    assert received["Message-ID"] == f"<likely-{message}@example.com>"
    assert received["Subject"].startswith("Hello <b>")
    assert received["List-Unsubscribe"].startswith("<mailto:news@example.com?subject=unsubscribe%20")
    text = received.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = received.get_body(("html",)).get_content()
    assert text.strip() == "Tom & Jerry <script>alert(1)</script>\nSecond line"
    assert "<p>Tom &amp; Jerry &lt;script&gt;alert(1)&lt;/script&gt;<br>Second line</p>" in html
    assert "<script>" not in html
    assert statuses(demo_engine)[message][3] == "250 Message accepted for delivery"  # the server's own reply


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        ("550 5.1.1 No such user", "failed", "SMTP 550 5.1.1 No such user"),
        ("451 4.7.1 Try again later", "queued", "SMTP 451 4.7.1 Try again later"),
    ],
)
def test_a_refused_recipient_is_failed_or_retried_by_the_servers_code(demo_engine, smtp_server, reply, status, error):
    inbox, port = smtp_server
    first, second = queue_messages(demo_engine, 2, channel="email")
    with demo_engine.connect() as connection:
        address = connection.execute(
            select(User.email).join(OutboxMessage, OutboxMessage.user_id == User.id).where(OutboxMessage.id == first)
        ).scalar()
    inbox.refuse[address] = reply
    deliver(demo_engine, {"email": smtp(port)})
    assert statuses(demo_engine)[first][:3] == (status, 1, error)
    assert statuses(demo_engine)[second][0] == "sent" and len(inbox.messages) == 1


def test_an_smtp_server_that_is_down_is_temporary(demo_engine):
    (message,) = queue_messages(demo_engine, 1, channel="email")
    deliver(demo_engine, {"email": smtp(free_port(), timeout=2)})
    status, _attempts, error, *_ = statuses(demo_engine)[message]
    assert status == "queued" and error.startswith("SMTP connection failed")


def test_html_body_keeps_paragraphs_and_escapes_every_markup_character():
    assert html_body('a < b & "c"\n\nnext') == (
        '<!doctype html>\n<html><body style="font-family: sans-serif">\n'
        "<p>a &lt; b &amp; &quot;c&quot;</p>\n<p>next</p>\n</body></html>\n"
    )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", folder / "key.pem", "-out", folder / "cert.pem"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return folder / "cert.pem", folder / "key.pem"


def test_starttls_and_login_then_send(demo_engine, tls_files):
    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    port = free_port()
    inbox, controller = start_smtp_server(port, tls_context=server_context, users={"mailer": "p@ss:word"})
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        queue_messages(demo_engine, 2, channel="email")
        connector = smtp(port, f"smtp://mailer:p%40ss%3Aword@127.0.0.1:{port}", tls_context=client_context)
        assert deliver(demo_engine, {"email": connector}).sent == 2
        assert inbox.logins == ["mailer"] and len(inbox.messages) == 2
    finally:
        controller.stop()


def test_a_password_is_never_sent_over_a_connection_without_tls(demo_engine, smtp_server):
    inbox, port = smtp_server  # no STARTTLS offered
    (message,) = queue_messages(demo_engine, 1, channel="email")
    deliver(demo_engine, {"email": smtp(port, f"smtp://mailer:secret@127.0.0.1:{port}")})
    status, _attempts, error, *_ = statuses(demo_engine)[message]
    assert status == "queued" and "password is not sent in clear" in error and "secret" not in error
    assert inbox.messages == []


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://host", "must start with smtp:// (STARTTLS) or smtps:// (SSL)"),
        ("smtp://user:hunter2@:25", "names no host"),
        ("smtp://user:hunter2@host:port", "port that is not a number"),
    ],
)
def test_a_bad_smtp_url_is_one_line_that_never_repeats_the_password(url, problem):
    with pytest.raises(UserError) as caught:
        parse_smtp_url(url)
    assert problem in str(caught.value) and "hunter2" not in str(caught.value)


def test_the_environment_sets_up_providers_and_secrets_are_never_shown(empty_engine):
    environ = {
        "LIKELY_SMTP_URL": "smtps://mailer:hunter2@mail.example.com",
        "LIKELY_SMTP_FROM": "news@example.com",
        "LIKELY_WEBHOOK_URL": "https://hook:pa55@hooks.example.com/likely",
        "LIKELY_WEBHOOK_SECRET": "whsec-42",
    }
    settings = load_settings(empty_engine, environ)
    assert settings.providers == {"push": "webhook", "email": "smtp", "in_app": "webhook"}
    shown = public_view(settings)
    assert shown["SMTP server"] == "smtps://mailer:•••@mail.example.com:465"
    assert (shown["Webhook secret"], shown["Webhook URL"]) == ("set", "https://hook:•••@hooks.example.com/likely")
    assert not any(secret in value for value in shown.values() for secret in ("hunter2", "whsec-42", "pa55"))
    assert load_settings(empty_engine, {}).providers == {"push": "demo", "email": "demo", "in_app": "demo"}


def test_page_settings_keep_a_stored_secret_when_left_blank_and_refuse_an_incomplete_setup(empty_engine):
    save_settings(
        empty_engine,
        DeliverySettings(
            providers={"push": "webhook", "email": "demo", "in_app": "demo"},
            webhook_url="https://hooks.example.com/likely",
            webhook_secret="whsec-1",
        ),
    )
    save_settings(
        empty_engine,
        DeliverySettings(
            providers={"push": "webhook", "email": "demo", "in_app": "webhook"}, webhook_url="https://h.example.com/x"
        ),
    )
    stored = load_settings(empty_engine, {})
    assert (stored.webhook_url, stored.webhook_secret) == ("https://h.example.com/x", "whsec-1")
    assert stored.providers["in_app"] == "webhook"
    with pytest.raises(UserError, match="email goes by SMTP but no SMTP URL is set"):
        save_settings(empty_engine, DeliverySettings(providers={"push": "demo", "email": "smtp", "in_app": "demo"}))
    assert load_settings(empty_engine, {}).providers["email"] == "demo"  # nothing changed
    assert set(connectors_for(empty_engine, stored)) == {"push", "email", "in_app"}


def test_an_address_beyond_ascii_goes_by_smtputf8(demo_engine, smtp_server):
    inbox, port = smtp_server  # aiosmtpd offers SMTPUTF8
    (message,) = queue_messages(demo_engine, 1, channel="email")
    with demo_engine.begin() as connection:
        user = connection.execute(select(OutboxMessage.user_id).where(OutboxMessage.id == message)).scalar()
        connection.execute(User.__table__.update().where(User.id == user).values(email="josé@exämple.com"))
    assert deliver(demo_engine, {"email": smtp(port)}).sent == 1
    assert inbox.messages[0]["To"] == "josé@exämple.com"


class _Broken:
    name = "broken"
    batch_size = 10

    def send(self, envelopes):
        raise RuntimeError("a bug")

    def close(self):
        pass


def test_a_connector_that_breaks_leaves_nothing_sending_and_retries_later(demo_engine):
    ids = queue_messages(demo_engine, 3)
    report = deliver(demo_engine, {"push": _Broken()})
    assert report.retrying == 3
    assert {statuses(demo_engine)[i][:3] for i in ids} == {
        ("queued", 1, "the broken connector failed: RuntimeError: a bug")
    }
