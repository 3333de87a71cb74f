"""Specifications for the Kangas misclassification grid of §5.2 (listing 5.1) and its local server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nsfw_mobilenet import cli
from nsfw_mobilenet.app import kangas_grid
from nsfw_mobilenet.core.exit_codes import EXIT_USAGE
from nsfw_mobilenet.core.taxonomy import BINARY, FIVE_CLASS, taxonomy_or_proxy


def write_images(root: Path, labels: list[str]) -> list[Path]:
    """Tiny flat-colour PNGs in class folders, like a test split."""
    paths = []
    for i, label in enumerate(labels):
        path = root / label / f"image_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 30 * i, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def binary_split(tmp_path: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    labels = ["normal", "normal", "sexual", "sexual"]
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
    return write_images(tmp_path, labels), probabilities, labels


def saved_rows(path: Path) -> list[list]:
    """The rows Kangas reads back from a saved grid, in a child process (no version check, as save_grid)."""
    code = ("import json, sys, kangas\ngrid = kangas.DataGrid(sys.argv[1])\n"
            "print(json.dumps([[str(value) for value in grid[i]] for i in range(grid.nrows)]))")
    environment = {**os.environ, kangas_grid.VERSION_CHECK_ENV: "0"}
    read = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=environment)
    assert read.returncode == 0, read.stderr
    return json.loads(read.stdout.splitlines()[-1])


def test_grid_has_listing_5_1_columns_with_one_probability_column_per_class():
    assert kangas_grid.grid_columns(FIVE_CLASS) == [
        "Image", "Guess", "drawings", "hentai", "neutral", "porn", "sexy", "True class", "Path"]


def test_binary_grid_holds_only_the_mismatches(binary_split):
    paths, probabilities, labels = binary_split
    grid = kangas_grid.build_error_grid(paths, probabilities, labels, BINARY)
    assert grid.columns == ["Image", "Guess", "normal", "sexual", "True class", "Path"]
    assert grid.rows == [
        ["sexual", 0.2, 0.8, "normal", str(paths[1])],
        ["normal", 0.7, 0.3, "sexual", str(paths[2])],
    ]


def test_all_images_are_kept_when_only_errors_is_false(binary_split):
    paths, probabilities, labels = binary_split
    grid = kangas_grid.build_error_grid(paths, probabilities, labels, BINARY, only_errors=False)
    assert [row[-1] for row in grid.rows] == [str(p) for p in paths]


def test_true_labels_may_be_class_indices(binary_split):
    paths, probabilities, _ = binary_split
    grid = kangas_grid.build_error_grid(paths, probabilities, [0, 0, 1, 1], BINARY)
    assert [row[-2] for row in grid.rows] == ["normal", "sexual"]


def test_proxy_class_folders_name_the_columns_and_every_mismatch_is_an_error(tmp_path):
    paths = write_images(tmp_path, ["roses", "roses", "tulips"])
    proxy = taxonomy_or_proxy(["roses", "tulips"])
    grid = kangas_grid.build_error_grid(paths, np.array([[0.6, 0.4], [0.4, 0.6], [0.6, 0.4]]), [0, 0, 1], proxy)
    assert grid.columns == ["Image", "Guess", "roses", "tulips", "True class", "Path"]
    assert [row[0] for row in grid.rows] == ["tulips", "roses"]
    assert proxy.unsafe_classes == {"tulips"} and taxonomy_or_proxy(["sexual", "normal"]) is BINARY


def test_five_class_errors_follow_the_safety_rule_of_listing_4_8():
    truths = ["drawings", "neutral", "hentai", "sexy", "neutral"]
    guesses = ["neutral", "drawings", "porn", "porn", "sexy"]
    probabilities = np.eye(5)[[FIVE_CLASS.index(g) for g in guesses]]
    # drawings↔neutral and hentai↔porn are harmless confusions; sexy must be predicted sexy.
    assert kangas_grid.selected_rows(probabilities, truths, FIVE_CLASS) == [3, 4]


def test_unreadable_image_is_left_out_of_the_saved_grid_with_a_warning_naming_it(tmp_path, binary_split, environment):
    paths, probabilities, labels = binary_split
    broken = tmp_path / "normal" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths[1] = broken
    grid = kangas_grid.build_error_grid(paths, probabilities, labels, BINARY)
    with pytest.warns(UserWarning, match="broken.jpg: cannot be read as an image"):
        saved = kangas_grid.save_grid(grid, tmp_path / "errors.datagrid", environment)
    assert [row[-1] for row in saved_rows(saved)] == [str(paths[2])]


def test_mismatched_lengths_are_reported(binary_split):
    paths, probabilities, labels = binary_split
    with pytest.raises(ValueError, match="expected 4 paths"):
        kangas_grid.build_error_grid(paths, probabilities[:3], labels, BINARY)


def test_kangas_is_imported_only_by_a_child_process_told_to_post_no_version_check(tmp_path, binary_split, environment,
                                                                                  monkeypatch):
    """Kangas posts its version to stats.comet.com when imported, unless KANGAS_VERSION_CHECK is 0 then."""
    started = []
    run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda command, **options: started.append(options["env"]) or run(
        command, **options))
    kangas_grid.save_grid(kangas_grid.build_error_grid(*binary_split, BINARY), tmp_path / "e.datagrid", environment)
    assert [env[kangas_grid.VERSION_CHECK_ENV] for env in started] == ["0"]
    assert started[0]["PATH"] == environment["PATH"]  # the caller's environment, plus the switch
    code = ("import os, sys, numpy\nfrom nsfw_mobilenet.app import kangas_grid\nfrom nsfw_mobilenet.core import taxonomy\n"
            "grid = kangas_grid.build_error_grid([], numpy.zeros((0, 2)), [], taxonomy.BINARY)\n"
            "kangas_grid.save_grid(grid, sys.argv[1], dict(os.environ))\nprint('kangas' in sys.modules)\n")
    caller = subprocess.run([sys.executable, "-c", code, str(tmp_path / "empty.datagrid")], capture_output=True,
                            text=True, env=environment)
    assert caller.stdout.split() == ["False"], caller.stderr


def test_saved_grid_reopens_with_the_same_rows(tmp_path, binary_split, environment):
    paths, probabilities, labels = binary_split
    grid = kangas_grid.build_error_grid(paths, probabilities, labels, BINARY)
    saved = kangas_grid.save_grid(grid, tmp_path / "grids" / "errors.datagrid", environment)
    reopened = saved_rows(saved)
    assert len(reopened) == 2 and reopened[0][1:] == ["sexual", "0.2", "0.8", "normal", str(paths[1])]


def test_grid_file_must_end_in_datagrid(tmp_path, binary_split, environment):
    with pytest.raises(ValueError, match="must end in .datagrid"):
        kangas_grid.save_grid(kangas_grid.build_error_grid(*binary_split, BINARY), tmp_path / "errors.db", environment)


def not_a_datagrid(kind: str, folder: Path) -> Path:
    """A path the kangas command must refuse, made to be what `kind` says."""
    path = folder / ("errors.db" if kind == "grid_named_db" else f"{kind}.datagrid")
    if kind == "folder":
        path.mkdir()
    elif kind == "text_file_renamed":
        path.write_text("Image,Guess,True class\n")
    elif kind == "zero_bytes":
        path.touch()
    elif kind in ("sqlite_without_grid_tables", "grid_named_db"):
        tables = ["notes"] if kind == "sqlite_without_grid_tables" else sorted(kangas_grid.GRID_TABLES)
        with closing(sqlite3.connect(path)) as database:
            for table in tables:
                database.execute(f"CREATE TABLE {table} (value)")
    return path


NOT_DATAGRIDS = ["missing", "folder", "text_file_renamed", "zero_bytes", "sqlite_without_grid_tables",
                 "grid_named_db"]


@pytest.mark.parametrize("kind", NOT_DATAGRIDS)
def test_serving_a_file_that_is_not_a_datagrid_raises_naming_the_file(kind, tmp_path, environment):
    bad = not_a_datagrid(kind, tmp_path)
    with pytest.raises(kangas_grid.NotADataGrid, match=re.escape(f"{bad}: not a Kangas DataGrid")):
        kangas_grid.serve_grid(bad, environment)


def non_loopback_address() -> str | None:
    """This machine's address on a real interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET address: no packet is sent for UDP connect
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_server_serves_the_grid_on_localhost_only_and_stops(tmp_path, binary_split, environment):
    paths, probabilities, labels = binary_split
    saved = kangas_grid.save_grid(kangas_grid.build_error_grid(paths, probabilities, labels, BINARY),
                                  tmp_path / "errors.datagrid", environment)
    with kangas_grid.serve_grid(saved, environment, port=None) as server:
        assert server.url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(server.url, timeout=30).read().decode()
        assert str(paths[1]) in page and str(paths[0]) not in page
        outside = non_loopback_address()
        if outside:
            for port in (server.port, server.port + 1):
                with socket.socket() as probe:
                    probe.settimeout(1)
                    assert probe.connect_ex((outside, port)) != 0
    assert server.process.poll() is not None


def test_command_serves_on_127_0_0_1_by_default():
    assert cli.build_parser().parse_args(["kangas", "serve", "errors.datagrid"]).host == "127.0.0.1"


@pytest.mark.parametrize("kind", NOT_DATAGRIDS)
def test_command_refuses_a_file_that_is_not_a_datagrid_in_one_line_with_exit_2_before_serving(
        kind, tmp_path, capsys, monkeypatch):
    def start_nothing(*args, **kwargs):
        raise AssertionError(f"nothing may be started for a bad grid: {args}")

    monkeypatch.setattr(subprocess, "Popen", start_nothing)
    bad = not_a_datagrid(kind, tmp_path)
    assert cli.main(["kangas", "serve", str(bad)]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith(f"nsfw-mobilenet kangas serve: error: {bad}: not a Kangas DataGrid (")
    assert error.count("\n") == 1 and "Traceback" not in error


def process_table() -> dict[int, tuple[int, str]]:
    """Every process's pid → (parent pid, state letter), read from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]  # after "(command name)"
        except OSError:  # the process ended while being read
            continue
        table[int(stat.parent.name)] = (int(parent), state)
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier}
        found |= frontier
    return found


def running(pids: set[int]) -> set[int]:
    """The pids still running; a zombie (dead, not yet reaped by a container's PID 1) is not."""
    table = process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the server processes in Linux /proc")
def test_kangas_servers_and_their_children_end_within_seconds_when_the_command_is_sigkilled(tmp_path, binary_split,
                                                                                           environment):
    grid = kangas_grid.save_grid(kangas_grid.build_error_grid(*binary_split, BINARY), tmp_path / "errors.datagrid",
                                 environment)
    port, errors = kangas_grid.free_port_pair(), tmp_path / "stderr.txt"
    with open(errors, "wb") as stderr:
        command = subprocess.Popen([sys.executable, "-m", "nsfw_mobilenet", "kangas", "serve", str(grid),
                                    "--port", str(port)], stdout=subprocess.DEVNULL, stderr=stderr)
    servers: set[int] = set()
    try:
        started = wait_until(lambda: command.poll() is not None or (answers(port) and answers(port + 1)),
                             kangas_grid.SERVER_START_TIMEOUT)
        assert started and command.poll() is None, errors.read_text()
        servers = descendants(command.pid)
        assert len(servers) >= 2  # the Flask backend and its Next.js node child

        command.kill()
        command.wait()
        assert wait_until(lambda: not running(servers) and not answers(port) and not answers(port + 1), timeout=5)
    finally:
        command.kill()
        for pid in running(servers):
            os.kill(pid, signal.SIGKILL)
