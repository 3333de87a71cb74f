"""What every benchmark result records about the machine it ran on, and whether it may be quoted.

This machine is shared: other jobs on its 2 cores move absolute times and even ratios. Each
result stores the 1-minute load average before its run (and after it, for information: the
benchmark's own work raises it); only runs that start below QUIET_LOAD are quoted in the README
(`quotable`).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

QUIET_LOAD = 0.5  # 1-minute load average; above it a run is reported but never quoted
RESULTS = Path(__file__).resolve().parent / "results"


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded to 2 decimals."""
    return [round(load, 2) for load in os.getloadavg()]


def warn_if_loaded(load: list[float], when: str) -> None:
    """A one-line warning on stderr when the 1-minute load is above QUIET_LOAD."""
    if load[0] > QUIET_LOAD:
        print(f"warning: 1-minute load average {load[0]} {when} the run is above {QUIET_LOAD}: "
              "timings are noisy and must not be quoted", file=sys.stderr)


def start_record() -> dict[str, Any]:
    """Date, machine and load before a run (warns when loaded); pass it to `finish_record` afterwards."""
    load = load_average()
    warn_if_loaded(load, "before")
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load_average_before": load}


def finish_record(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with the load after the run (the benchmark's own work included) and `quotable`."""
    return {**record, "load_average_after": load_average(),
            "quotable": record["load_average_before"][0] <= QUIET_LOAD}


def quiet_banner(record: dict[str, Any]) -> list[str]:
    """Markdown lines saying a loaded run must not be quoted (empty for a quiet run)."""
    if record["quotable"]:
        return []
    return [f"**Loaded machine (1-minute load {record['load_average_before'][0]} before the run; quiet is "
            f"≤ {QUIET_LOAD}): do not quote these figures.**", ""]


def write_results(name: str, report: dict[str, Any], markdown: str, folder: Path = RESULTS) -> None:
    """`folder`/`name`.json and .md (the benchmark's result files), and the markdown on stdout."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (folder / f"{name}.md").write_text(markdown)
    print(markdown)
