"""`nsfw-mobilenet finetune`: update a trained model from the review loop's feedback set (thesis §6.2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nsfw_mobilenet.core import native_output
from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE
from nsfw_mobilenet.core.paths import DEFAULT_CACHE_DIR
from nsfw_mobilenet.evaluation.run_results import BadResultFile, RunResult
from nsfw_mobilenet.io.feedback import BadReview, load_feedback
from nsfw_mobilenet.training import feedback

PROGRAM = "nsfw-mobilenet finetune"


def summary(result: RunResult) -> str:
    """Agreement with the reviewers and test accuracy and recall, before → after."""
    record, test = result.feedback, result.test
    before = record["before"]
    lines = [f"{record['reviews']} reviewed images ({record['unsafe_verdicts']} unsafe) + {record['replay_images']} "
             f"replayed training images, {record['epochs']} epochs",
             f"agreement with the reviewers: {before['reviewed_agreement']:.4f} -> {record['reviewed_agreement']:.4f}"]
    if test is not None and before["test"] is not None:
        lines.append(f"test accuracy {before['test']['accuracy']:.4f} -> {test.accuracy:.4f}, recall "
                     f"{before['test']['recall']:.4f} -> {test.metrics.get('recall', float('nan')):.4f}")
    return "\n".join(lines + [f"model: {result.path.with_suffix('.keras')} (next: nsfw-mobilenet export --model "
                              f"{result.path.with_suffix('.keras')} --out <folder> --data <data>)"])


def _run_command(args: argparse.Namespace) -> int:
    try:
        reviews = load_feedback(args.feedback)
        native_output.import_tensorflow_quietly()
        result = feedback.finetune(args.model, reviews, args.data, args.out or args.model.parent,
                                   replay=args.replay, epochs=args.epochs, seed=args.seed,
                                   cache_dir=Path(args.cache_dir))
    except (BadReview, BadResultFile, ValueError, OSError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(summary(result))
    return EXIT_OK


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `nsfw-mobilenet finetune --model M --feedback F --data D`."""
    parser = subparsers.add_parser("finetune", help="update a trained model from reviewed images (§6.2)",
                                   description=feedback.__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True,
                        help="a .keras model written by train, with its results JSON beside it")
    parser.add_argument("--feedback", type=Path, required=True, help="the feedback set written by review")
    parser.add_argument("--data", type=Path, required=True,
                        help="the dataset the model was trained on: replayed images come from its training split, "
                             "the before/after test figures from its test/ folder")
    parser.add_argument("--out", type=Path, help="folder for <model>_feedback.keras and its JSON (default: the model's)")
    parser.add_argument("--replay", type=int, default=feedback.REPLAY_PER_REVIEW,
                        help="original training images mixed in per reviewed image (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=feedback.FINETUNE_EPOCHS, help="default %(default)s")
    parser.add_argument("--seed", type=int, default=1, help="draws the replayed images and the batches")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR),
                        help="folder of decoded images, shared with train (default %(default)s)")
    parser.set_defaults(func=_run_command)
