"""`nsfw-mobilenet kangas build | serve`: a DataGrid of a model's errors on a test folder, and a local Kangas
server to browse it (§5.2, listing 5.1)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nsfw_mobilenet.app import kangas_grid
from nsfw_mobilenet.app.scan import Detector, ModelError
from nsfw_mobilenet.core.configs import BATCH_SIZE
from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE
from nsfw_mobilenet.core.taxonomy import taxonomy_or_proxy
from nsfw_mobilenet.io import image_files

PROGRAM = "nsfw-mobilenet kangas"


def test_images(data_dir: Path, classes: list[str]) -> list[image_files.LabeledImage]:
    """The images of `data_dir`'s test/ folder (or of `data_dir` itself, a folder of class folders), in class
    folders named as the model's classes; a folder the model does not know is an error naming it."""
    folder = data_dir / "test" if (data_dir / "test").is_dir() else data_dir
    if image_files.has_split_folders(folder):
        raise ValueError(f"{data_dir}: no test/ folder; the grid shows a model's errors on images it was not "
                         "trained on")
    images = [item for item in image_files.list_images(folder)
              if item.path.suffix.lower() in image_files.IMAGE_EXTENSIONS]
    unknown = sorted({item.label for item in images} - set(classes))
    if unknown:
        raise ValueError(f"{folder}: class folders {unknown} are not among the model's classes {classes}")
    if not images:
        raise ValueError(f"{folder}: no images in class folders")
    return images


def model_probabilities(detector: Detector, images: list[image_files.LabeledImage],
                        warn: Callable[[str], None]) -> tuple[list[image_files.LabeledImage], np.ndarray]:
    """The model's class probabilities for every image it can read (batches of 64); the others are reported
    through `warn` and left out."""
    readable, rows = [], []
    for start in tqdm(range(0, len(images), BATCH_SIZE), desc="classify", unit="batch", file=sys.stderr):
        batch, pixels = [], []
        for item in images[start:start + BATCH_SIZE]:
            try:
                pixels.append(detector.read(item.path).pixels)
                batch.append(item)
            except image_files.CorruptImage as error:
                warn(f"{item.path}: {error} (left out)")
        if batch:
            rows += [[v.probabilities[c] for c in detector.classes] for v in detector.verdicts(np.stack(pixels))]
            readable += batch
    return readable, np.asarray(rows, dtype=np.float64).reshape(len(readable), len(detector.classes))


def _build(args: argparse.Namespace) -> int:
    """Classify the test images, keep the errors (listing 4.8's rule) and write the grid."""
    try:
        detector = Detector(args.model, backbone=args.backbone)
        images = test_images(args.data, detector.classes)
    except (ModelError, ValueError, OSError) as error:
        print(f"{PROGRAM} build: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    readable, probabilities = model_probabilities(detector, images, lambda line: tqdm.write(line, file=sys.stderr))
    grid = kangas_grid.build_error_grid([i.path for i in readable], probabilities, [i.label for i in readable],
                                        taxonomy_or_proxy(detector.classes), only_errors=not args.all)
    out = args.out or args.model.with_name(f"{args.data.resolve().name}_errors{kangas_grid.GRID_SUFFIX}")
    saved = kangas_grid.save_grid(grid, out, args.settings.environment)
    kept = "all" if args.all else "the errors, listing 4.8"
    print(f"wrote {saved}: {len(grid.rows)} of {len(readable)} test images ({kept}); browse it with: "
          f"{PROGRAM} serve {saved}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    """Serve the grid until Ctrl-C (or `kill`), then stop both Kangas processes."""
    try:
        server = kangas_grid.serve_grid(args.grid, args.settings.environment, host=args.host, port=args.port)
    except (ValueError, OSError, RuntimeError) as error:  # NotADataGrid is a ValueError
        print(f"{PROGRAM} serve: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with server:
        print(f"Kangas grid {server.grid.name}: open {server.url}  (Ctrl-C stops the server)")
        try:
            server.process.wait()
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _add_build(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("build", help="write a DataGrid of a model's errors on a test folder",
                                    description=_build.__doc__)
    parser.add_argument("--model", required=True, type=Path,
                        help="a .keras (from train) or .tflite (from export) model file")
    parser.add_argument("--data", required=True, type=Path,
                        help="a dataset with a test/ folder of class folders (or a folder of class folders)")
    parser.add_argument("--out", type=Path,
                        help=f"the grid file to write (default: <data name>_errors{kangas_grid.GRID_SUFFIX} "
                             "beside the model)")
    parser.add_argument("--backbone", help="the backbone of a .keras model without a results JSON or card beside it")
    parser.add_argument("--all", action="store_true", help="every test image, not only the errors")
    parser.set_defaults(func=_build)


def _add_serve(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("serve", help="browse a grid in the browser, on 127.0.0.1 only",
                                    description=kangas_grid.serve_grid.__doc__.splitlines()[0])
    parser.add_argument("grid", metavar="GRID", type=Path, help=f"a {kangas_grid.GRID_SUFFIX} file from kangas build")
    parser.add_argument("--host", default=kangas_grid.LOCALHOST,
                        help=f"address to listen on (default {kangas_grid.LOCALHOST} only)")
    parser.add_argument("--port", type=int, default=kangas_grid.DEFAULT_PORT,
                        help=f"frontend port; the backend uses port + 1 (default {kangas_grid.DEFAULT_PORT})")
    parser.set_defaults(func=_serve)


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `nsfw-mobilenet kangas build` and `kangas serve` (§5.2)."""
    parser = subparsers.add_parser("kangas", help="a Kangas grid of a model's errors: build it, browse it",
                                   description=__doc__.replace("\n", " "))
    subcommands = parser.add_subparsers(dest="kangas_command", required=True, metavar="{build,serve}")
    _add_build(subcommands)
    _add_serve(subcommands)
