"""CLI: `backtest` - replay the standard protocol on your own data against the classic models."""

from __future__ import annotations

import json

from core.db import get_engine
from core.instants import instant_arg
from core.progress import printer


def register(subparsers) -> None:
    backtest = subparsers.add_parser(
        "backtest",
        help="train at T-2N, evaluate at T-N: the product's model vs base rate, recency, RFM regression, BG/NBD",
    )
    backtest.add_argument("--event", required=True, help="the event to predict, e.g. purchase")
    backtest.add_argument("--window-days", type=int, required=True, help="how many days ahead (1-180)")
    backtest.add_argument(
        "--as-of", type=instant_arg, help="T, the end of the evaluation window (default: latest event)"
    )
    backtest.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    backtest.set_defaults(handler=_backtest)

    bench = subparsers.add_parser(
        "bench-predict",
        help="time predict and backtest (and their peak memory) on a synthetic database (one JSON line)",
    )
    bench.add_argument("--users", type=int, default=100_000, help="synthetic users, ~30 events each")
    bench.add_argument("--window-days", type=int, default=30)
    bench.add_argument("--keep", help="build (or reuse) the database at this path instead of a temporary one")
    bench.set_defaults(handler=_bench)


def _backtest(args) -> int:
    from core.predictions.backtest import format_table, run_backtest, summary_sentences

    say = (lambda _m: None) if args.json else printer("backtest ")
    result = run_backtest(get_engine(), args.event, args.window_days, as_of=args.as_of, progress=say)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(format_table(result))
        print("\n".join(summary_sentences(result)))
    return 0


def _bench(args) -> int:
    from pathlib import Path

    from core.predictions.scale_bench import bench_predict

    print(json.dumps(bench_predict(args.users, args.window_days, Path(args.keep) if args.keep else None)))
    return 0
