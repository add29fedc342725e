"""The CDNOW purchase log (a real online retailer, 1997-98) as a Likely events CSV.

The log ships inside the PyPI package `lifetimes` (lifetimes/datasets/CDNOW_master.txt:
customer id, date YYYYMMDD, number of CDs, dollar value). We never install that package
(it breaks on our pandas); we read the file out of its wheel:

    pip download --no-deps lifetimes==0.11.3 -d .venv/datasets   # `make test` does this
    python -m tests.cdnow .venv/datasets out.csv

Each line becomes `user_id,event,timestamp,value` = `c<id>,purchase,YYYY-MM-DD,<dollars>`:
purchases only, day precision, no sessions, no profiles.
"""

from __future__ import annotations

import csv
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

MEMBER = "lifetimes/datasets/CDNOW_master.txt"
# Where `make test` downloads it (inside the git-ignored virtualenv), or by hand.
WHEEL_FOLDERS = (Path(__file__).resolve().parent.parent / ".venv" / "datasets", Path("/tmp/lt"))


def find_wheel(folders: tuple[Path, ...] = WHEEL_FOLDERS) -> Path | None:
    """The downloaded lifetimes wheel, when one is present."""
    for folder in folders:
        for wheel in sorted(folder.glob("[Ll]ifetimes-*.whl")):
            return wheel
    return None


def events_rows(master_lines: Iterator[str]) -> Iterator[tuple[str, str, str, str]]:
    """CDNOW master lines -> (user_id, event, timestamp, value)."""
    for line in master_lines:
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            continue  # the header
        customer, day, _cds, dollars = parts
        yield f"c{int(customer):05d}", "purchase", f"{day[:4]}-{day[4:6]}-{day[6:]}", dollars


def write_events_csv(wheel: Path, out: Path) -> int:
    """Write the log as an events CSV; returns the number of events."""
    with zipfile.ZipFile(wheel) as archive:
        lines = archive.read(MEMBER).decode("ascii").splitlines()
    count = 0
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "event", "timestamp", "value"))
        for row in events_rows(iter(lines)):
            writer.writerow(row)
            count += 1
    return count


if __name__ == "__main__":
    folder, target = Path(sys.argv[1]), Path(sys.argv[2])
    wheel = find_wheel((folder,))
    if wheel is None:
        sys.exit(f"no lifetimes wheel in {folder}: pip download --no-deps lifetimes==0.11.3 -d {folder}")
    print(f"wrote {write_events_csv(wheel, target):,} events to {target}")
