"""CLI: `segment save|count|export|list|show|delete` for analysts, and `bench` for the live-count figures."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from core import safejson, segments
from core.arguments import count_arg, output_arg
from core.db import get_engine
from core.errors import UserError
from core.instants import instant_arg
from core.segments.export import export_csv


def register(subparsers) -> None:
    segment = subparsers.add_parser("segment", help="saved segments: save, count, export, list")
    commands = segment.add_subparsers(dest="segment_command", required=True)

    save = commands.add_parser("save", help="save a segment definition from a JSON file (see docs/segments.md)")
    save.add_argument("file", help='a JSON file: a definition, or {"name": ..., "definition": {...}}')
    save.add_argument("--name", help="the segment's name (default: the file's \"name\", else the file name)")
    save.add_argument("--replace", action="store_true", help="update the segment of that name if it exists")
    save.set_defaults(handler=_save)

    count = commands.add_parser("count", help="the exact number of users in a saved segment")
    count.add_argument("name", help="a saved segment's name or id")
    count.add_argument("--now", type=instant_arg, help="evaluate relative dates at this UTC time")
    count.set_defaults(handler=_count)

    export = commands.add_parser("export", help="export a saved segment's users as CSV")
    export.add_argument("name", help="a saved segment's name or id")
    export.add_argument("-o", "--output", required=True, type=output_arg, help="the CSV file to write ('-' for stdout)")
    export.add_argument("--now", type=instant_arg, help="evaluate relative dates at this UTC time")
    export.add_argument("--sql", action="store_true", help="select rows with SQL instead of the in-memory store")
    export.set_defaults(handler=_export)

    listing = commands.add_parser("list", help="every saved segment with its size")
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="a saved segment's definition (JSON) and sentences")
    show.add_argument("name")
    show.set_defaults(handler=_show)

    delete = commands.add_parser("delete", help="delete a saved segment (refused while a campaign uses it)")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)

    bench = subparsers.add_parser("bench", help="measure live segment counts and exports at N users (JSON line)")
    bench.add_argument("--users", type=count_arg, default=1_000_000)
    bench.add_argument("--repeat", type=count_arg, default=50, help="timed counts per figure (default 50)")
    bench.add_argument("--dir", default="bench-data", help="where bench databases live (default bench-data/)")
    bench.add_argument(
        "--random-scores", action="store_true", help="score users at random instead of training a prediction"
    )
    bench.set_defaults(handler=_bench)


def _read_definition_file(path: str) -> tuple[dict, str | None, str | None]:
    try:
        document = safejson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except safejson.JSONLimitError as error:
        raise UserError(f"{path}: {error}") from None
    if isinstance(document, dict) and "definition" in document:
        name, description = document.get("name"), document.get("description")
        for key, value in (("name", name), ("description", description)):
            if value is not None and not isinstance(value, str):
                raise UserError(f'{path}: "{key}" must be text, not {type(value).__name__}')
        return document["definition"], name, description
    return document, None, None


def _save(args) -> int:
    definition, name, description = _read_definition_file(args.file)
    name = args.name or name or Path(args.file).stem
    engine = get_engine()
    definition = segments.parse_definition(definition)  # the file edge: parsed once, before any write
    existing = {s.name.lower(): s for s in segments.list_segments(engine)}
    if args.replace and name.strip().lower() in existing:
        saved = segments.update_segment(engine, existing[name.strip().lower()].id, definition, description=description)
        verb = "updated"
    else:
        saved = segments.save_segment(engine, name, definition, description)
        verb = "saved"
    size = segments.count(saved.definition, engine)
    print(f"{verb} segment “{saved.name}” (id {saved.id}): {size:,} users")
    for line in segments.describe(saved.definition, _names(engine)):
        print(f"  {line}")
    return 0


def _names(engine) -> dict[int, str]:
    return {p.id: p.name for p in segments.evaluator_for(engine).predictions().values()}


def _count(args) -> int:
    engine = get_engine()
    saved = segments.get_segment(engine, args.name)
    print(segments.count(saved.definition, engine, args.now))
    return 0


def _export(args) -> int:
    engine = get_engine()
    saved = segments.get_segment(engine, args.name)
    started = time.perf_counter()
    if args.output == "-":
        rows = export_csv(saved.definition, sys.stdout, engine, args.now, via_sql=args.sql, subject=saved.name)
    else:
        rows = export_csv(saved.definition, args.output, engine, args.now, via_sql=args.sql, subject=saved.name)
        print(f"exported {rows:,} users of “{saved.name}” to {args.output} in {time.perf_counter() - started:.1f} s")
    return 0


def _list(args) -> int:
    engine = get_engine()
    saved = segments.list_segments(engine)
    if not saved:
        print("no saved segments yet")
        return 0
    total = segments.total_users(engine)
    for item in saved:
        try:
            size = segments.count(item.definition, engine)
            figure = f"{size:>10,}  {size / total * 100 if total else 0:5.1f}%"
        except UserError as error:
            figure = f"error: {error}"
        print(f"{item.id:>4}  {item.name:<40} {figure}")
    return 0


def _show(args) -> int:
    engine = get_engine()
    saved = segments.get_segment(engine, args.name)
    print(json.dumps({"name": saved.name, "definition": saved.definition.to_json()}, indent=2, ensure_ascii=False))
    for line in segments.describe(saved.definition, _names(engine)):
        print(f"# {line}")
    return 0


def _delete(args) -> int:
    engine = get_engine()
    saved = segments.get_segment(engine, args.name)
    segments.delete_segment(engine, saved.id)
    print(f"deleted segment “{saved.name}”")
    return 0


def _bench(args) -> int:
    from core.segments.bench import run_bench

    print(json.dumps(run_bench(args.users, args.dir, repeat=args.repeat, random_scores=args.random_scores)))
    return 0
