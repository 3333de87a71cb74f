"""Fine-tuning a trained two-class model on a person's verdicts (the review loop of thesis §6.2: "the model could
be retrained with this new information"), with replay of its own training images so that it keeps what it learned.

The model keeps the layers its config trained (`trainable_layers`); Adam at a tenth of its default learning rate
runs a few epochs over the reviewed images and REPLAY_PER_REVIEW of the original training images per reviewed one,
drawn with the seed. The result is a new `.keras` with a results JSON beside it, as `train` writes them, so that
`export` and `scan` take it as they take any trained model; the JSON also records the feedback it learned from
and the test figures before and after.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nsfw_mobilenet.core.configs import KERAS_DEFAULT_LEARNING_RATES
from nsfw_mobilenet.core.paths import DEFAULT_CACHE_DIR
from nsfw_mobilenet.core.taxonomy import default_unsafe_classes
from nsfw_mobilenet.evaluation.evaluate import evaluate_predictions
from nsfw_mobilenet.evaluation.run_results import RunResult, load_result
from nsfw_mobilenet.io import input_pipeline
from nsfw_mobilenet.io.atomic_files import write_atomically
from nsfw_mobilenet.io.feedback import UNSAFE, Feedback
from nsfw_mobilenet.io.image_cache import load_images
from nsfw_mobilenet.io.image_files import LabeledImage
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.io.run_data import run_files
from nsfw_mobilenet.training import models
from nsfw_mobilenet.training.train import compile_for_training

REPLAY_PER_REVIEW = 4  # original training images mixed in per reviewed image
FINETUNE_EPOCHS = 5
FINETUNE_LEARNING_RATE = KERAS_DEFAULT_LEARNING_RATES["adam"] / 10  # small steps from a trained model
FINETUNE_BATCH_SIZE = 32
FEEDBACK_SUFFIX = "_feedback"  # <model>_feedback.keras beside the results JSON of the fine-tuned model


def feedback_items(items: Sequence[Feedback], classes: Sequence[str]) -> list[LabeledImage]:
    """The reviewed images labelled with the model's own class names: "unsafe" verdicts as its unsafe class
    (`default_unsafe_classes`), "safe" ones as the other. Two-class models only."""
    if len(classes) != 2:
        raise ValueError(f"feedback fine-tunes two-class models; this one has classes {list(classes)}")
    [unsafe] = default_unsafe_classes(classes)
    [safe] = [name for name in classes if name != unsafe]
    return [LabeledImage(Path(item.path), unsafe if item.verdict == UNSAFE else safe) for item in items]


def replay_items(data_dir: Path | str, count: int, seed: int, smoke: bool = False) -> list[LabeledImage]:
    """`count` images of the model's training split (listing 4.4's, not its validation part), as many of each
    class as it has (up to an even share), drawn with `seed`. Even shares keep the rare class in the mix: drawn
    at random, a 6 % class got 6 % of the replay, and the open-world model's recall at 0.5 fell from 0.82 to
    0.57 after 25 safe reviews."""
    training = run_files(data_dir, smoke=smoke)["training"]
    rng = np.random.default_rng(seed)
    by_class = {label: [item for item in training if item.label == label]
                for label in sorted({item.label for item in training})}
    shares = [count // len(by_class) + (i < count % len(by_class)) for i in range(len(by_class))]
    return [items[k] for items, share in zip(by_class.values(), shares)
            for k in sorted(rng.choice(len(items), min(share, len(items)), replace=False))]


def _test_figures(model: Any, data_dir: Path, classes: list[str], backbone: str, cache_dir: Path | None,
                  smoke: bool = False) -> dict[str, Any] | None:
    """The model's test figures on `data_dir`'s test/ folder (None without one): the recall the replay keeps."""
    files = run_files(data_dir, smoke=smoke)
    if "test" not in files:
        return None
    test = load_images(files["test"], classes, cache_dir=cache_dir, progress=False)
    evaluation = evaluate_predictions(predict(model, test.images, backbone), test.labels, classes).to_dict()
    return evaluation | {"labels": test.labels.tolist()}


def _agreement(model: Any, images: Any, labels: np.ndarray, backbone: str) -> float:
    """Share of the reviewed images the model now labels as the person did."""
    return float(np.mean(predict(model, images, backbone).argmax(axis=1) == labels)) if len(labels) else float("nan")


def finetune(model_file: Path | str, reviews: Sequence[Feedback], data_dir: Path | str, out_dir: Path | str, *,
             replay: int = REPLAY_PER_REVIEW, epochs: int = FINETUNE_EPOCHS,
             learning_rate: float = FINETUNE_LEARNING_RATE, seed: int = 1,
             cache_dir: Path | None = DEFAULT_CACHE_DIR, smoke: bool = False) -> RunResult:
    """Fine-tune the model `train` saved at `model_file` on `reviews` plus replay from `data_dir` (the data it was
    trained on); write `<out_dir>/<model>_feedback.keras` and its results JSON; return the result. `smoke` replays
    and tests on a few images per class."""
    import keras

    model_file, data_dir, out_dir = Path(model_file), Path(data_dir), Path(out_dir)
    stored = load_result(model_file.with_suffix(".json"))
    classes, config = list(stored.data["classes"]), stored.config
    if not reviews:
        raise ValueError("the feedback set is empty: review some scanned images first (nsfw-mobilenet review)")
    reviewed = load_images(feedback_items(reviews, classes), classes, progress=False)
    replayed = replay_items(data_dir, replay * len(reviews), seed, smoke)
    mixed = load_images(feedback_items(reviews, classes) + replayed, classes, progress=False)
    keras.utils.set_random_seed(seed)
    model = keras.saving.load_model(model_file)
    before = {"test": _test_figures(model, data_dir, classes, config.backbone, cache_dir, smoke),
              "reviewed_agreement": _agreement(model, reviewed.images, reviewed.labels, config.backbone)}
    models.freeze_all_but_last(model, config.backbone, config.trainable_layers)
    compile_for_training(model, config.with_overrides(optimizer="adam", learning_rate=learning_rate, momentum=0.0))
    started = time.perf_counter()
    history = model.fit(input_pipeline.make_dataset(mixed.images, mixed.labels, len(classes), config.backbone,
                                                    batch_size=FINETUNE_BATCH_SIZE, shuffle=True, seed=seed),
                        epochs=epochs, shuffle=False, verbose=0).history  # the dataset shuffles itself
    after_test = _test_figures(model, data_dir, classes, config.backbone, cache_dir, smoke)
    feedback_record = {"reviews": len(reviews), "unsafe_verdicts": sum(r.verdict == UNSAFE for r in reviews),
                       "replay_images": len(mixed.labels) - len(reviewed.labels), "epochs": epochs,
                       "learning_rate": learning_rate, "seed": seed, "from_model": str(model_file),
                       "before": before, "reviewed_agreement": _agreement(model, reviewed.images, reviewed.labels,
                                                                            config.backbone)}
    return _save(model, stored, history, after_test, feedback_record, time.perf_counter() - started,
                 out_dir / f"{model_file.stem}{FEEDBACK_SUFFIX}.keras")


def _save(model: Any, stored: RunResult, history: dict[str, list[float]], test: dict[str, Any],
          feedback_record: dict[str, Any], seconds: float, model_path: Path) -> RunResult:
    """The fine-tuned model and a results JSON beside it, shaped like `train`'s (its validation figures are the
    original run's: fine-tuning uses no validation split), with the feedback record."""
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    original = json.loads(stored.path.read_text())
    result = original | {"history": {key: [float(v) for v in values] for key, values in history.items()},
                         "test": test, "feedback": feedback_record, "time_min": seconds / 60,
                         "model_file": model_path.name,
                         "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    result_path = model_path.with_suffix(".json")
    write_atomically(result_path, json.dumps(result, indent=1))
    return RunResult.from_dict(result, result_path)
