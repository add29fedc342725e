"""The Outbox view of the Campaigns page: what was sent, what failed and why, per campaign and send."""

from __future__ import annotations

from functools import partial

import streamlit as st

from core.access import Actor, Permission, can
from core.campaigns import list_campaigns
from core.campaigns.outbox_export import outbox_csv_stream
from core.delivery import config as delivery_config
from core.delivery import outbox
from core.errors import UserError
from core.markup import plain
from core.timeutil import utcnow
from core.worker import read_status
from pages import download_link
from pages.team.access import signed_in_actor

STATUS_LABELS = {
    "queued": "Queued",
    "sending": "Sending",
    "sent": "Sent",
    "failed": "Failed",
    "expired": "Expired",
    "control": "Control group",
}
RECENT = 200


def _channels_line(engine) -> None:
    try:
        settings = delivery_config.load_settings(engine)
    except UserError as error:
        st.error(plain(error))
        return
    if not settings.live:
        st.info(
            "Demo delivery: messages are recorded in this app and nothing leaves this machine. "
            "Set up a webhook or an email server on the Data page to reach real users.",
            icon=":material/science:",
        )
    else:
        used = ", ".join(
            f"{channel}: {delivery_config.PROVIDERS[provider]}" for channel, provider in settings.providers.items()
        )
        st.caption(f"Delivery: {used} (Data page).")
    status = read_status(engine)
    if status is None or status.stale(utcnow()):
        st.warning(
            "No worker is running: due messages wait. Start it with `make run` or `python -m core worker`.",
            icon=":material/warning:",
        )
    elif status.last_run is not None:
        st.caption(
            f"The worker sends due messages every {status.interval:g} s; last run {status.last_run:%H:%M:%S} UTC."
        )


def _retry_clicked(engine, campaign_id: int, name: str) -> None:
    try:  # the person signed in now: a role changed since this button was drawn counts
        count = outbox.retry_failed(engine, campaign_id, actor=signed_in_actor(engine))
    except UserError as error:
        st.session_state["outbox_error"] = plain(error)
        return
    st.session_state["outbox_flash"] = f"{count:,} failed messages of “{plain(name)}” are queued again."


def render(engine, actor: Actor) -> None:
    """The view: delivery setup, counts by status per campaign and send, failures, recent messages."""
    if "outbox_flash" in st.session_state:
        st.success(st.session_state.pop("outbox_flash"))
    if "outbox_error" in st.session_state:
        st.error(st.session_state.pop("outbox_error"))
    _channels_line(engine)
    campaigns = list_campaigns(engine)
    names = dict(zip(campaigns["id"], campaigns["name"], strict=True))
    chosen = st.selectbox(
        "Outbox of",
        [None, *names],
        format_func=lambda i: "All campaigns" if i is None else names[i],
        key="c_outbox_choice",
    )
    counts = outbox.status_counts(engine, chosen)
    totals = {status: int(counts[status].sum()) if len(counts) else 0 for status in outbox.STATUSES}
    shown = ["queued", "sent", "failed", "expired"] + [s for s in ("sending", "control") if totals[s]]
    for column, status in zip(st.columns(len(shown)), shown, strict=True):
        column.metric(STATUS_LABELS[status], f"{totals[status]:,}")
    if counts.empty:
        st.info("No messages yet: the worker writes them when a campaign's send time comes.")
        return

    st.subheader("By send")
    per_send = counts.rename(columns={"occurrence": "send (local wall clock)", **STATUS_LABELS})
    columns = ["campaign", "send (local wall clock)"] + [
        STATUS_LABELS[s] for s in outbox.STATUSES if s in ("queued", "sent", "failed", "expired") or totals[s]
    ]
    st.dataframe(per_send[columns + ["total"]], hide_index=True, width="stretch")

    failures = outbox.failures(engine, chosen)
    st.subheader("Failures")
    if failures.empty:
        st.caption("No failed or expired message.")
    else:
        st.dataframe(
            failures.rename(columns={"latest_send_utc": "latest send (UTC)"}), hide_index=True, width="stretch"
        )
        if chosen is None:
            st.caption("Choose a campaign above to retry its failed messages.")
        else:
            st.button(
                "Retry failed",
                on_click=_retry_clicked,
                args=(engine, int(chosen), names[chosen]),
                disabled=not can(actor, Permission.LAUNCH_CAMPAIGN),
                help="Queue this campaign's failed and expired messages again; the worker sends them in its next cycle.",
            )

    st.subheader("Latest messages")
    st.dataframe(outbox.recent_messages(engine, chosen, RECENT), hide_index=True, width="stretch")
    st.caption(f"The latest {RECENT:,} messages by send time.")
    download_link.download_link(
        "Download CSV",
        "outbox.csv",
        partial(outbox_csv_stream, engine, chosen, actor=actor),  # made on click, never on every rerun
        key="outbox_export",
        disabled=not can(actor, Permission.EXPORT),
        help="Every message of this view, formula-safe like every CSV Likely writes.",
    )
