"""CLI: `dispatch [--until ISO]` writes due messages to the outbox; `campaign list|create|show|pause|resume|stop|
retry-failed` manage campaigns, from files in the format of docs/campaigns.md."""

from __future__ import annotations

import json
from datetime import datetime

from core import results_commands
from core.arguments import id_arg
from core.db import get_engine
from core.errors import UserError
from core.instants import parse_instant


def _iso(value: str) -> datetime:
    try:
        return parse_instant(value)
    except ValueError as error:
        raise UserError(f"--until {error}") from None


def register(subparsers) -> None:
    dispatch = subparsers.add_parser("dispatch", help="write every due campaign message to the outbox (idempotent)")
    dispatch.add_argument("--until", type=str, help="send instants up to this UTC date-time (default: now)")
    dispatch.add_argument("--campaign", type=id_arg, action="append", help="only this campaign id (repeatable)")
    dispatch.add_argument(
        "--wait", type=float, default=0, help="seconds to wait for a dispatch already running (default: refuse at once)"
    )
    dispatch.set_defaults(handler=_dispatch)

    campaign = subparsers.add_parser("campaign", help="campaigns")
    sub = campaign.add_subparsers(dest="campaign_command", required=True)
    listing = sub.add_parser("list", help="list campaigns with status and next send")
    listing.set_defaults(handler=_list)
    results_commands.register(sub)

    create = sub.add_parser("create", help="create and launch a campaign from a JSON file (docs/campaigns.md)")
    create.add_argument("file")
    create.add_argument("--draft", action="store_true", help="save it as a draft instead of launching it")
    create.set_defaults(handler=_create)

    show = sub.add_parser("show", help="a campaign as a file, its status and its messages by status")
    show.add_argument("name", help="the campaign's name (or id)")
    show.set_defaults(handler=_show)

    for action, says in (("pause", "pause a scheduled campaign"), ("resume", "resume a paused campaign"),
                         ("stop", "stop a campaign for good")):  # fmt: skip
        command = sub.add_parser(action, help=says)
        command.add_argument("name", help="the campaign's name (or id)")
        command.set_defaults(handler=_transition, action=action)

    retry = sub.add_parser("retry-failed", help="queue a campaign's failed and expired messages again")
    retry.add_argument("name", help="the campaign's name (or id)")
    retry.set_defaults(handler=_retry_failed)


def _dispatch(args) -> int:
    from core.campaigns import dispatch

    until = _iso(args.until) if args.until else None
    report = dispatch(get_engine(), until=until, campaign_ids=args.campaign, lease_wait=args.wait)
    for campaign_id, count in report.by_campaign.items():
        held = [
            f"{counts[campaign_id]:,} {what}"
            for counts, what in (
                (report.held_out, "held out as the control group"),
                (report.deferred, "sent after quiet hours"),
                (report.capped, "held back by the frequency cap"),
                (report.quiet_dropped, "not sent in quiet hours"),
                (report.failed, "failed to render, see last_error in the outbox"),
            )
            if counts.get(campaign_id)
        ]
        print(f"campaign {campaign_id}: {count:,} messages written" + (f" ({', '.join(held)})" if held else ""))
    for campaign_id, problem in report.problems.items():
        print(f"campaign {campaign_id}: skipped, {problem}")
    if report.total_capped or report.total_quiet_dropped:
        print(
            f"delivery rules: {report.total_capped:,} held back by the frequency cap, "
            f"{report.total_quiet_dropped:,} not sent in quiet hours"
        )
    print(f"{report.written:,} messages written to the outbox")
    return 1 if report.problems else 0


def _list(args) -> int:
    from core.campaigns import list_campaigns

    frame = list_campaigns(get_engine())
    if frame.empty:
        print("no campaigns yet")
        return 0
    columns = ["id", "name", "audience", "channel", "status", "next_send", "messages_written"]
    print(frame[columns].to_string(index=False))
    return 0


def _create(args) -> int:
    from core.campaigns import launch, save_draft, validate
    from core.campaigns.files import read_document, spec_from_document

    engine = get_engine()
    spec = spec_from_document(engine, read_document(args.file))
    check = validate(spec, engine)
    if args.draft:
        campaign_id = save_draft(spec, engine)
        print(f"saved draft “{spec.name}” (id {campaign_id})")
    else:
        campaign_id = launch(spec, engine)  # the composer's own check: refuses with every error
        print(f"launched “{spec.name}” (id {campaign_id}): {check.reachable_users:,} reachable users today")
    for warning in check.warnings:
        print(f"  warning: {warning}")
    return 0


def _show(args) -> int:
    from core.campaigns import get_campaign
    from core.campaigns.files import document_from_spec, find_campaign
    from core.campaigns.store import next_send
    from core.delivery.outbox import STATUSES, status_counts
    from core.timeutil import utcnow

    engine = get_engine()
    campaign_id = find_campaign(engine, args.name)
    spec, record = get_campaign(campaign_id, engine)
    print(json.dumps(document_from_spec(engine, spec), indent=2, ensure_ascii=False))
    upcoming = next_send(spec.schedule, record["status"], record["launched_at"], utcnow())
    print(f"status: {record['status']}" + (f", next send {upcoming:%Y-%m-%d %H:%M} (wall clock)" if upcoming else ""))
    counts = status_counts(engine, campaign_id)
    totals = {status: int(counts[status].sum()) for status in STATUSES if len(counts) and counts[status].sum()}
    print("messages: " + (", ".join(f"{n:,} {status}" for status, n in totals.items()) or "none yet"))
    return 0


def _transition(args) -> int:
    from core.campaigns import transition
    from core.campaigns.files import find_campaign

    engine = get_engine()
    status = transition(find_campaign(engine, args.name), args.action, engine)
    print(f"“{args.name}” is now {status}")
    return 0


def _retry_failed(args) -> int:
    from core.campaigns.files import find_campaign
    from core.delivery.outbox import retry_failed

    engine = get_engine()
    count = retry_failed(engine, find_campaign(engine, args.name))
    print(f"{count:,} message(s) queued again; the worker sends them in its next cycle")
    return 0
