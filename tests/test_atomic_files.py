"""Specifications of io.atomic_files: whole files or none, and one process at a time where several build the same."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from nsfw_mobilenet.io.atomic_files import exclusive_lock, write_atomically


def test_an_atomic_write_leaves_the_new_text_and_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    write_atomically(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_second_process_waits_for_the_lock_until_the_first_lets_go(tmp_path: Path) -> None:
    lock = tmp_path / ".standin.lock"
    waiter = ("import sys, time; from pathlib import Path; from nsfw_mobilenet.io.atomic_files import exclusive_lock\n"
              "with exclusive_lock(Path(sys.argv[1])): print(time.time())")
    with exclusive_lock(lock):
        child = subprocess.Popen([sys.executable, "-c", waiter, str(lock)], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        released = time.time()
    acquired = float(child.communicate(timeout=60)[0])
    assert acquired >= released
