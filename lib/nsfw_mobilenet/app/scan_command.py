"""`nsfw-mobilenet scan`: options, checks made before anything is opened, exit codes."""


from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nsfw_mobilenet.app.scan import (
    SCAN_MODEL_THREADS,
    Detector,
    ModelError,
    default_decode_threads,
    exit_code,
    scan_inputs,
)
from nsfw_mobilenet.app.scan_listing import ERROR, SKIPPED, Shard, find_inputs
from nsfw_mobilenet.app.scan_output import PATH_ESCAPING, OutputError, RowOutput, RowWriter
from nsfw_mobilenet.core.backbones import BACKBONES
from nsfw_mobilenet.core.exit_codes import EXIT_INTERRUPTED, EXIT_OUTPUT_FAILED, EXIT_USAGE
from nsfw_mobilenet.evaluation.operating_point import DECISIONS, DEFAULT_OPERATING_POINT
from nsfw_mobilenet.io import image_files
from nsfw_mobilenet.io.video import DEFAULT_MAX_FRAMES, VIDEO_EXTENSIONS


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan", help="classify images, folders and videos as safe / review / unsafe",
        description="Classify images, folders and videos as safe / review / unsafe, one CSV or JSON-lines row each.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="images, folders (recursive) or videos")
    parser.add_argument("--model", required=True, type=Path, help=".tflite (from `export`) or .keras model")
    parser.add_argument("--backbone", choices=sorted(BACKBONES),
                        help="preprocessing of a .keras model (default: its model card's, else the one in the results "
                             "JSON beside it)")
    parser.add_argument("--classes", nargs="+", metavar="NAME",
                        help="class names in output order (default: labels.txt next to the model; for a .keras "
                             "model the class folders in the results JSON beside it)")
    parser.add_argument("--unsafe-class", action="append", metavar="NAME",
                        help="a class whose probability counts as unsafe; repeat it for more (default: the model "
                             "card's, else the thesis's for its class names, else the last class)")
    parser.add_argument("--threshold", type=float,
                        help="unsafe when the unsafe probability is at least this (default: the model card's, "
                             f"else {DEFAULT_OPERATING_POINT.threshold})")
    parser.add_argument("--review-band", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="unsafe probabilities in [LOW, HIGH) go to human review, §6.2 (default: the model "
                             f"card's, else {list(DEFAULT_OPERATING_POINT.review_band)}; equal values disable it)")
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv",
                        help="CSV (one p_<class> column per class) or JSON lines (default %(default)s)")
    parser.add_argument("--output", type=Path,
                        help="write rows to this file (folders created, locked while written, left out of the scan) "
                             f"instead of stdout; paths are {PATH_ESCAPING}")
    parser.add_argument("--fps", type=float, default=1.0, help="video frames sampled per second (default 1)")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                        help="at most this many sampled frames per video or animation, which bounds its time; the "
                             "row's note says when it was reached (default %(default)s)")
    parser.add_argument("--unsafe-frames", type=int, default=1,
                        help="a video is judged by its k-th most unsafe frame (default 1)")
    parser.add_argument("--threads", type=int, default=SCAN_MODEL_THREADS,
                        help="LiteRT threads (default %(default)s: the decoding threads use the other cores)")
    parser.add_argument("--decode-threads", type=int, default=default_decode_threads(),
                        help="threads decoding files ahead of the model (default: one per CPU, here %(default)s)")
    parser.add_argument("--shard", metavar="I/N",
                        help="scan only part I of N (0 <= I < N) of the inputs, chosen by a stable hash of each "
                             "file's path relative to the folder given: the N parts together are the whole scan")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary line on stderr")
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    """Usage errors, found before the model is loaded, so that the message names the real culprit."""
    if args.fps <= 0 or args.unsafe_frames < 1 or (args.max_frames is not None and args.max_frames < 1):
        raise ValueError("--fps must be positive, --unsafe-frames and --max-frames at least 1")
    for option, threads in (("--threads", args.threads), ("--decode-threads", args.decode_threads)):
        if threads < 1:
            raise ValueError(f"{option} must be at least 1, got {threads}")
    if args.output is not None:
        _check_output(args.output, args.paths)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return os.path.abspath(first) == os.path.abspath(second)


def _check_output(output: Path, paths: Sequence[Path]) -> None:
    """Refuse an --output that would destroy an input before it is read; found before anything is opened."""
    if os.path.isdir(output):
        raise ValueError(f"--output {output} is a folder; give the name of the file to write")
    media = output.suffix.lower() in (*image_files.IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS) and output.exists()
    for given in paths:
        inside = os.path.isdir(given) and os.path.realpath(output).startswith(os.path.realpath(given) + os.sep)
        if _same_file(output, given) or (media and inside):
            raise ValueError(f"--output {output} is one of the inputs ({given}): writing the rows there would "
                             "destroy it before it is read; write them to another file")


def summary_line(rows: Sequence[dict[str, Any]], seconds: float) -> str:
    """The line that ends a scan: how many inputs got each decision (skipped ones when any), and the time taken."""
    counts = [f"{sum(row['decision'] == decision for row in rows)} {decision}" for decision in (*DECISIONS, ERROR)]
    skipped = sum(row["decision"] == SKIPPED for row in rows)
    return (f"nsfw-mobilenet scan: {len(rows)} inputs: {', '.join(counts)}{f', {skipped} skipped' if skipped else ''} "
            f"in {seconds:.1f} s")


def _error(message: Any, code: int) -> int:
    print(f"nsfw-mobilenet scan: error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        _check_options(args)
        shard = Shard.parse(args.shard) if args.shard is not None else None
        detector = Detector(args.model, classes=args.classes, backbone=args.backbone,
                            threshold=args.threshold, review_band=args.review_band and tuple(args.review_band),
                            num_threads=args.threads, unsafe_classes=args.unsafe_class)
        output = RowOutput(args.output)
    except (ModelError, ValueError, OSError) as error:
        return _error(error, EXIT_USAGE)
    inputs, judged, finished = list(find_inputs(args.paths, shard, exclude=args.output)), [], 0
    scanned = scan_inputs(detector, inputs, fps=args.fps, max_frames=args.max_frames, unsafe_frames=args.unsafe_frames,
                          progress=not args.quiet, decode_threads=args.decode_threads)
    try:
        writer = RowWriter(output, args.format, detector.classes)
        with contextlib.closing(scanned):  # the decoding threads stop at once, also on Ctrl-C
            for rows in scanned:
                for row in rows:
                    writer.write(row)
                judged += [row for row in rows if row["kind"] != "frame"]
                finished += 1
    except KeyboardInterrupt:  # every finished input's rows are written whole; say where it stopped
        print(f"nsfw-mobilenet scan: interrupted after {finished} of {len(inputs)} inputs", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OutputError as error:
        return _error(error, EXIT_OUTPUT_FAILED)
    finally:
        output.close()
    if not args.quiet:
        print(summary_line(judged, time.monotonic() - started), file=sys.stderr)
    return exit_code(judged)

