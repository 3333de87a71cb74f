"""Figures of the thesis, drawn from arrays the other modules compute. Small (dpi ≤ 80) on purpose."""


from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nsfw_mobilenet.core.backbones import RANDOM_INIT
from nsfw_mobilenet.core.paths import figures_folder

FIGURE_DPI = 80
README_FIGURE_DPI = 160  # the README's figures: at least 1200 px wide
PANEL_INCHES = 2.6


# --- Interpretability (§2.4, §5.3) ------------------------------------------------------------
def plot_gradcam(image: np.ndarray, heatmap: np.ndarray, title: str = "") -> Any:
    """Figure 2.14: the raw Grad-CAM map ("colored big pixels") and the map over the photo."""
    import matplotlib.pyplot as plt

    from nsfw_mobilenet.evaluation.explain import overlay

    fig, (raw, over) = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES, PANEL_INCHES + 0.3), dpi=FIGURE_DPI)
    raw.matshow(heatmap, cmap="jet", vmin=0, vmax=1)
    raw.set_title("Grad-CAM heat map", fontsize=9)
    over.imshow(overlay(image, heatmap))
    over.set_title("over the image", fontsize=9)
    for axis in (raw, over):
        axis.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_heatmaps(image: np.ndarray, heatmaps: Mapping[str, np.ndarray],
                        probabilities: Mapping[str, float] | None = None, title: str = "",
                        panel_inches: float = 2.0) -> Any:
    """Figures 5.2–5.17: the image, then one Grad-CAM overlay per class with its probability.

    An all-zero map (nothing in the image raises the class score, or its gradient vanished) is
    labelled "empty": the overlay alone would look like a faint blue tint. Panels are smaller than
    `PANEL_INCHES` because a notebook stores several of these photo figures.
    """
    import matplotlib.pyplot as plt

    from nsfw_mobilenet.evaluation.explain import overlay

    fig, axes = plt.subplots(1, 1 + len(heatmaps), figsize=((1 + len(heatmaps)) * panel_inches, panel_inches + 0.4),
                             dpi=FIGURE_DPI)
    axes[0].imshow(np.asarray(image, dtype=np.uint8))
    axes[0].set_title("image", fontsize=8)
    for axis, (label, heatmap) in zip(axes[1:], heatmaps.items()):
        axis.imshow(overlay(image, heatmap))
        chance = f" ({probabilities[label]:.2%})" if probabilities is not None else ""
        empty = "" if np.any(heatmap > 0) else "\n(empty map)"
        axis.set_title(f"heat map for {label}{chance}{empty}", fontsize=8)
    for axis in axes:
        axis.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_class_heatmaps(examples: Sequence[Any], name: str, title: str = "test image", *, smoke: bool,
                        data_dir: str | Path | None = None) -> list[Any]:
    """Figures 5.2–5.17, one per `explain.ImageHeatmaps`, saved as `<name>_<n>` (n from 1; see `save_figure`)."""
    return [save_figure(plot_class_heatmaps(example.image, example.heatmaps, example.probabilities,
                                            title=f"{title} {n}, true class {example.true_class}"), f"{name}_{n}",
                        smoke=smoke, data_dir=data_dir)
            for n, example in enumerate(examples, start=1)]


SHAP_SMOOTHING_PIXELS = 3.0  # Gaussian sigma of the SHAP maps as drawn: per-pixel values are too sparse to see


def plot_shap(values: np.ndarray, images: np.ndarray, labels: Sequence[Sequence[str]], title: str = "") -> Any:
    """Figure 2.12 (listing 2.1's `shap.image_plot`): each image, then its SHAP map per ranked class.

    `values` is `ShapExplanation.values` (N, H, W, C, ranked); `labels` one row of names per image. The maps are
    drawn smoothed (Gaussian, sigma `SHAP_SMOOTHING_PIXELS` pixels, as the title says): expected-gradient values
    are scattered single pixels that vanish at a page's size; their sums over regions are what the figure shows.
    """
    import matplotlib.pyplot as plt
    import shap
    from scipy.ndimage import gaussian_filter

    ranked = values.shape[-1]
    sigma = (0, SHAP_SMOOTHING_PIXELS, SHAP_SMOOTHING_PIXELS, 0)
    maps = [gaussian_filter(np.asarray(values[..., i], dtype=np.float64), sigma) for i in range(ranked)]
    shap.image_plot(maps, np.asarray(images), np.asarray(labels), width=(1 + ranked) * 2.4, show=False)
    fig = plt.gcf()
    fig.set_dpi(FIGURE_DPI)
    smoothing = f"SHAP values smoothed over {SHAP_SMOOTHING_PIXELS:g} px (Gaussian sigma)"
    fig.suptitle(f"{title}\n{smoothing}" if title else smoothing, fontsize=10)
    return fig


def plot_lime(heatmap: np.ndarray, boundary: np.ndarray, label: str = "", title: str = "") -> Any:
    """Figure 2.13 (listing 2.2): superpixel weights in RdBu, and the top superpixels outlined."""
    import matplotlib.pyplot as plt

    fig, (weights, outlined) = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES + 0.6, PANEL_INCHES + 0.3),
                                            dpi=FIGURE_DPI)
    limit = float(np.abs(heatmap).max()) or 1.0
    shown = weights.imshow(heatmap, cmap="RdBu", vmin=-limit, vmax=limit)
    fig.colorbar(shown, ax=weights, fraction=0.046)
    weights.set_title(f"LIME weights for {label}", fontsize=9)
    outlined.imshow(boundary)
    outlined.set_title("top superpixels", fontsize=9)
    for axis in (weights, outlined):
        axis.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# --- Training curves and confusion matrices (§4.2, figures 4.3–4.16) -----------------------------
def plot_history(history: Mapping[str, Sequence[float]], title: str = "") -> Any:
    """Figures 4.3–4.16: train/validation loss and accuracy per epoch."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES, PANEL_INCHES), dpi=FIGURE_DPI)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.plot(epochs, history[metric], "o-", label=f"train {metric}")
        axis.plot(epochs, history[f"val_{metric}"], "s--", label=f"validation {metric}")
        axis.set_xlabel("epoch", fontsize=8)
        axis.legend(fontsize=7)
        axis.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "") -> Any:
    """Figures 4.18–4.20: counts, true class in rows, predicted class in columns."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    size = 1.2 + 0.55 * len(classes)
    fig, axis = plt.subplots(figsize=(size + 0.6, size), dpi=FIGURE_DPI)
    sns.heatmap(np.asarray(matrix), annot=True, fmt="d", cmap="Blues", cbar=False, ax=axis,
                xticklabels=classes, yticklabels=classes, annot_kws={"fontsize": 8})
    axis.set_xlabel("predicted", fontsize=8)
    axis.set_ylabel("true", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_figure(fig: Any, name: str, *, smoke: bool, data_dir: str | Path | None = None,
                dpi: int = FIGURE_DPI) -> Path:
    """Write `fig` as <name>.png to `core.paths.figures_folder(smoke, data_dir)`: figures/ only for a full run on
    the default data, so that neither a seconds-long smoke run nor a run on a user's dataset (`data_dir`)
    overwrites a committed figure. The README's figures pass `README_FIGURE_DPI`."""
    folder = figures_folder(smoke, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def save_run_figures(run: Any, title: str, name: str, *, smoke: bool, data_dir: str | Path | None = None) -> list[Path]:
    """A run's loss and accuracy curves and its test confusion matrix (figures 4.3–4.16), as <name>_curves and
    <name>_confusion (where: `save_figure`); `run` is an `evaluation.run_results.RunResult`."""
    curves = save_figure(plot_history(run.history, title), f"{name}_curves", smoke=smoke, data_dir=data_dir)
    matrix = plot_confusion_matrix(run.test.confusion_matrix, run.data["classes"], f"{title}, test hold-out")
    return [curves, save_figure(matrix, f"{name}_confusion", smoke=smoke, data_dir=data_dir)]


# --- Architectures (chapter 3, notebook 01) ------------------------------------------------------
def plot_parameters_and_layers(table: Any) -> Any:
    """Table 3.5 as bars: parameters, Keras 3 layers and the thesis's (Keras 2) layer count of each model.

    `table` has the columns model, parameters, keras3_layers and thesis_layers (`parameter_table`'s).
    """
    axes = table.set_index("model")[["parameters", "keras3_layers", "thesis_layers"]].plot.bar(
        subplots=True, layout=(1, 3), figsize=(9, 2.6), legend=False, rot=30,
        title=["Parameters", "Layers (Keras 3)", "Layers (Keras 2, thesis)"])
    figure = axes.flat[0].figure
    figure.tight_layout()
    return figure


# --- Data augmentation (§4.1, §4.3, figures 4.1/4.2) -------------------------------------------
def plot_augmented_images(images: Mapping[str, np.ndarray], title: str = "", columns: int = 7,
                          panel_inches: float = 1.1) -> Any:
    """Figures 4.1/4.2: one panel per labelled uint8 image (a technique, or a training-time draw).

    Panels are small on purpose: photos compress badly, and the figure is stored in the notebook.
    """
    import matplotlib.pyplot as plt

    rows = -(-len(images) // columns)
    width = min(columns, len(images))
    fig, axes = plt.subplots(rows, width, figsize=(width * panel_inches, rows * (panel_inches * 0.8 + 0.25) + 0.3),
                             dpi=FIGURE_DPI, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (label, image) in zip(axes.flat, images.items()):
        axis.imshow(np.asarray(image, dtype=np.uint8))
        axis.set_title(label, fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot_history_comparison(histories: Mapping[str, Mapping[str, Sequence[float]]], title: str = "") -> Any:
    """Figures 4.6/4.8 side by side: training (solid) and validation (dashed) accuracy of several runs."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(2 * PANEL_INCHES, PANEL_INCHES + 0.2), dpi=FIGURE_DPI)
    for color, (label, history) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], histories.items()):
        epochs = np.arange(1, len(history["accuracy"]) + 1)
        axis.plot(epochs, history["accuracy"], "o-", color=color, label=f"{label} train")
        axis.plot(epochs, history["val_accuracy"], "s--", color=color, label=f"{label} validation")
    axis.set_xticks(epochs)
    axis.axhline(0.5, color="grey", lw=0.8, ls=":")
    return _finish_accuracy_axes(fig, axis, "epoch", "accuracy", title)


def _finish_accuracy_axes(fig: Any, axis: Any, xlabel: str, ylabel: str, title: str, bottom: float = 0.0,
                          legend: str = "lower right") -> Any:
    """Labels, an accuracy range up to 1, legend and title shared by the accuracy plots."""
    axis.set_xlabel(xlabel, fontsize=8 if len(xlabel) < 40 else 7)
    axis.set_ylabel(ylabel, fontsize=8)
    axis.set_ylim(bottom, 1.02)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=6, loc=legend)
    axis.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# --- Five classes and cross-dataset tests (§4.4, §5.1) ----------------------------------------------
def plot_dataset_shapes(derived: Mapping[str, Mapping[str, int]], thesis: Mapping[str, Mapping[str, int]]) -> Any:
    """§4.4's Datasets 1–3: class shares of the thesis's datasets beside the ones derived here."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(thesis), figsize=(len(thesis) * PANEL_INCHES, PANEL_INCHES), dpi=FIGURE_DPI,
                             sharey=True)
    for axis, name in zip(np.atleast_1d(axes), thesis):
        classes = list(thesis[name])
        positions = np.arange(len(classes))
        for offset, (source, counts) in zip((-0.2, 0.2), (("thesis", thesis[name]), ("here", derived[name]))):
            total = sum(counts.values())
            axis.bar(positions + offset, [counts.get(c, 0) / total for c in classes], width=0.4,
                     label=f"{source} ({total:,} images)")
        axis.set_xticks(positions, classes, rotation=45, fontsize=7)
        axis.set_title(name.replace("_", " "), fontsize=9)
        axis.legend(fontsize=6)
        axis.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].set_ylabel("share of the dataset", fontsize=8)
    fig.tight_layout()
    return fig


def plot_safety_confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str], errors: np.ndarray,
                                 title: str = "") -> Any:
    """Figures 4.18–4.20 with listing 4.8's error cells outlined in red (the other cells are "well predicted")."""
    from matplotlib.patches import Rectangle

    fig = plot_confusion_matrix(matrix, classes, title)
    axis = fig.axes[0]
    for true, predicted in zip(*np.nonzero(np.asarray(errors))):
        axis.add_patch(Rectangle((predicted + 0.06, true + 0.06), 0.88, 0.88, fill=False, edgecolor="red",
                                 linewidth=1.2, linestyle="--"))
    return fig


# --- Data inspection (notebook 00) -------------------------------------------------------------
def plot_class_counts(splits: Mapping[str, Mapping[str, int]], title: str = "") -> Any:
    """Images per class and split, as counted by `dataset_report.validate_dataset`."""
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axis = plt.subplots(figsize=(2 * PANEL_INCHES, PANEL_INCHES), dpi=FIGURE_DPI)
    pd.DataFrame(splits).plot.bar(ax=axis, fontsize=7)
    axis.set_ylabel("images", fontsize=8)
    axis.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_samples(images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 5) -> Any:
    """A small grid of thumbnails with their labels."""
    import matplotlib.pyplot as plt

    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.2), dpi=FIGURE_DPI, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, title in zip(axes.flat, images, titles):
        axis.imshow(image)
        axis.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


# --- The V3 thesis head and the model selection (§4.2.3, §4.2.5) ------------------------------------
def plot_accuracy_vs_steps(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], thesis_steps: int,
                           title: str = "") -> Any:
    """Validation accuracy against optimizer steps (log scale), with the thesis's step count marked."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(2 * PANEL_INCHES, PANEL_INCHES + 0.2), dpi=FIGURE_DPI)
    for label, (steps, accuracy) in curves.items():
        axis.plot(steps, accuracy, label=label)
    axis.axvline(thesis_steps, color="black", lw=0.8, ls="--")
    axis.text(thesis_steps, 0.05, f"thesis: {thesis_steps:,} steps ", fontsize=7, ha="right")
    axis.axhline(0.5, color="grey", lw=0.8, ls=":")
    axis.set_xscale("log")
    return _finish_accuracy_axes(fig, axis, "optimizer steps (batch 64)", "validation accuracy", title,
                                 legend="lower left")


REVIEW_LOOP_CURVES = {"lookalike_false_positive_rate": "look-alike unseen categories: decided unsafe",
                      "lookalike_flagged": "look-alike unseen categories: unsafe or review",
                      "unseen_false_positive_rate": "all unseen categories: decided unsafe",
                      "unseen_flagged": "all unseen categories: unsafe or review"}


def plot_review_loop(table: Any, title: str = "") -> Any:
    """§6.2's loop simulated: false alarms on held-back photos of never-seen safe categories against the number of
    reviews (left), and test recall with the test false-positive rate (right); `table` is
    `studies.review_loop.rounds_table`."""
    import matplotlib.pyplot as plt

    fig, (alarms, test) = plt.subplots(1, 2, figsize=(3 * PANEL_INCHES, PANEL_INCHES + 0.4), dpi=FIGURE_DPI)
    for column, label in REVIEW_LOOP_CURVES.items():
        alarms.plot(table["reviews"], table[column], marker="o", ms=3, label=label,
                    ls="-" if column.endswith("rate") else "--")
    alarms.set_ylabel("share of held-back unseen photos", fontsize=8)
    test.plot(table["reviews"], table["test_recall"], marker="o", ms=3, label="test recall (not passed as safe)")
    test.plot(table["reviews"], table["test_false_positive_rate"], marker="o", ms=3, label="test false-positive rate")
    for axis in (alarms, test):
        axis.set_xlabel("reviews", fontsize=8)
        axis.set_ylim(-0.02, 1.02)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_selection(table: Any, accuracy_column: str, title: str = "") -> Any:
    """§4.2.5 redone: test accuracy against LiteRT latency (float32 hollow, int8 filled), marker area ∝ int8 MB;
    random-init backbones are marked as such. Sized for the README (save at `README_FIGURE_DPI`)."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7.6, 4.4), dpi=FIGURE_DPI)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    measured = table.dropna(subset=[accuracy_column, "float32 ms", "int8 ms"])
    for color, (backbone, row) in zip(colors, measured.iterrows()):
        random_init = row["weights"] == RANDOM_INIT
        label = f"{backbone} ({row['int8 MB']:.1f} MB int8)" + (" RANDOM INIT" if random_init else "")
        hollow = {"color": color} if random_init else {"facecolors": "none", "edgecolors": color}
        axis.scatter(row["float32 ms"], row[accuracy_column], s=40 * row["float32 MB"],
                     marker="x" if random_init else "o", **hollow)
        axis.scatter(row["int8 ms"], row[accuracy_column], s=40 * row["int8 MB"], color=color,
                     marker="x" if random_init else "o", label=label)
        axis.plot([row["float32 ms"], row["int8 ms"]], [row[accuracy_column]] * 2, color=color, lw=1.2)
    axis.set_xlabel("LiteRT milliseconds per image (batch 1, 2 threads): hollow float32, filled int8", fontsize=10)
    axis.set_ylabel(accuracy_column.replace("DA", "data augmentation"), fontsize=10)
    axis.set_ylim(0.2, 1.02)
    axis.tick_params(labelsize=9)
    axis.legend(fontsize=9, loc="lower right")
    axis.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


# --- Calibration and operating point (notebook 07) ---------------------------------------------
def plot_reliability(diagrams: Mapping[str, Any], title: str = "") -> Any:
    """Reliability diagrams (`calibrate.Reliability`) side by side: accuracy per confidence bin against the
    diagonal of perfect calibration, bar widths the bins, with each diagram's ECE."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(diagrams), figsize=(len(diagrams) * PANEL_INCHES, PANEL_INCHES + 0.4),
                             dpi=FIGURE_DPI, sharey=True, squeeze=False)
    for axis, (label, diagram) in zip(axes[0], diagrams.items()):
        filled = diagram.counts > 0
        widths = np.diff(diagram.bin_edges)
        axis.bar(diagram.bin_edges[:-1][filled], diagram.accuracy[filled], width=widths[filled], align="edge",
                 edgecolor="black", lw=0.4, label="accuracy")
        axis.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="perfect calibration")
        axis.set_title(f"{label}\nECE {diagram.expected_calibration_error:.3f}", fontsize=8)
        axis.set_xlabel("top-1 confidence", fontsize=8)
        axis.set_xlim(0, 1)
        axis.tick_params(labelsize=7)
    axes[0][0].set_ylabel("top-1 accuracy", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_operating_point(unsafe_probabilities: np.ndarray, is_unsafe: np.ndarray, point: Any, title: str = "") -> Any:
    """ROC and precision-recall curves of the unsafe probability, with an `operating_point.OperatingPoint`
    marked: its threshold (automatic unsafe) and the low end of its review band (everything above is caught)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    scores, truth = np.asarray(unsafe_probabilities, np.float64), np.asarray(is_unsafe, bool)
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES + 0.4, PANEL_INCHES + 0.4), dpi=FIGURE_DPI)
    false_positive_rate, true_positive_rate, _ = roc_curve(truth, scores)
    precision, recall, _ = precision_recall_curve(truth, scores)
    roc.plot(false_positive_rate, true_positive_rate, lw=1)
    pr.plot(recall, precision, lw=1)
    marks = {f"threshold {point.threshold:.3g}": (point.threshold, "o"),
             f"review from {point.review_band[0]:.3g}": (point.review_band[0], "s")}
    for label, (cut, marker) in marks.items():
        flagged = scores >= cut
        tpr, fpr = flagged[truth].mean(), flagged[~truth].mean()
        precision_at = truth[flagged].mean() if flagged.any() else 1.0
        roc.scatter(fpr, tpr, marker=marker, zorder=3, label=label)
        pr.scatter(tpr, precision_at, marker=marker, zorder=3, label=label)
    for axis, (x, y) in ((roc, ("false-positive rate", "recall (true-positive rate)")), (pr, ("recall", "precision"))):
        axis.set_xlabel(x, fontsize=8)
        axis.set_ylabel(y, fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_xlim(-0.02, 1.02)
        axis.set_ylim(-0.02, 1.02)
    roc.set_title("ROC", fontsize=8)
    pr.set_title("precision-recall", fontsize=8)
    roc.legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_loss_readings(curves: Mapping[str, Mapping[str, Sequence[float]]], thesis_train_loss: float | None,
                       title: str = "") -> Any:
    """§4.2.1's readings of one row: training (solid) and validation (dashed) loss per epoch, averaged over
    seeds, with the thesis's final training loss marked (its curves, figures 4.3–4.11, are only pictures)."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(2 * PANEL_INCHES, PANEL_INCHES + 0.3), dpi=FIGURE_DPI)
    for color, (label, history) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], curves.items()):
        epochs = np.arange(1, len(history["loss"]) + 1)
        axis.plot(epochs, history["loss"], "-", color=color, label=f"{label}: training")
        axis.plot(epochs, history["val_loss"], "--", color=color, label=f"{label}: validation")
    if thesis_train_loss is not None:
        axis.axhline(thesis_train_loss, color="black", lw=0.8, ls=":")
        axis.text(1, thesis_train_loss, " thesis's final training loss", fontsize=7, va="bottom")
    axis.set_xlabel("epoch", fontsize=8)
    axis.set_ylabel("cross-entropy loss", fontsize=8)
    axis.set_ylim(bottom=0)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=6, loc="upper right")
    axis.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_seed_spread(values: Mapping[str, Sequence[float]], thesis: Mapping[str, float | None], metric: str,
                     title: str = "") -> Any:
    """Figure 4.17 as a spread: each configuration's runs (one dot per seed), their mean and 95 % interval,
    and the thesis's single number where it printed one."""
    import matplotlib.pyplot as plt

    from nsfw_mobilenet.evaluation.uncertainty import seed_interval

    fig, axis = plt.subplots(figsize=(max(2 * PANEL_INCHES, 1.1 * len(values)), PANEL_INCHES + 0.6), dpi=FIGURE_DPI)
    for position, (label, runs) in enumerate(values.items()):
        summary = seed_interval(runs)
        jitter = np.linspace(-0.12, 0.12, len(runs)) if len(runs) > 1 else np.zeros(1)
        axis.plot(position + jitter, runs, "o", color="tab:blue", alpha=0.6,
                  label="one seed" if position == 0 else None)
        axis.errorbar(position + 0.25, summary.mean, yerr=[[summary.mean - summary.low], [summary.high - summary.mean]],
                      fmt="s", color="tab:blue", capsize=3, label="mean, 95 % interval" if position == 0 else None)
        if thesis.get(label) is not None:
            axis.plot(position - 0.25, thesis[label], "D", color="black", label="thesis" if position == 0 else None)
    axis.set_xticks(range(len(values)), [textwrap.fill(label, 16) for label in values], fontsize=6)
    axis.set_ylabel(metric, fontsize=8)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7, loc="lower right")
    axis.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig

