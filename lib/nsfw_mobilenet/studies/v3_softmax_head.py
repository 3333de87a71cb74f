"""Why SGD barely moves the V3 thesis head (listing 4.7: a Dense on the 1000-way ImageNet softmax).

The new Dense of the V1/V2 heads reads pooled features with a squared norm in the tens; the V3 head
reads a probability vector, whose squared norm is at most 1 and, for photos that ImageNet spreads
over several classes, far below it. A plain SGD step moves a Dense layer's outputs by about
`learning_rate × ‖input‖²` per unit of error, so at the thesis's lr 1e-3 the V3 head needs orders of
magnitude more steps than a head on features; Adam rescales each step by the gradient's own size and
does not care. The layers under the softmax (N = 10 unfreezes `conv_2` and `logits`) get gradients
through the softmax's Jacobian `diag(p) − ppᵀ`, which is small wherever `p` is saturated.
"""


from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nsfw_mobilenet.core.configs import (
    BATCH_SIZE,
    KERAS_DEFAULT_LEARNING_RATES,
    LITERAL_LEARNING_RATE,
    ExperimentConfig,
    thesis_reference,
)
from nsfw_mobilenet.evaluation.run_results import RunResult, seed_count, seed_groups
from nsfw_mobilenet.evaluation.uncertainty import seed_interval
from nsfw_mobilenet.io import input_pipeline
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.studies.architecture_tables import decode_imagenet
from nsfw_mobilenet.training import models

STEP_CHECKPOINTS = (80, 400, 1000, 2000)  # besides the thesis's own count, for the steps table
# §4.2.1's two readings for SGD: the printed 0.001, and Keras SGD's default 0.01
LEARNING_RATE_READINGS = (LITERAL_LEARNING_RATE, KERAS_DEFAULT_LEARNING_RATES["sgd"])


def thesis_optimizer_steps(epochs: int = ExperimentConfig.epochs, batch_size: int = BATCH_SIZE) -> int:
    """Optimizer steps of one thesis run: its 2-class training images in batches of 64, 10 epochs (§4.2)."""
    images = thesis_reference()["dataset_2_classes"]["train_images"]
    return math.ceil(images / batch_size) * epochs


def epochs_for_steps(steps: int, training_images: int, batch_size: int = BATCH_SIZE) -> int:
    """Epochs over `training_images` that make at least `steps` optimizer steps."""
    return math.ceil(steps / math.ceil(training_images / batch_size))


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row; ln 1000 ≈ 6.9 is a uniform ImageNet softmax."""
    p = np.clip(probabilities, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def imagenet_classes_by_class(softmax: np.ndarray, labels: np.ndarray, classes: Sequence[str], top: int = 3,
                              weights_dir: Path | None = None) -> Any:
    """The ImageNet classes each proxy class lands in (top-1 of the frozen network), most frequent first."""
    import pandas as pd

    names = [decoded[0][1] for decoded in decode_imagenet(softmax, top=1, weights_dir=weights_dir)]
    rows = []
    for index, name in enumerate(classes):
        counts = pd.Series([n for n, label in zip(names, labels) if label == index]).value_counts()
        for rank, (imagenet_class, count) in enumerate(counts.head(top).items(), start=1):
            rows.append({"class": name, "rank": rank, "ImageNet top-1": imagenet_class,
                         "share of the class": count / counts.sum()})
    return pd.DataFrame(rows)


def saturation_table(softmax: np.ndarray, features: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Any:
    """Per class: how peaked the ImageNet softmax is, and the squared norm of what each head's Dense reads."""
    import pandas as pd

    rows = []
    for index, name in enumerate(classes):
        p, f = softmax[labels == index], features[labels == index]
        rows.append({"class": name, "images": len(p), "mean top-1 probability": p.max(axis=1).mean(),
                     "mean entropy (nats, uniform = 6.91)": entropy(p).mean(),
                     "‖softmax‖² (thesis head input)": (p ** 2).sum(axis=1).mean(),
                     "‖pooled features‖² (standard head input)": (f ** 2).sum(axis=1).mean()})
    return pd.DataFrame(rows).set_index("class")


def gradient_norms(model: Any, images: np.ndarray, labels: np.ndarray, backbone: str,
                   layer_names: Sequence[str]) -> dict[str, float]:
    """‖∂loss/∂kernel‖ of the named layers on one batch (categorical cross-entropy, training=False)."""
    import keras
    import tensorflow as tf

    inputs = input_pipeline.preprocess_for(backbone)(images.astype(np.float32))
    targets = np.eye(int(model.output.shape[-1]), dtype=np.float32)[labels]
    kernels = [model.get_layer(name).kernel for name in layer_names]
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(targets, model(inputs, training=False))
        loss = tf.reduce_mean(loss)
    gradients = tape.gradient(loss, kernels)
    return {name: float(tf.norm(g)) for name, g in zip(layer_names, gradients)}


def head_gradient_table(backbone: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
                        learning_rates: Sequence[float] = LEARNING_RATE_READINGS,
                        weights: str | None = ExperimentConfig.weights, seed: int = ExperimentConfig.seed,
                        weights_dir: Path | None = None) -> Any:
    """Each head of `backbone` at initialisation, on one seeded training batch (64 images, §4.1): the new
    Dense's input norm, its gradient, and the change of its outputs one SGD step makes at each learning rate
    (`learning_rate × ‖input‖²` per unit of error)."""
    import keras
    import pandas as pd

    batch = np.random.RandomState(seed).permutation(len(labels))[:BATCH_SIZE]
    images, labels = images[batch], labels[batch]
    rows = []
    for head in models.heads_for(backbone):
        keras.utils.set_random_seed(ExperimentConfig.seed)  # initialised as a training run is
        model = models.build_classifier(backbone, num_classes, head, weights, weights_dir)
        dense_input = keras.Model(model.input, model.get_layer(models.CLASSIFIER_NAME).input)
        x = predict(dense_input, images, backbone)
        squared = (x ** 2).sum(axis=1).mean()
        reads_top = head != "standard" and any(layer.name == "logits" for layer in model.layers)
        layers = [models.CLASSIFIER_NAME] + (["logits"] if reads_top else [])
        norms = gradient_norms(model, images, labels, backbone, layers)
        rows.append({"head": head, "Dense input width": x.shape[1], "‖Dense input‖²": squared,
                     "‖∂loss/∂W‖ of the new Dense": norms[models.CLASSIFIER_NAME],
                     "‖∂loss/∂W‖ of ImageNet logits": norms.get("logits", float("nan")),
                     **{f"output change per SGD step at lr {rate:g}": rate * squared for rate in learning_rates}})
    return pd.DataFrame(rows).set_index("head")


def steps_table(results: Sequence[RunResult], checkpoints: Sequence[int]) -> Any:
    """Per configuration: validation accuracy (mean over its seeds) after (at least) each number of optimizer
    steps, and its test accuracy (mean ± 95 % interval)."""
    import pandas as pd

    rows = []
    for runs in seed_groups(results):
        steps, accuracy = accuracy_by_steps(runs)
        row = {"run": run_label(runs[0].config), "seeds": len(runs)}
        for wanted in checkpoints:
            index = min(int(np.searchsorted(steps, wanted)), len(steps) - 1)
            row[f"{steps[index]} steps"] = accuracy[index]
        row["test accuracy"] = str(seed_interval([run.test.accuracy for run in runs]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def accuracy_by_steps(runs: Sequence[RunResult]) -> tuple[list[int], list[float]]:
    """(optimizer steps after each epoch, validation accuracy averaged over the runs) of one configuration."""
    per_epoch = math.ceil(runs[0].data["counts"]["training"] / runs[0].config.batch_size)
    accuracy = np.mean([run.history["val_accuracy"] for run in runs], axis=0).tolist()
    return [per_epoch * epoch for epoch in range(1, len(accuracy) + 1)], accuracy


def accuracy_by_steps_of_groups(results: Sequence[RunResult]) -> dict[str, tuple[list[int], list[float]]]:
    """`accuracy_by_steps` of each configuration among `results`, labelled by `run_label` and seed count."""
    return {f"{run_label(runs[0].config)} ({seed_count(runs)})": accuracy_by_steps(runs)
            for runs in seed_groups(results)}


def run_label(config: ExperimentConfig) -> str:
    return (f"{config.head} head, {config.optimizer.upper()} lr {config.effective_learning_rate:g}, "
            f"N={config.trainable_layers}")

