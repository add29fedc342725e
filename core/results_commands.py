"""CLI: `campaign results NAME [--json]`, treated against control per send, tier and variant."""

from __future__ import annotations

import json

from core.db import get_engine
from core.errors import UserError
from core.instants import parse_instant


def register(campaign_subparsers) -> None:
    """Adds `results` under `campaign` (core/campaign_commands.py owns the `campaign` command)."""
    results = campaign_subparsers.add_parser("results", help="conversions against the control group, per tier")
    results.add_argument("name", help="the campaign's name")
    results.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    results.add_argument("--as-of", type=str, help="count conversions up to this UTC date-time (default: now)")
    results.set_defaults(handler=_results)


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _points(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f} pts"


def _interval(ci) -> str:
    return "—" if ci is None else f"[{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"


def _line(label: str, r: dict) -> str:
    p_value = "—" if r["p_value"] is None else f"{r['p_value']:.3f}"
    revenue = ""
    if r["revenue_per_user_treated"] is not None:
        control = r["revenue_per_user_control"]
        revenue = f"  revenue/user {r['revenue_per_user_treated']:.2f} vs " + (
            "—" if control is None else f"{control:.2f}"
        )
    return (
        f"{label:<22} audience {r['audience']:>8,}  treated {r['treated']:>8,}  control {r['control']:>7,}  "
        f"delivered {r['delivered']:>8,}  converted {r['converted_treated']:>7,} / {r['converted_control']:>6,}  "
        f"rate {_percent(r['rate_treated']):>6} vs {_percent(r['rate_control']):>6}  "
        f"uplift {_points(r['uplift'])} 95% {_interval(r['uplift_ci'])}  p {p_value}{revenue}"
    )


def _results(args) -> int:
    from core.campaigns.results import campaign_id_by_name, campaign_results

    try:
        as_of = parse_instant(args.as_of) if args.as_of else None
    except ValueError as error:
        raise UserError(f"--as-of {error}") from None
    engine = get_engine()
    results = campaign_results(campaign_id_by_name(args.name, engine), engine, as_of)
    data = results.as_json()
    if args.json:
        print(json.dumps(data, separators=(",", ":")))
        return 0
    print(
        f"{data['campaign']}: converted = '{data['conversion_event']}' within {data['window_days']} days of a send; "
        f"control group {data['control_percent']:g}%; as of {data['as_of']} UTC"
    )
    print(_line("Overall", data))
    print(f"  {data['verdict']}")
    for tier, tier_data in data["by_tier"].items():
        print(_line(f"{tier} tier", tier_data))
    for name, variant_data in data["by_variant"].items():
        print(_line(f"Variant {name}", variant_data))
    for name, versus in data["variants_vs_first"].items():
        print(f"Variant {name} vs the first: uplift {_points(versus['uplift'])} p {versus['p_value']}")
    for send in data["sends"]:
        label = send["occurrence"] + ("" if send["window_complete"] else " (open)")
        print(_line(label, send))
    return 0
