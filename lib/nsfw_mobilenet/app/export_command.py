"""`nsfw-mobilenet export`: TFLite variants of a trained model, each with labels and a model card measured on the
model's data (`export`, `card_evidence`)."""


from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nsfw_mobilenet.app.card_evidence import evidence_for
from nsfw_mobilenet.app.export import VARIANTS, export_variants, no_progress, pixel_scaling_for, representative_images
from nsfw_mobilenet.app.model_card import training_result
from nsfw_mobilenet.core import backbones, native_output
from nsfw_mobilenet.core.configs import FINAL_CONFIG_NAME, FINAL_TABLE
from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE
from nsfw_mobilenet.core.taxonomy import checked_unsafe_classes, default_unsafe_classes
from nsfw_mobilenet.evaluation.operating_point import (
    DEFAULT_PREVALENCES,
    DEFAULT_TARGET_FALSE_POSITIVE_RATE,
    DEFAULT_TARGET_RECALL,
    Targets,
)
from nsfw_mobilenet.evaluation.run_results import RunResult
from nsfw_mobilenet.io.model_files import check_keras_model_file
from nsfw_mobilenet.io.run_data import RunData, load_run_data


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="write TFLite variants with labels and model cards (listing 2.4)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path,
                        help="trained .keras model; the results JSON `train` wrote beside it (same name) gives its "
                             "backbone, class folders, config and weights")
    parser.add_argument("--backbone", choices=sorted(backbones.BACKBONES),
                        help="its backbone, for the preprocessing baked into the graph (default: the one in the "
                             "results JSON beside the model)")
    parser.add_argument("--out", required=True, type=Path, help="one sub-folder per variant is written here")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="which TFLite files to write (default: all; int8 needs --data)")
    parser.add_argument("--data", type=Path,
                        help="the training data root (train/ and test/): int8 calibration images, and the validation "
                             "split (listing 4.4) the temperature and operating point are chosen on")
    parser.add_argument("--classes", nargs="+", metavar="NAME",
                        help="class names in output order (default: the class folders the model was trained on, from "
                             "the results JSON beside it, else those of --data)")
    parser.add_argument("--unsafe-class", action="append", metavar="NAME",
                        help="a class the card, its figures and `scan` count as unsafe; repeat it for more (default: "
                             "the thesis's where the classes are normal/sexual or its five classes, else the last "
                             "class, as training counts it)")
    parser.add_argument("--target-false-positive-rate", type=float, default=DEFAULT_TARGET_FALSE_POSITIVE_RATE,
                        help="threshold: the lowest with at most this share of safe validation images decided "
                             "unsafe (default %(default)s)")
    parser.add_argument("--target-recall", type=float, default=DEFAULT_TARGET_RECALL,
                        help="review band: from the highest threshold keeping at least this share of unsafe "
                             "validation images out of 'safe' (default %(default)s)")
    parser.add_argument("--prevalence", type=float, action="append", metavar="P",
                        help="a share of unsafe images the app will see, at which the card gives the precision of "
                             "its unsafe decisions and the share sent to review (repeatable; default "
                             f"{' '.join(map(str, DEFAULT_PREVALENCES))})")
    parser.add_argument("--benign", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of harmless photos: the card reports the share flagged or sent to review "
                             "(repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=run)


def _results_name(model_path: Path | str) -> str:
    return Path(model_path).with_suffix(".json").name


def origin_fields(result: RunResult | None, model_path: Path | str, data: Path | None) -> dict[str, Any]:
    """What a card says about where the model comes from: the results JSON `train` wrote beside it (weights,
    config, training data, the Keras model's test accuracy), else only what the command was given."""
    if result is None:
        unknown = f"unknown (no {_results_name(model_path)} beside the model)"
        return {"weights": unknown, "config": unknown, "training_data": str(data) if data else "not given"}
    config = result.config
    name = FINAL_CONFIG_NAME if config.table == FINAL_TABLE else f"table_{config.table}/row_{config.row:02d}"
    settings = ", ".join(f"{key} {value}" for key, value in config.to_dict().items()
                         if key not in ("table", "row", "seed"))
    smoke = " (SMOKE run)" if result.smoke else ""
    return {"weights": result.weights_name, "config": f"{name}, seed {config.seed}: {settings}",
            "training_data": f"{result.data.get('dir', 'folder not recorded')}: class folders "
                             f"{result.data.get('classes')}, images {result.data.get('counts')}{smoke}",
            "keras_test_accuracy": result.test.accuracy if result.test else None}


def _backbone(given: str | None, result: RunResult | None, model_path: Path) -> str:
    """--backbone, else the one the results JSON beside the model names; they must agree."""
    trained = result.config.backbone if result else None
    if given and trained and given != trained:
        raise ValueError(f"--backbone {given}, but {result.path} says {model_path.name} was trained from {trained}: "
                         "drop --backbone")
    if not (given or trained):
        raise ValueError(f"{model_path}: its backbone is unknown (no {_results_name(model_path)} beside it): "
                         "pass --backbone")
    return given or trained


def _classes(given: Sequence[str] | None, result: RunResult | None, run_data: RunData | None,
             model_path: Path) -> list[str]:
    """--classes, else the class folders the model was trained on (results JSON), else those of --data: the
    user's names, never the thesis's unless the folders are named so."""
    classes = given or (result and result.data.get("classes")) or (run_data and run_data.classes)
    if not classes:
        raise ValueError(f"{model_path}: its class names are unknown (no {_results_name(model_path)} beside it and "
                         "no --data): pass --classes in output order")
    return list(classes)


def _step(message: str) -> None:
    print(f"nsfw-mobilenet export: {message}", file=sys.stderr, flush=True)


def _checked_targets(args: argparse.Namespace) -> Targets:
    """Usage errors found before anything is loaded."""
    if "int8" in args.variants and args.data is None:
        raise ValueError("int8 needs calibration images: pass --data with the training folder")
    if args.benign and args.data is None:
        raise ValueError("--benign is measured at the operating point chosen on --data: pass --data too")
    return Targets(args.target_false_positive_rate, args.target_recall, tuple(args.prevalence or DEFAULT_PREVALENCES))


def run(args: argparse.Namespace) -> int:
    say = no_progress if args.quiet else _step
    native_output.import_tensorflow_quietly()  # its native start-up lines are not this command's messages
    import keras

    try:
        targets = _checked_targets(args)
        check_keras_model_file(args.model)
        result = training_result(args.model)
        backbone = _backbone(args.backbone, result, args.model)
        say(f"loading {args.model}")
        model = keras.models.load_model(args.model, compile=False)
        size = tuple(model.input_shape[1:3])
        if args.data:
            say(f"reading {args.data} (validation and test splits, int8 calibration images)")
        run_data = load_run_data(args.data, progress=False, image_size=size) if args.data else None
        classes = _classes(args.classes, result, run_data, args.model)
        unsafe = checked_unsafe_classes(classes, args.unsafe_class or default_unsafe_classes(classes))
        representative = representative_images(args.data, image_size=size) if args.data else None
        if run_data:
            say("fitting the temperature on the validation split")
        evidence = evidence_for(model, backbone, run_data, args.benign, targets) if run_data else None
        card = {"backbone": backbone, "source_model": str(args.model), **origin_fields(result, args.model, args.data)}
        exported = export_variants(model, args.out, args.variants, classes=classes, unsafe_classes=unsafe,
                                   pixel_scaling=pixel_scaling_for(backbone), representative_images=representative,
                                   model_card=card, evidence=evidence, say=say)
    except (ValueError, OSError) as error:  # OperatingPointError is a ValueError
        print(f"nsfw-mobilenet export: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    for variant in exported.values():
        print(f"{variant.path} ({variant.path.stat().st_size / 1e6:.2f} MB)")
    return EXIT_OK
