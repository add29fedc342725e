"""The Data page's delivery section: the worker's health, and each channel's provider."""

from __future__ import annotations

import streamlit as st

from core.access import Permission, can
from core.delivery import config as delivery_config
from core.errors import UserError
from core.markup import plain
from core.timeutil import utcnow
from core.worker import read_status

KEEP = "(stored; leave blank to keep it)"


def _worker(engine) -> None:
    st.markdown("**Campaign worker**")
    now = utcnow()
    status = read_status(engine)
    # A stale worker is already warned about above every screen (app.py): not said twice here.
    if status is None or status.heartbeat is None:
        st.caption("No worker has run on this database yet.")
        return
    alive = "running" if not status.stale(now) else "not running"
    cols = st.columns(4)
    cols[0].metric("Worker", alive)
    cols[1].metric("Heartbeat (UTC)", f"{status.heartbeat:%H:%M:%S}", help=f"{status.heartbeat:%Y-%m-%d}")
    cols[2].metric("Last run (UTC)", f"{status.last_run:%H:%M:%S}" if status.last_run else "—")
    cols[3].metric("Next run (UTC)", f"{status.next_run:%H:%M:%S}" if status.next_run else "—")
    st.caption(f"On {status.owner}, every {status.interval:g} s. " + status.last_cycle.get("summary", ""))
    if status.last_refresh:
        st.caption(f"Full predictions' scores last refreshed on {status.last_refresh}.")
    if status.errors:
        with st.expander(f"Recent problems ({len(status.errors)})"):
            st.dataframe(status.errors, hide_index=True, width="stretch")


def _providers(engine, actor) -> None:
    st.markdown("**Channels**")
    may_change = can(actor, Permission.CHANGE_RULES)
    if not may_change:
        st.caption("Only an admin may change the delivery channels or send a test message.")
    try:
        settings = delivery_config.load_settings(engine)
    except UserError as error:
        st.error(plain(error))
        settings = delivery_config.DeliverySettings()
    if not settings.live:
        st.info(
            "Every channel uses the demo provider: messages are recorded in this app and nothing leaves this machine.",
            icon=":material/science:",
        )
    if "dp_saved" in st.session_state:
        st.success(st.session_state.pop("dp_saved"))
    env = settings.from_environment
    if env:
        names = ", ".join(delivery_config.ENVIRONMENT[name] for name in sorted(env))
        st.caption(f"Set by the environment (change them there): {names}.")
    with st.form("delivery_channels", clear_on_submit=True):  # typed secrets do not linger in the browser
        cols = st.columns(3)
        providers = {}
        for col, channel in zip(cols, delivery_config.CHANNELS, strict=True):
            options = list(delivery_config.ALLOWED[channel])
            providers[channel] = col.selectbox(
                f"{delivery_config.CHANNEL_NAMES[channel]} goes by",
                options,
                index=options.index(settings.providers[channel]),
                format_func=delivery_config.PROVIDERS.get,
                key=f"dp_provider_{channel}",
            )
        smtp_col, hook_col = st.columns(2)
        smtp_url = smtp_col.text_input(
            "SMTP server",
            type="password",
            placeholder=KEEP if settings.smtp_url else "smtps://user:password@mail.example.com:465",
            disabled="smtp_url" in env,
            help="smtp:// upgrades with STARTTLS, smtps:// is TLS from the start. Never shown back.",
            key="dp_smtp_url",
        )
        smtp_from = smtp_col.text_input(
            "Sender", value=settings.smtp_from or "", disabled="smtp_from" in env, key="dp_smtp_from"
        )
        webhook_url = hook_col.text_input(
            "Webhook URL", value=settings.webhook_url or "", disabled="webhook_url" in env, key="dp_webhook_url"
        )
        webhook_secret = hook_col.text_input(
            "Webhook signing secret",
            type="password",
            placeholder=KEEP if settings.webhook_secret else "",
            disabled="webhook_secret" in env,
            help="Each request carries X-Likely-Signature: HMAC-SHA256 of the timestamp and body. Never shown back.",
            key="dp_webhook_secret",
        )
        if st.form_submit_button("Save channels", disabled=not may_change):
            chosen = delivery_config.DeliverySettings(
                providers=providers,
                smtp_url=settings.smtp_url if "smtp_url" in env else smtp_url or None,
                smtp_from=settings.smtp_from if "smtp_from" in env else smtp_from or None,
                webhook_url=settings.webhook_url if "webhook_url" in env else webhook_url or None,
                webhook_secret=settings.webhook_secret if "webhook_secret" in env else webhook_secret or None,
                from_environment=env,
            )
            try:
                delivery_config.save_settings(engine, chosen, actor=actor)
            except UserError as error:
                st.error(plain(f"{error}. Nothing was changed."))
            else:
                st.session_state["dp_saved"] = "Channels saved: the worker uses them from its next cycle."
                for key in ("dp_smtp_url", "dp_webhook_secret"):  # a typed secret is not kept in the session
                    st.session_state.pop(key, None)
                st.rerun()
    st.dataframe(
        [{"setting": k, "value": v} for k, v in delivery_config.public_view(settings).items()],
        hide_index=True,
        width="stretch",
    )
    _test_message(engine, settings, actor)


def _test_message(engine, settings, actor) -> None:
    st.markdown("**Send a test message**")
    cols = st.columns([1, 2, 1], vertical_alignment="bottom")
    channel = cols[0].selectbox(
        "Channel", delivery_config.CHANNELS, format_func=delivery_config.CHANNEL_NAMES.get, key="dp_test_channel"
    )
    recipient = cols[1].text_input(
        "To", placeholder="an email address" if channel == "email" else "a user id", key="dp_test_to"
    )
    if cols[2].button("Send a test message", key="dp_test_send", disabled=not can(actor, Permission.CHANGE_RULES)):
        try:
            answer = delivery_config.send_test_message(engine, settings, channel, recipient, actor=actor)
        except UserError as error:
            st.error(plain(error))
        else:
            st.code(answer, language=None, wrap_lines=True)


def render(engine, actor) -> None:
    st.subheader("Campaign delivery")
    st.caption(
        "The worker (`make run` starts it with the app) writes due messages and hands them to each channel's "
        "provider every minute; the Outbox on the Campaigns page shows what was sent and what failed."
    )
    _worker(engine)
    _providers(engine, actor)
