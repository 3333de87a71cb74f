"""Kangas DataGrid of (mis)classified test images, and a local Kangas server to browse it (§5.2).

The grid has the columns of listing 5.1 — image, guess, one probability column per class, true
class, path — and by default holds only the errors, chosen with the safety-aware rule of
listing 4.8 (`Taxonomy.safety_error`, plain mismatch for the binary labels). The server helpers
bind both Kangas processes to 127.0.0.1 and stop them by their own process group, never by name
(`kangas.launch`/`kangas server` kill every process called "kangas" and listen on all interfaces);
the group also ends by itself when the Python process that started it dies, even by SIGKILL.
"""


from __future__ import annotations

import argparse
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
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.exit_codes import EXIT_USAGE
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


def _kangas() -> Any:
    """Import kangas without its version check, which posts telemetry to stats.comet.com.

    Kangas reads KANGAS_VERSION_CHECK only while it is imported, so it is set for the import alone
    (the server process gets it in its own environment, `serve_grid`).
    """
    before = os.environ.get(VERSION_CHECK_ENV)
    os.environ[VERSION_CHECK_ENV] = "0"
    try:
        import kangas
    finally:
        if before is None:
            del os.environ[VERSION_CHECK_ENV]
        else:
            os.environ[VERSION_CHECK_ENV] = before
    return kangas


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
                     taxonomy: Taxonomy, only_errors: bool = True, name: str = GRID_NAME) -> Any:
    """A `kangas.DataGrid` of the test images the model got wrong (or all, `only_errors=False`).

    `probabilities` is the model output (N × classes, in `taxonomy.classes` order), `true_labels`
    class names or indices. Images that cannot be read are left out with a warning naming them.
    """
    kangas = _kangas()
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(paths), taxonomy.num_classes) or len(true_labels) != len(paths):
        raise ValueError(f"expected {len(paths)} paths, labels and probability rows of {taxonomy.num_classes} "
                         f"{taxonomy.name} classes; got probabilities {probabilities.shape}, "
                         f"{len(true_labels)} labels")
    grid = kangas.DataGrid(name=name, columns=grid_columns(taxonomy))
    for i in selected_rows(probabilities, true_labels, taxonomy, only_errors):
        path = str(paths[i])
        try:
            image = kangas.Image(data=path)
        except Exception as error:  # kangas re-raises PIL's errors as plain exceptions
            warnings.warn(f"{path}: cannot be read as an image ({error}); left out of the grid", stacklevel=2)
            continue
        guess = taxonomy.classes[int(probabilities[i].argmax())]
        grid.append([image, guess, *(float(p) for p in probabilities[i]),
                     _label(true_labels[i], taxonomy), path])
    return grid


def save_grid(grid: Any, path: str | Path) -> Path:
    """Write the grid to a `.datagrid` file (an SQLite database Kangas opens); returns its path."""
    path = Path(path)
    if path.suffix != GRID_SUFFIX:
        raise ValueError(f"{path}: a Kangas grid file must end in {GRID_SUFFIX}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    grid.save(str(path))
    return path


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


def serve_grid(path: str | Path, host: str = LOCALHOST, port: int | None = DEFAULT_PORT,
               timeout: float = SERVER_START_TIMEOUT) -> KangasServer:
    """Start `kangas server` for the grid at `path`, listening on `host` only; wait until it answers.

    Runs `kangas.cli.server` in its own process group (so `stop()` ends exactly it), with the
    grid's folder as KANGAS_ROOT, no browser, the backend on port + 1 and the Next.js frontend
    bound to `host` via a node preload. The group ends within a second of this process dying,
    however it dies. `port=None` picks a free pair. Raises NotADataGrid before starting anything
    if `path` is not a grid. Use as a context manager, or call `.stop()`.
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
    env = {**os.environ, "KANGAS_ROOT": str(grid.parent), VERSION_CHECK_ENV: "0",
           "KANGAS_LISTEN_HOST": host,
           "NODE_OPTIONS": f"{os.environ.get('NODE_OPTIONS', '')} --require {preload}".strip()}
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


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", metavar="GRID", type=Path, help=f"a {GRID_SUFFIX} file written by save_grid")
    parser.add_argument("--host", default=LOCALHOST, help=f"address to listen on (default {LOCALHOST} only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"frontend port; the backend uses port + 1 (default {DEFAULT_PORT})")
    parser.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    """Serve the grid until Ctrl-C, then stop both Kangas processes."""
    try:
        server = serve_grid(args.grid, host=args.host, port=args.port)
    except (ValueError, OSError, RuntimeError) as error:  # NotADataGrid is a ValueError
        print(f"nsfw-mobilenet kangas: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the server too, not only Ctrl-C
    with server:
        print(f"Kangas grid {server.grid.name}: open {server.url}  (Ctrl-C stops the server)")
        try:
            server.process.wait()
        except KeyboardInterrupt:
            pass
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `nsfw-mobilenet kangas GRID`: browse a saved error grid on 127.0.0.1 (§5.2)."""
    _add_arguments(subparsers.add_parser("kangas", help="browse a saved Kangas error grid in the browser",
                                         description=__doc__.splitlines()[0]))


if __name__ == "__main__":  # python -m nsfw_mobilenet.app.kangas_grid GRID
    _parser = argparse.ArgumentParser(prog="python -m nsfw_mobilenet.app.kangas_grid", description=__doc__.splitlines()[0])
    _add_arguments(_parser)
    _arguments = _parser.parse_args()
    sys.exit(_arguments.func(_arguments))

