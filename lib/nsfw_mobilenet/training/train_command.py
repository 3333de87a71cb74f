"""`nsfw-mobilenet train`: the configs of a thesis table, the final model's, or a config file, on a dataset.

Prints thesis | this run for the thesis's tables; one results JSON (and a `.keras` model for `export`) per run.
"""


from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from nsfw_mobilenet.core import native_output
from nsfw_mobilenet.core.configs import FINAL_CONFIG_NAME, KERAS_DEFAULT_LEARNING_RATES, load_config, table_names
from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE
from nsfw_mobilenet.core.paths import DEFAULT_CACHE_DIR
from nsfw_mobilenet.core.settings import WEIGHTS_ENV
from nsfw_mobilenet.evaluation.run_results import RunResult
from nsfw_mobilenet.evaluation.thesis_comparison import compact_thesis_vs_run, thesis_vs_run
from nsfw_mobilenet.io import input_pipeline
from nsfw_mobilenet.io.weights import RANDOM, WeightsUnavailable
from nsfw_mobilenet.training import distribute, models
from nsfw_mobilenet.training.train import run_configs, run_table

IMAGENET_WEIGHTS = "imagenet"


def _run_line(result: RunResult) -> str:
    """One line per run of a config file: its accuracies and the model file `export` takes."""
    test = f"test accuracy {result.test.accuracy:.4f}" if result.test else "no test images"
    model = result.path.with_suffix(".keras") if result.path else "not saved"
    return (f"{result.config.name} seed {result.config.seed}: validation accuracy {result.final.val_accuracy:.4f}, "
            f"{test}; model {model}")


def _run_command(args: Any) -> int:
    if args.epochs is not None and args.epochs < 1:
        print(f"nsfw-mobilenet train: error: --epochs must be at least 1, got {args.epochs}", file=sys.stderr)
        return EXIT_USAGE
    native_output.import_tensorflow_quietly()  # its native start-up lines are not this command's messages
    overrides = {"epochs": args.epochs, "order": args.order, "optimizer": args.optimizer,
                 "learning_rate": args.learning_rate, "momentum": args.momentum, "head": args.head}
    try:
        # First, before TensorFlow runs anything: a multi-worker strategy cannot be made later.
        distribution = distribute.distribution(args.strategy, args.mixed_precision)
        options = dict(seeds=args.seed or args.seeds, smoke=args.smoke, weights_dir=args.settings.weights_dir,
                       cache_dir=Path(args.cache_dir), distribution=distribution, force=args.force,
                       random_weights=args.weights == RANDOM, **overrides)
        if args.config:
            results = run_configs([load_config(args.config)], args.data, args.out, label=args.config.name, **options)
        else:
            results = run_table(args.table, args.data, args.out, rows=args.row, **options)
    except (ValueError, OSError, WeightsUnavailable) as error:  # EmptyClassFolder is a ValueError
        print(f"nsfw-mobilenet train: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not distribution.is_chief:
        return EXIT_OK  # the chief writes the results and prints them
    if distribute.setup(distribution) != distribute.SINGLE_DEVICE:
        print(f"trained with the {args.strategy} strategy on {distribution.replicas} replicas, "
              f"{distribution.precision} (global batch split across them)")
    print(results[0].weights["note"])
    if args.config:
        print("\n".join(map(_run_line, results)))
        return EXIT_OK
    wide_table = Path(args.out) / f"table_{args.table}_thesis_vs_run.csv"
    thesis_vs_run(results).to_csv(wide_table, index=False)
    print(f"table {args.table}: thesis | this run")
    print(compact_thesis_vs_run(results).to_string(index=False))
    print(f"results: one JSON per row in {args.out}; every column, thesis | run: {wide_table}")
    return EXIT_OK


def add_command(subparsers: Any) -> None:
    tables = ", ".join(table_names())
    parser = subparsers.add_parser(
        "train", help="train the configs of a thesis table, the final model or a config file on a dataset",
        description=f"Train the configs of a thesis table, the final model's, or a config file, on a dataset. Tables: {tables} (configs in the package's configs/ folder, "
                    f"`final` is the final model: {FINAL_CONFIG_NAME}).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--table", choices=table_names(), metavar="TABLE",
                        help=f"a thesis table's rows (one of {tables})")
    source.add_argument("--config", type=Path, metavar="YAML",
                        help="one config file (the keys of a table row's config, e.g. a copy of "
                             f"{FINAL_CONFIG_NAME}.yaml with your changes)")
    parser.add_argument("--row", type=int, action="append", help="only these rows of --table (repeatable)")
    parser.add_argument("--data", required=True, help="ImageFolder root, with train/ and test/ folders")
    parser.add_argument("--out", required=True, help="folder for one results JSON per row")
    parser.add_argument("--epochs", type=int, help="override the configs' epochs")
    parser.add_argument("--order", choices=input_pipeline.ORDERS, help="augmentation order override")
    parser.add_argument("--optimizer", choices=tuple(KERAS_DEFAULT_LEARNING_RATES),
                        help="optimizer override (listing 4.3)")
    parser.add_argument("--learning-rate", type=float,
                        help="learning rate override (default: each optimizer's Keras default, SGD 0.01 and Adam "
                             "0.001, as §4.2.1 says the thesis used; 0.001 is the literal reading of its text)")
    parser.add_argument("--momentum", type=float, help="SGD momentum override (default 0, Keras's)")
    parser.add_argument("--head", choices=models.HEADS,
                        help="head override: thesis (listings 4.6-4.7), thesis_logits (V3: listing 4.7 on the "
                             "logits, before the ImageNet softmax) or standard (pooled features, Dropout, Dense)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, metavar="K", help="train every row with seeds 1..K, a results JSON each")
    seeds.add_argument("--seed", type=int, action="append", help="train every row with this seed (repeatable)")
    parser.add_argument("--smoke", action="store_true", help="a few images per class, for a quick check")
    parser.add_argument("--weights", choices=(IMAGENET_WEIGHTS, RANDOM), default=IMAGENET_WEIGHTS,
                        help=f"start from ImageNet weights (default; offline they come from {WEIGHTS_ENV}, and a "
                             "run without them stops at once) or from random ones, asked for")
    parser.add_argument("--force", action="store_true",
                        help="train again even where a finished result of the same config, data and weights "
                             "could be reused")
    parser.add_argument("--strategy", choices=distribute.STRATEGIES, default="default",
                        help="tf.distribute strategy: mirrored = every GPU of this host, multi-worker = every host "
                             "in TF_CONFIG; each batch (64) is split across the replicas (default %(default)s)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="float16 compute with float32 weights and softmax, for GPUs with float16 units")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR),
                        help="folder for the decoded images, 150 kB each at 224x224, read a batch at a time; "
                             "a re-run decodes nothing (default %(default)s)")
    parser.set_defaults(func=_run_command)

