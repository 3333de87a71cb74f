"""Peak memory of `nsfw-mobilenet train` as the dataset grows, and what the decode cache costs in disk and time.

Issue 11: decoded images used to live in one in-RAM array, so peak RSS grew by 150 kB per image;
they now live in a cache folder and are read a batch at a time. For each size this script
- makes a stand-in (`make-standin --images-per-class N`, binary layout used) under runs/training_memory/,
- decodes it into a fresh cache folder in a child process (decode+cache images/s, cache bytes per image),
- runs one epoch of `nsfw-mobilenet train` (a cheap thesis row) in a child process on that cache
  and reads the child's peak RSS from `os.wait4` (ru_maxrss),
then projects the disk and decode time of a 200,000-image dataset from the measured numbers.

    python benchmarks/training_memory.py [--sizes 1000 6000] [--table 4.9 --row 4 --epochs 1]
Writes benchmarks/results/training_memory.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import machine  # noqa: E402  (benchmarks/machine.py, beside this script)

from nsfw_mobilenet.io.run_data import load_run_data

WORK = Path("runs") / "training_memory"  # git-ignored
PROJECTED_IMAGES = 200_000
GOAL_MB = 300  # issue 11: the large stand-in peaks less than this above the small one


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def run_child(command: list[str], log_file: Path) -> dict:
    """Run `command` to the end; its wall time, exit code and peak RSS (its own `ru_maxrss`, from `wait4`)."""
    started = time.perf_counter()
    with open(log_file, "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    exit_code = os.waitstatus_to_exitcode(status)
    if exit_code:
        raise RuntimeError(f"{' '.join(command)} exited with {exit_code}; see {log_file}")
    return {"wall_s": round(time.perf_counter() - started, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def make_standin(images_per_class: int) -> Path:
    """The stand-in's binary ImageFolder (train/ and test/), made once per size."""
    root = WORK / f"standin_{images_per_class}"
    if not (root / "standin.json").exists():
        command = _python("-m", "nsfw_mobilenet", "make-standin", str(root), "--images-per-class",
                          str(images_per_class), "--no-videos", "--quiet")
        run_child(command, WORK / f"make_standin_{images_per_class}.log")
    return root / "binary"


def decode_child(data_dir: str, cache_dir: str) -> None:
    """Child mode: decode a run's subsets into `cache_dir`, print images and seconds as JSON."""

    started = time.perf_counter()
    run_data = load_run_data(data_dir, cache_dir=Path(cache_dir), progress=False)
    seconds = time.perf_counter() - started
    images = sum(run_data.counts().values()) + len(run_data.bad_files())
    print(json.dumps({"images": images, "seconds": seconds}))


def measure(images_per_class: int, args: argparse.Namespace) -> dict:
    """Decode into a fresh cache, then one `train` epoch on it; both in child processes."""
    data_dir = make_standin(images_per_class)
    cache_dir, out_dir = WORK / f"cache_{images_per_class}", WORK / f"out_{images_per_class}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    decode_log = WORK / f"decode_{images_per_class}.log"
    decode = run_child(_python(__file__, "--decode-child", str(data_dir), str(cache_dir)), decode_log)
    decoded = json.loads(decode_log.read_text().strip().splitlines()[-1])
    cache_bytes = sum(path.stat().st_size for path in cache_dir.iterdir())
    files_before = sorted(path.name for path in cache_dir.iterdir())
    train = run_child(_python("-m", "nsfw_mobilenet", "train", "--table", args.table, "--row", str(args.row),
                              "--epochs", str(args.epochs), "--data", str(data_dir), "--out", str(out_dir),
                              "--cache-dir", str(cache_dir)), WORK / f"train_{images_per_class}.log")
    result = json.loads(next(out_dir.glob("*.json")).read_text())
    return {"images_per_class": images_per_class, "counts": result["data"]["counts"],
            "train_peak_rss_mb": train["peak_rss_mb"], "train_wall_s": train["wall_s"],
            "train_decoded_nothing": sorted(path.name for path in cache_dir.iterdir()) == files_before,
            "decode_peak_rss_mb": decode["peak_rss_mb"], "decoded_images": decoded["images"],
            "decode_seconds": round(decoded["seconds"], 1),
            "decode_images_per_second": round(decoded["images"] / decoded["seconds"], 1),
            "cache_bytes": cache_bytes, "cache_bytes_per_image": round(cache_bytes / decoded["images"])}


def projection(rows: list[dict]) -> dict:
    """Disk and decode time of a PROJECTED_IMAGES dataset, from the largest run's measured rates."""
    largest = max(rows, key=lambda row: row["decoded_images"])
    return {"images": PROJECTED_IMAGES, "from_images_per_class": largest["images_per_class"],
            "cache_gb": round(largest["cache_bytes_per_image"] * PROJECTED_IMAGES / 1e9, 1),
            "decode_minutes": round(PROJECTED_IMAGES / largest["decode_images_per_second"] / 60, 1)}


def markdown(record: dict) -> str:
    rows, projected = record["rows"], record["projection"]
    lines = [*machine.quiet_banner(record),
             f"One epoch of `nsfw-mobilenet train --table {record['table']} --row {record['row']} "
             f"--epochs {record['epochs']}` on stand-ins (binary), decoded images read from the cache folder; "
             f"peak RSS of the child process (ru_maxrss). Load average before: {record['load_average_before']}.", "",
             "| images per class | train / validation / test images | train peak RSS MB | train wall s "
             "| decode peak RSS MB | decode+cache images/s | cache bytes per image |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['images_per_class']} | {r['counts']['training']} / {r['counts']['validation']} / "
              f"{r['counts'].get('test', 0)} | {r['train_peak_rss_mb']} | {r['train_wall_s']} | "
              f"{r['decode_peak_rss_mb']} | {r['decode_images_per_second']} | {r['cache_bytes_per_image']:,} |"
              for r in rows]
    growth = record["peak_rss_growth_mb"]
    lines += ["", f"Peak RSS growth, largest vs smallest stand-in: **{growth} MB** (goal < {GOAL_MB} MB: "
                  f"{'met' if growth < GOAL_MB else 'missed'}).",
              f"A {projected['images']:,}-image dataset needs about **{projected['cache_gb']} GB** of cache and "
              f"**{projected['decode_minutes']} min** to decode once on this machine (rates of the "
              f"{projected['from_images_per_class']}-per-class run); later runs decode nothing."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 6000], help="images per class")
    parser.add_argument("--table", default="4.9")
    parser.add_argument("--row", type=int, default=4, help="4.9 row 4: V3-Small, frozen front computed once")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--decode-child", nargs=2, metavar=("DATA", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode_child:
        decode_child(*args.decode_child)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:  # made before the record starts: the stand-in generator is not measured
        make_standin(size)
    record = machine.start_record()
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args))
        print(json.dumps(rows[-1]), flush=True)
    record = machine.finish_record({
        **record, "table": args.table, "row": args.row, "epochs": args.epochs, "rows": rows,
        "peak_rss_growth_mb": rows[-1]["train_peak_rss_mb"] - rows[0]["train_peak_rss_mb"],
        "goal_mb": GOAL_MB, "projection": projection(rows)})
    machine.write_results("training_memory", record, markdown(record))


if __name__ == "__main__":
    main()
