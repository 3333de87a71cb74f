"""Kangas DataGrid of (mis)classified test images, and a local Kangas server to browse it (§5.2).

The grid has the columns of listing 5.1 — image, guess, one probability column per class, true
class, path — and by default holds only the errors, chosen with the safety-aware rule of
listing 4.8 (`Taxonomy.safety_error`, plain mismatch for the binary labels). The server helpers
bind both Kangas processes to 127.0.0.1 and stop them by their own process group, never by name
(`kangas.launch`/`kangas server` kill every process called "kangas" and listen on all interfaces);
the group also ends by itself when the Python process that started it dies, even by SIGKILL.
"""


from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.taxonomy import Taxonomy

GRID_NAME = "Images"  # listing 5.1
IMAGE_COLUMN, GUESS_COLUMN, TRUE_COLUMN, PATH_COLUMN = "Image", "Guess", "True class", "Path"
LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 4000  # Kangas's own default; the backend takes port + 1
SERVER_START_TIMEOUT = 90.0  # seconds; the Next.js frontend starts in a few seconds on 2 cores
PARENT_CHECK_INTERVAL = 0.5  # seconds between the server watchdog's looks at its parent
GRID_SUFFIX = ".datagrid"
GRID_TABLES = {"datagrid", "metadata"}  # written by every `DataGrid.save`
VERSION_CHECK_ENV = "KANGAS_VERSION_CHECK"  # "0": kangas does not post its version check to stats.comet.com

# The grid writer's process: argv[1] is the JSON order file (`save_grid`).
GRID_WRITER_CODE = "import sys; from nsfw_mobilenet.app.kangas_grid import _write_grid; _write_grid(sys.argv[1])"
# The server process: argv[1] is the parent's pid, the rest `kangas server` arguments.
SERVER_PROCESS_CODE = ("import sys; from nsfw_mobilenet.app.kangas_grid import _serve_while_parent_lives; "
                       "_serve_while_parent_lives(int(sys.argv[1]), sys.argv[2:])")

# Next.js's standalone server.js calls `server.listen(port)` with no host, i.e. all interfaces.
# Preloaded into node, this makes every listen without an explicit host use KANGAS_LISTEN_HOST.
NODE_BIND_PRELOAD = """\
const net = require('net');
const host = process.env.KANGAS_LISTEN_HOST;
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (host && (typeof args[0] === 'number' || /^\\d+$/.test(String(args[0])))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, host);
  } else if (host && args[0] && typeof args[0] === 'object' && !args[0].path && !args[0].host) {
    args[0] = Object.assign({}, args[0], { host });
  }
  return listen.apply(this, args);
};
"""


class NotADataGrid(ValueError):
    """A file given to serve is not a Kangas DataGrid; the message names it and says what it is instead."""


@dataclass(frozen=True)
class ErrorGrid:
    """The rows of a listing-5.1 grid, before Kangas writes them (`save_grid`): per image its guess, one
    probability per class, its true class and its path (the image itself is read from the path)."""

    taxonomy: Taxonomy
    rows: list[list[Any]]
    name: str = GRID_NAME

    @property
    def columns(self) -> list[str]:
        return grid_columns(self.taxonomy)

    def to_dataframe(self) -> Any:
        """The rows as a table, without the image column."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns[1:])


def grid_columns(taxonomy: Taxonomy) -> list[str]:
    """Listing 5.1's columns, with the taxonomy's class names as the probability columns."""
    return [IMAGE_COLUMN, GUESS_COLUMN, *taxonomy.classes, TRUE_COLUMN, PATH_COLUMN]


def _label(value: str | int, taxonomy: Taxonomy) -> str:
    if isinstance(value, (int, np.integer)):
        return taxonomy.classes[int(value)]
    taxonomy.index(value)
    return value


def selected_rows(probabilities: np.ndarray, true_labels: Sequence[str | int], taxonomy: Taxonomy,
                  only_errors: bool = True) -> list[int]:
    """Indices of the images that go into the grid: safety errors (listing 4.8), or all of them."""
    guesses = np.asarray(probabilities).argmax(axis=1)
    return [i for i, (truth, guess) in enumerate(zip(true_labels, guesses))
            if not only_errors or taxonomy.safety_error(_label(truth, taxonomy), taxonomy.classes[guess])]


def build_error_grid(paths: Sequence[str | Path], probabilities: np.ndarray, true_labels: Sequence[str | int],
                     taxonomy: Taxonomy, only_errors: bool = True, name: str = GRID_NAME) -> ErrorGrid:
    """The grid of the test images the model got wrong (or all, `only_errors=False`).

    `probabilities` is the model output (N × classes, in `taxonomy.classes` order), `true_labels`
    class names or indices.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(paths), taxonomy.num_classes) or len(true_labels) != len(paths):
        raise ValueError(f"expected {len(paths)} paths, labels and probability rows of {taxonomy.num_classes} "
                         f"{taxonomy.name} classes; got probabilities {probabilities.shape}, "
                         f"{len(true_labels)} labels")
    rows = [[taxonomy.classes[int(probabilities[i].argmax())], *(float(p) for p in probabilities[i]),
             _label(true_labels[i], taxonomy), str(paths[i])]
            for i in selected_rows(probabilities, true_labels, taxonomy, only_errors)]
    return ErrorGrid(taxonomy, rows, name)


def save_grid(grid: ErrorGrid, path: str | Path, environment: Mapping[str, str]) -> Path:
    """Write the grid to a `.datagrid` file (an SQLite database Kangas opens); returns its path.

    Kangas writes it in a child process started from `environment` (the caller's: `Settings.environment`)
    with KANGAS_VERSION_CHECK=0, because importing kangas otherwise posts a version check to stats.comet.com;
    this process never imports it. Images that cannot be read are left out with a warning naming them.
    """
    path = Path(path)
    if path.suffix != GRID_SUFFIX:
        raise ValueError(f"{path}: a Kangas grid file must end in {GRID_SUFFIX}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kangas-grid-") as folder:
        order = Path(folder) / "grid.json"
        order.write_text(json.dumps({"name": grid.name, "columns": grid.columns, "rows": grid.rows,
                                     "path": str(path)}))
        written = subprocess.run([sys.executable, "-c", GRID_WRITER_CODE, str(order)], capture_output=True,
                                 text=True, env={**environment, VERSION_CHECK_ENV: "0"})
    if written.returncode != 0:
        raise RuntimeError(f"{path}: Kangas could not write the grid:\n{written.stderr[-2000:]}")
    for problem in json.loads(written.stdout.splitlines()[-1]):
        warnings.warn(f"{problem}; left out of the grid", stacklevel=2)
    return path


def _write_grid(order_file: str) -> None:
    """The grid writer's process: build the `kangas.DataGrid` of the order and save it; print, as a JSON list on
    the last line, the images left out because they cannot be read."""
    import kangas

    order = json.loads(Path(order_file).read_text())
    grid, left_out = kangas.DataGrid(name=order["name"], columns=order["columns"]), []
    for row in order["rows"]:
        try:
            image = kangas.Image(data=row[-1])
        except Exception as error:  # kangas re-raises PIL's errors as plain exceptions
            left_out.append(f"{row[-1]}: cannot be read as an image ({error})")
            continue
        grid.append([image, *row])
    target = Path(order["path"])
    if target.exists():
        target.unlink()
    with contextlib.redirect_stdout(sys.stderr):  # Kangas's "Saving datagrid…" progress is not the answer
        grid.save(str(target))
    print(json.dumps(left_out))


def _sqlite_problem(grid: Path) -> str | None:
    """Why `grid` is not an SQLite database with Kangas's tables, or None if it is one."""
    try:
        with closing(sqlite3.connect(f"{grid.as_uri()}?mode=ro", uri=True)) as database:
            tables = {name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:  # e.g. "file is not a database"
        return str(error)
    missing = sorted(GRID_TABLES - tables)
    return f"no {' or '.join(missing)} table" if missing else None


def check_datagrid(path: str | Path) -> Path:
    """The resolved path of a DataGrid file; checked before serving so a wrong file fails at once.

    Raises NotADataGrid for a missing file, a folder, a name not ending in .datagrid, an empty
    file, or a file that is not an SQLite database with Kangas's tables.
    """
    grid = Path(path).resolve()
    if not grid.exists():
        problem = "no such file"
    elif grid.is_dir():
        problem = "a folder"
    elif grid.suffix != GRID_SUFFIX:
        problem = f"name does not end in {GRID_SUFFIX}"
    elif grid.stat().st_size == 0:
        problem = "empty file"
    else:
        problem = _sqlite_problem(grid)
    if problem:
        raise NotADataGrid(f"{path}: not a Kangas DataGrid ({problem}); "
                           f"pass a {GRID_SUFFIX} file written by nsfw_mobilenet.app.kangas_grid.save_grid")
    return grid


def _port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def free_port_pair(host: str = LOCALHOST) -> int:
    """A port p such that p and p + 1 are free on `host` (Kangas's frontend and backend)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
        return port
    raise OSError(f"no two consecutive free ports on {host}")


@dataclass
class KangasServer:
    """A running Kangas frontend (Next.js) + backend (Flask) showing one grid; stop() ends both."""

    grid: Path
    host: str
    port: int
    process: subprocess.Popen
    log: Path
    _workdir: tempfile.TemporaryDirectory = field(repr=False)

    @property
    def url(self) -> str:
        """The page that opens the grid (what `kangas.show` would open)."""
        query = urllib.parse.urlencode({"datagrid": self.grid.name})
        return f"http://{self.host}:{self.port}/?{query}"

    def stop(self) -> None:
        """Terminate the server's process group (python backend and its node child)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self._workdir.cleanup()

    def __enter__(self) -> KangasServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end_group_when_orphaned(parent_pid: int) -> None:
    """Watchdog: SIGKILL this process group once `parent_pid` is no longer our parent (it died)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_INTERVAL)
    os.killpg(0, signal.SIGKILL)


def _serve_while_parent_lives(parent_pid: int, server_arguments: list[str]) -> None:
    """The server process of serve_grid: `kangas server` (Flask backend, node child) plus the watchdog.

    A parent killed with SIGKILL never calls stop(), so the group must notice by itself. Polling
    getppid() is used rather than prctl(PR_SET_PDEATHSIG), which is Linux-only and fires when the
    *thread* that started the server exits; killing the whole group takes the node grandchild
    along, which a death signal to this process alone would orphan.
    """
    threading.Thread(target=_end_group_when_orphaned, args=(parent_pid,), daemon=True).start()
    from kangas.cli.server import main  # no version check: serve_grid's environment for us says so

    main(server_arguments)


def serve_grid(path: str | Path, environment: Mapping[str, str], host: str = LOCALHOST,
               port: int | None = DEFAULT_PORT, timeout: float = SERVER_START_TIMEOUT) -> KangasServer:
    """Start `kangas server` for the grid at `path`, listening on `host` only; wait until it answers.

    Runs `kangas.cli.server` from `environment` (the caller's: `Settings.environment`) in its own process
    group (so `stop()` ends exactly it), with the grid's folder as KANGAS_ROOT, no browser, the backend on
    port + 1 and the Next.js frontend bound to `host` via a node preload. The group ends within a second of
    this process dying, however it dies. `port=None` picks a free pair. Raises NotADataGrid before starting
    anything if `path` is not a grid. Use as a context manager, or call `.stop()`.
    """
    grid = check_datagrid(path)
    port = free_port_pair(host) if port is None else port
    for taken in (port, port + 1):
        if _port_is_open(host, taken):
            raise OSError(f"port {taken} on {host} is in use; pass another port (or port=None)")
    workdir = tempfile.TemporaryDirectory(prefix="kangas-server-")
    preload = Path(workdir.name) / "bind_host.js"
    preload.write_text(NODE_BIND_PRELOAD)
    log = Path(workdir.name) / "server.log"
    env = {**environment, "KANGAS_ROOT": str(grid.parent), VERSION_CHECK_ENV: "0", "KANGAS_LISTEN_HOST": host,
           "NODE_OPTIONS": f"{environment.get('NODE_OPTIONS', '')} --require {preload}".strip()}
    command = [sys.executable, "-c", SERVER_PROCESS_CODE, str(os.getpid()), "--frontend-port", str(port),
               "--backend-port", str(port + 1), "--host", host, "--backend-host", host, "--open", "no"]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=grid.parent, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = KangasServer(grid=grid, host=host, port=port, process=process, log=log, _workdir=workdir)
    deadline = time.monotonic() + timeout
    while not (_port_is_open(host, port) and _port_is_open(host, port + 1)):
        if process.poll() is not None or time.monotonic() > deadline:
            message = log.read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"Kangas server for {grid} did not start on {host}:{port}:\n{message}")
        time.sleep(0.2)
    return server
