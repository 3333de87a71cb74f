"""Scan throughput: `nsfw-mobilenet scan` against NudeNet on the same folders, wall time, in one run.

Folders, generated once under runs/scan_throughput/ (git-ignored: never commit them) from
../shared/datasets/flower_photos:
- `phone`: PHONE_PHOTOS JPEGs of 3024×2268 (a 12-megapixel phone photo), upscaled (bicubic), quality 90;
- `small`: SMALL_PHOTOS flower photos shrunk to at most 256 px a side, quality 90.

Model: V3-Small int8 with float multiplications, the app file of notebook 07
(artifacts/07_tflite/float_mul/int8) when it is there; else the same export of V3-Small with the offline
ImageNet weights and an untrained head (speed does not depend on the weights' values), written once
under runs/scan_throughput/model/.

Every command is timed as a whole (start-up included): in each of `--repeats` rounds, in this order,
ours and NudeNet on the phone folder, then ours and NudeNet on the small folder, then ours on one small
photo (our start-up). NudeNet (AGPL: never a dependency of this package) runs from its own virtual
environment, one `NudeDetector().detect(path)` per file, as its README shows:

    python3 -m venv /work/nudenet-venv && /work/nudenet-venv/bin/pip install nudenet==3.4.2
    python benchmarks/scan_throughput.py --nudenet-python /work/nudenet-venv/bin/python

Writes benchmarks/results/scan_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import machine  # noqa: E402  (benchmarks/machine.py, next to this script)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from nsfw_mobilenet.core import native_output
from nsfw_mobilenet.core.settings import settings_from_environment  # noqa: E402
from nsfw_mobilenet.io import image_files
from nsfw_mobilenet.training import models

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "scan_throughput"
FLOWER_PHOTOS = ROOT.parent / "shared" / "datasets" / "flower_photos"
APP_MODEL = ROOT / "artifacts" / "07_tflite" / "float_mul" / "int8" / "model.tflite"  # notebook 07's app file
WEIGHTS_DIR = settings_from_environment(os.environ).weights_dir  # the script is an edge: NSFW_MOBILENET_WEIGHTS_DIR
PHONE_SIZE = (3024, 2268)  # a 12-megapixel phone photo, landscape
PHONE_PHOTOS = 300
SMALL_PHOTOS = 1000
SMALL_SIDE = 256
JPEG_QUALITY = 90
CALIBRATION_IMAGES = 64
INTERPRETER_SETTINGS = [(threads, batch) for threads in (1, 2) for batch in (1, 8, 32)]
GOALS = {"phone_speedup_vs_nudenet": 8.0, "small_images_per_second": 400.0}  # issue 11
NUDENET_RUNNER = """
import importlib.metadata, pathlib, sys
from nudenet import NudeDetector
detector = NudeDetector()
for path in sorted(p for p in pathlib.Path(sys.argv[1]).rglob("*") if p.is_file()):
    detector.detect(str(path))
print(importlib.metadata.version("nudenet"))
"""


# ---------------------------------------------------------------- inputs


def _sources(count: int) -> list[Path]:
    photos = sorted(FLOWER_PHOTOS.rglob("*.jpg"))
    if not photos:
        sys.exit(f"no photos under {FLOWER_PHOTOS}: the benchmark makes its folders from ../shared/datasets")
    return [photos[i % len(photos)] for i in np.linspace(0, len(photos), count, endpoint=False).astype(int)]


def _folder(name: str, count: int, make: Any) -> Path:
    """runs/scan_throughput/<name>, made (once) by `make(source photo) -> Image` for `count` sources."""
    folder = WORK / name
    if len(list(folder.glob("*.jpg"))) != count:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.jpg"):
            old.unlink()
        for index, source in enumerate(_sources(count)):
            with Image.open(source) as photo:
                make(photo.convert("RGB")).save(folder / f"{index:04d}_{source.stem}.jpg", quality=JPEG_QUALITY)
    return folder


def phone_folder(count: int = PHONE_PHOTOS) -> Path:
    return _folder("phone", count, lambda photo: photo.resize(PHONE_SIZE, Image.Resampling.BICUBIC))


def small_folder(count: int = SMALL_PHOTOS) -> Path:
    def shrunk(photo: Image.Image) -> Image.Image:
        photo.thumbnail((SMALL_SIDE, SMALL_SIDE), Image.Resampling.BICUBIC)
        return photo

    return _folder("small", count, shrunk)


def model_file() -> tuple[Path, str]:
    """The V3-Small int8 (float MULs) file to scan with, and where it came from."""
    if APP_MODEL.is_file():
        return APP_MODEL, "notebook 07's int8 file with float multiplications (its training data: its model_card.json)"
    exported = WORK / "model" / "int8" / "model.tflite"
    source = "V3-Small, offline ImageNet weights, untrained standard head (exported by this script)"
    if not exported.is_file():
        from nsfw_mobilenet.app import export

        native_output.import_tensorflow_quietly()
        model = models.build_classifier("mobilenet_v3_small", 2, head="standard", weights_dir=WEIGHTS_DIR)
        calibration = np.stack([image_files.decode_image(path) for path in _sources(CALIBRATION_IMAGES)])
        export.export_tflite(model, exported.parent.parent, "int8", classes=["normal", "sexual"],
                             pixel_scaling=export.pixel_scaling_for("mobilenet_v3_small"),
                             representative_images=calibration, float_ops=export.INT8_FLOAT_MULTIPLICATIONS,
                             model_card={"backbone": "mobilenet_v3_small", "weights": source})
    return exported, source


# ---------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timed:
    """One command: wall seconds, CPU seconds of the process and its threads, and its stdout."""

    wall_s: float
    cpu_s: float
    stdout: str


def _timed(command: list[str], accepted: tuple[int, ...] = (0,)) -> Timed:
    """Run `command`; exits naming it when it fails."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in accepted:
        sys.exit(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Timed(wall, cpu, completed.stdout)


def ours(folder: Path, model: Path) -> Timed:
    command = [sys.executable, "-m", "nsfw_mobilenet", "scan", "--quiet", str(folder), "--model", str(model),
               "--output", str(WORK / "rows.csv")]
    return _timed(command, accepted=(0, 1))  # 1: something flagged or in review, still a whole scan


def nudenet_installed(python: str | None) -> bool:
    return bool(python) and subprocess.run([python, "-c", "import nudenet"], capture_output=True).returncode == 0


def nudenet(folder: Path, python: str) -> Timed:
    return _timed([python, "-c", NUDENET_RUNNER, str(folder)])


def interpreter_costs(model: Path, rounds: int = 5, images: int = 64) -> list[dict[str, Any]]:
    """LiteRT alone on random pixels at each (threads, batch), interleaved rounds: wall and CPU ms per image, and
    the largest probability difference from batch 1 at 1 thread.

    In a scan the decoding threads keep every core busy, so batching or a second thread would have to lower
    the CPU per image to help; their wall time alone says how they do on an idle machine.
    """
    from ai_edge_litert.interpreter import Interpreter

    pixels = np.random.default_rng(0).integers(0, 256, (images, 224, 224, 3), dtype=np.uint8)
    interpreters = {}
    for threads, batch in INTERPRETER_SETTINGS:
        with native_output.native_stderr_discarded():
            interpreter = Interpreter(model_path=str(model), num_threads=threads)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [batch, *pixels.shape[1:]])
        interpreter.allocate_tensors()
        interpreters[threads, batch] = (interpreter, index, interpreter.get_output_details()[0]["index"])
    costs: dict[tuple[int, int], list[tuple[float, float]]] = {setting: [] for setting in interpreters}
    outputs: dict[tuple[int, int], np.ndarray] = {}
    for _ in range(rounds):
        for setting, (interpreter, index, output) in interpreters.items():
            batch, probabilities = setting[1], []
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, images, batch):
                interpreter.set_tensor(index, pixels[start:start + batch])
                interpreter.invoke()
                probabilities.append(interpreter.get_tensor(output))
            costs[setting].append(((time.perf_counter() - wall) * 1000 / images,
                                   (time.process_time() - cpu) * 1000 / images))
            outputs[setting] = np.concatenate(probabilities)
    reference = outputs[INTERPRETER_SETTINGS[0]]
    return [{"threads": threads, "batch": batch, "wall_ms_per_image": statistics.median(w for w, _ in runs),
             "cpu_ms_per_image": statistics.median(c for _, c in runs),
             "max_difference_from_batch_1": float(np.abs(outputs[threads, batch] - reference).max())}
            for (threads, batch), runs in costs.items()]


def _summary(runs: list[Timed], images: int) -> dict[str, Any]:
    wall = statistics.median(run.wall_s for run in runs)
    return {"wall_s": [run.wall_s for run in runs], "cpu_s": [run.cpu_s for run in runs], "median_wall_s": wall,
            "images_per_second": images / wall, "cores_used": statistics.median(run.cpu_s / run.wall_s for run in runs)}


def _folder_result(folder: Path, our_runs: list[Timed], their_runs: list[Timed], startup_s: float) -> dict[str, Any]:
    photos = sorted(folder.glob("*.jpg"))
    result = {"images": len(photos), "megabytes_per_image": sum(p.stat().st_size for p in photos) / len(photos) / 1e6,
              "ours": _summary(our_runs, len(photos))}
    result["ours"]["steady_images_per_second"] = len(photos) / (result["ours"]["median_wall_s"] - startup_s)
    if their_runs:
        result["nudenet"] = _summary(their_runs, len(photos))
        result["speedup_vs_nudenet"] = result["nudenet"]["median_wall_s"] / result["ours"]["median_wall_s"]
        result["speedup_per_round"] = [theirs.wall_s / mine.wall_s for mine, theirs in zip(our_runs, their_runs)]
    return result


def measure(folders: dict[str, Path], model: Path, nudenet_python: str | None, repeats: int) -> dict[str, Any]:
    """Interleaved rounds: per folder ours then NudeNet, then our start-up (a one-photo scan)."""
    one_photo = WORK / "one_photo"
    one_photo.mkdir(exist_ok=True)
    (one_photo / "photo.jpg").write_bytes(next(folders["small"].glob("*.jpg")).read_bytes())
    runs: dict[str, list[Timed]] = {f"{who} {name}": [] for name in folders for who in ("ours", "nudenet")}
    runs["ours start-up"], version = [], None
    for round_index in range(repeats):
        for name, folder in folders.items():
            runs[f"ours {name}"].append(ours(folder, model))
            if nudenet_python:
                runs[f"nudenet {name}"].append(nudenet(folder, nudenet_python))
                version = runs[f"nudenet {name}"][-1].stdout.split()[-1]
        runs["ours start-up"].append(ours(one_photo, model))
        print(f"round {round_index + 1}/{repeats}: "
              + ", ".join(f"{key} {timed[-1].wall_s:.2f} s" for key, timed in runs.items() if timed), file=sys.stderr)
    startup = statistics.median(run.wall_s for run in runs["ours start-up"])
    return {"ours_startup_s": startup, "nudenet_version": version,
            "folders": {name: _folder_result(folder, runs[f"ours {name}"], runs[f"nudenet {name}"], startup)
                        for name, folder in folders.items()}}


# ---------------------------------------------------------------- report


def goals(result: dict[str, Any]) -> dict[str, Any]:
    """Issue 11's goals against the end-to-end figures (start-up included)."""
    measured = {"phone_speedup_vs_nudenet": result["folders"]["phone"].get("speedup_vs_nudenet"),
                "small_images_per_second": result["folders"]["small"]["ours"]["images_per_second"]}
    return {name: {"goal": goal, "measured": measured[name], "met": None if measured[name] is None else
                   measured[name] >= goal} for name, goal in GOALS.items()}


def _folder_line(name: str, row: dict[str, Any]) -> str:
    mine = row["ours"]
    theirs = (f"{row['nudenet']['median_wall_s']:.2f} | {row['nudenet']['images_per_second']:.0f} | "
              f"{row['nudenet']['cores_used']:.1f} | {row['speedup_vs_nudenet']:.1f}×" if "nudenet" in row else
              "not installed | – | – | –")
    return (f"| {name} | {row['images']} | {row['megabytes_per_image']:.2f} | {mine['median_wall_s']:.2f} | "
            f"{mine['images_per_second']:.0f} ({mine['steady_images_per_second']:.0f}) | {mine['cores_used']:.1f} | "
            f"{theirs} |")


def _goal_text(name: str, goal: dict[str, Any]) -> str:
    measured = ("not measured (NudeNet not installed)" if goal["measured"] is None else
                f"{goal['measured']:.1f} ({'met' if goal['met'] else 'NOT met'})")
    return f"{name.replace('_', ' ')} ≥ {goal['goal']:g}: {measured}"


def markdown(report: dict[str, Any]) -> str:
    result, record = report["result"], report["machine"]
    nudenet_name = f"NudeNet {result['nudenet_version']}" if result["nudenet_version"] else "NudeNet"
    lines = [*machine.quiet_banner(record),
             f"`nsfw-mobilenet scan` with {report['model']['source']} (`{report['model']['path']}`) against "
             f"{nudenet_name} on the same folders: wall time of the whole command, start-up included, median of "
             f"{report['repeats']} interleaved rounds; steady = images / (wall - our start-up, "
             f"{result['ours_startup_s']:.2f} s for a one-photo scan); cores = CPU time / wall time. "
             f"{record['machine']}, 1-minute load {record['load_average_before'][0]} before the run, "
             f"{record['load_average_after'][0]} after.", "",
             "| folder | images | MB/image | ours s | ours images/s (steady) | ours cores | NudeNet s "
             "| NudeNet images/s | NudeNet cores | speed-up |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_folder_line(name, row) for name, row in result["folders"].items()]
    lines += ["", "LiteRT alone on the same file (random pixels, median of interleaved rounds): a scan decodes on "
              "every core, so only a lower CPU cost per image would make batching or a second thread pay.", "",
              "| LiteRT threads | batch | wall ms/image | CPU ms/image | largest probability difference from batch 1 |",
              "|---|---|---|---|---|"]
    lines += [f"| {row['threads']} | {row['batch']} | {row['wall_ms_per_image']:.2f} | {row['cpu_ms_per_image']:.2f} "
              f"| {row['max_difference_from_batch_1']:.2g} |" for row in report["interpreter"]]
    lines += ["", "Goals (issue 11, end to end): " + "; ".join(_goal_text(*item) for item in report["goals"].items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nudenet-python", help="python of a virtual environment with nudenet installed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, help="a .tflite to scan with (default: see the module docstring)")
    args = parser.parse_args()
    folders = {"phone": phone_folder(), "small": small_folder()}
    model, source = (args.model.resolve(), "given with --model") if args.model else model_file()
    nudenet_python = args.nudenet_python if nudenet_installed(args.nudenet_python) else None
    record = machine.start_record()  # after the folders and the model are made: the load of the runs alone
    result = measure(folders, model, nudenet_python, args.repeats)
    interpreter = interpreter_costs(model)
    shown = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    report = {"machine": machine.finish_record(record), "model": {"path": str(shown), "source": source},
              "repeats": args.repeats, "nudenet": "installed" if nudenet_python else "not installed",
              "result": result, "interpreter": interpreter, "goals": goals(result)}
    machine.write_results("scan_throughput", report, markdown(report))


if __name__ == "__main__":
    main()
