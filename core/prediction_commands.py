"""CLI: `predict` (train, --refresh or --retrain), `scores` (export), `predictions` (list), `bench-slider`."""

from __future__ import annotations

import json

from core import safejson
from core.arguments import bounded_int, count_arg, output_arg
from core.db import get_engine
from core.errors import UserError
from core.instants import instant_arg
from core.progress import printer


def register(subparsers) -> None:
    predict = subparsers.add_parser("predict", help="train an event prediction, or refresh or retrain one")
    predict.add_argument("--event", help="the event to predict, e.g. purchase")
    predict.add_argument("--window-days", type=bounded_int(1, 60, "--window-days"), help="how many days ahead (1-60)")
    predict.add_argument("--as-of", type=instant_arg, help="the prediction's 'now' (default: latest event)")
    predict.add_argument("--kind", choices=["full", "preview", "demo"], default="full")
    predict.add_argument("--name", help="default: '<Event> in next N days'")
    predict.add_argument("--audience", help="a segment definition as JSON (default: all users)")
    again = predict.add_mutually_exclusive_group()
    again.add_argument(
        "--refresh",
        metavar="PREDICTION",
        help="rescore an existing prediction (name or id) on the newest data, retraining its model "
        "when it is due (run it daily from cron)",
    )
    again.add_argument("--retrain", metavar="PREDICTION", help="retrain a full prediction in place now, then rescore")
    predict.set_defaults(handler=_predict)

    scores = subparsers.add_parser("scores", help="export a prediction's scores as CSV (user_id,score,category)")
    scores.add_argument("prediction", help="name or id")
    scores.add_argument("-o", "--output", required=True, type=output_arg, help="the CSV file to write")
    scores.set_defaults(handler=_scores)

    listing = subparsers.add_parser("predictions", help="list predictions with their quality")
    listing.set_defaults(handler=_list)

    bench = subparsers.add_parser("bench-slider", help="time the Predictions page's slider (one JSON line)")
    bench.add_argument(
        "--users", type=count_arg, help="synthetic audience size (default: the database's own prediction)"
    )
    bench.add_argument("--prediction", help="name or id (default: the first full prediction)")
    bench.add_argument("--moves", type=count_arg, default=200)
    bench.set_defaults(handler=_bench)


def _describe(prediction) -> str:
    quality = "n/a" if prediction.quality is None else f"{prediction.quality:.1f}% ({prediction.quality_band})"
    auc = "n/a" if prediction.auc is None else f"{prediction.auc:.3f}"
    return (
        f"{prediction.name} [id {prediction.id}, {prediction.kind}]: quality {quality}, AUC {auc}, "
        f"{prediction.audience_size:,} users scored as of {prediction.as_of:%Y-%m-%d %H:%M}"
    )


def _predict(args) -> int:
    from core.predictions import get_prediction, refresh_scores, retrain_prediction, train_prediction

    engine = get_engine()
    say = printer("predict ")
    if args.refresh:
        prediction_id = refresh_scores(engine, args.refresh, progress=say)
    elif args.retrain:
        prediction_id = retrain_prediction(engine, args.retrain, progress=say)
    else:
        if not args.event or not args.window_days:
            raise UserError("predict needs --event and --window-days (or --refresh PREDICTION)")
        audience = None
        if args.audience:
            try:
                audience = safejson.loads(args.audience)
            except safejson.JSONLimitError as error:
                raise UserError(f"--audience {error}") from None
        prediction_id = train_prediction(
            engine,
            args.event,
            args.window_days,
            kind=args.kind,
            name=args.name,
            audience=audience,
            as_of=args.as_of,
            progress=say,
        )
    print(_describe(get_prediction(engine, prediction_id)))
    return 0


def _scores(args) -> int:
    from core.predictions import export_scores

    rows = export_scores(get_engine(), args.prediction, args.output)
    print(f"wrote {rows:,} scores to {args.output}")
    return 0


def _list(_args) -> int:
    from core.predictions import list_predictions

    predictions = list_predictions(get_engine())
    for prediction in predictions:
        print(_describe(prediction))
    if not predictions:
        print("no predictions yet: python -m core predict --event purchase --window-days 30")
    return 0


def _bench(args) -> int:
    from core.predictions.bench import bench_slider

    result = bench_slider(get_engine(), users=args.users, prediction=args.prediction, moves=args.moves)
    print(json.dumps(result))
    return 0
