"""CLI: `dispatch [--until ISO]` writes due messages to the outbox; `campaign list` shows campaigns."""

from __future__ import annotations

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
    dispatch.set_defaults(handler=_dispatch)

    campaign = subparsers.add_parser("campaign", help="campaigns")
    sub = campaign.add_subparsers(dest="campaign_command", required=True)
    listing = sub.add_parser("list", help="list campaigns with status and next send")
    listing.set_defaults(handler=_list)
    results_commands.register(sub)


def _dispatch(args) -> int:
    from core.campaigns import dispatch

    until = _iso(args.until) if args.until else None
    report = dispatch(get_engine(), until=until, campaign_ids=args.campaign)
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
