"""Specification of §4.4: Datasets 1–3 derived from one source, and listing 4.8's well-predicted count."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from nsfw_mobilenet.core import paths
from nsfw_mobilenet.core.taxonomy import FIVE_CLASS
from nsfw_mobilenet.evaluation.evaluate import evaluate_safety, wrong_predictions
from nsfw_mobilenet.io.image_files import LabeledImage
from nsfw_mobilenet.studies import five_classes
from nsfw_mobilenet.studies.five_classes import (
    DATASETS,
    best_runs,
    dataset_of,
    dataset_sizes,
    derive_datasets,
    load_runs,
    thesis_dataset_shapes,
)

CLASSES = list(FIVE_CLASS.classes)


def synthetic_pool(per_class: int = 400) -> list[LabeledImage]:
    return [LabeledImage(Path(f"/source/{label}/{i:04d}.jpg"), label) for label in CLASSES for i in range(per_class)]


@pytest.fixture(scope="module")
def derived():
    return derive_datasets(synthetic_pool(), seed=7)


def test_dataset_1_has_the_thesis_class_proportions(derived):
    thesis = thesis_dataset_shapes()["dataset_1"]
    thesis_total = sum(thesis.values())
    counts = derived["dataset_1"].counts()
    assert counts["neutral"] == 400  # the largest class fills the source
    for label, share in derived["dataset_1"].proportions().items():
        assert share == pytest.approx(thesis[label] / thesis_total, abs=len(CLASSES) / sum(counts.values()))  # flooring


def test_dataset_3_is_balanced_and_dataset_2_is_nearly_so(derived):
    assert max(derived["dataset_3"].counts().values()) - min(derived["dataset_3"].counts().values()) <= 1
    thesis_2 = thesis_dataset_shapes()["dataset_2"]
    ratio = max(derived["dataset_2"].counts().values()) / min(derived["dataset_2"].counts().values())
    assert ratio == pytest.approx(max(thesis_2.values()) / min(thesis_2.values()), rel=0.1)


def test_dataset_2_subsamples_dataset_1_and_dataset_3_extends_its_small_classes(derived):
    files = {name: {i.path for i in d.training + d.validation} for name, d in derived.items()}
    assert files["dataset_2"] <= files["dataset_1"]
    hentai_1 = {p for p in files["dataset_1"] if p.parent.name == "hentai"}
    hentai_3 = {p for p in files["dataset_3"] if p.parent.name == "hentai"}
    assert hentai_1 < hentai_3  # "obtained from the Dataset 1 and filled up with new images"


def test_training_and_validation_are_disjoint_80_20_splits_of_every_class(derived):
    for dataset in derived.values():
        training = {i.path for i in dataset.training}
        validation = {i.path for i in dataset.validation}
        assert not training & validation
        assert len(validation) / (len(training) + len(validation)) == pytest.approx(0.2, abs=0.03)
        assert {i.label for i in dataset.validation} == set(CLASSES)


def test_derivation_depends_on_the_seed_not_on_the_order_of_the_source(derived):
    shuffled = synthetic_pool()
    random.Random(0).shuffle(shuffled)
    again = derive_datasets(shuffled, seed=7)
    assert all(again[n].training == derived[n].training and again[n].validation == derived[n].validation
               for n in DATASETS)
    other = derive_datasets(synthetic_pool(), seed=8)
    assert other["dataset_1"].training != derived["dataset_1"].training
    assert other["dataset_1"].counts() == derived["dataset_1"].counts()


def test_sizes_scale_with_the_source():
    small = dataset_sizes(dict.fromkeys(CLASSES, 100))
    large = dataset_sizes(dict.fromkeys(CLASSES, 1000))
    assert large["dataset_3"]["hentai"] == pytest.approx(10 * small["dataset_3"]["hentai"], abs=10)


def test_a_tiny_source_still_trains_and_validates_every_class():
    derived = derive_datasets(synthetic_pool(per_class=12), seed=1)
    for dataset in derived.values():
        assert {i.label for i in dataset.training} == set(CLASSES)
        assert {i.label for i in dataset.validation} == set(CLASSES)


def test_a_missing_class_is_named():
    pool = [item for item in synthetic_pool(20) if item.label != "sexy"]
    with pytest.raises(ValueError, match="sexy"):
        derive_datasets(pool)


def test_an_explicit_scale_too_large_for_the_source_says_which_class_is_short():
    with pytest.raises(ValueError, match="neutral.*needed"):
        dataset_sizes(dict.fromkeys(CLASSES, 100), scale=0.01)


def test_well_predicted_ignores_harmless_confusions_but_counts_a_missed_sexy_image():
    # drawings→neutral and porn→hentai are not errors (listing 4.8); sexy→neutral and neutral→porn are.
    true = ["drawings", "porn", "sexy", "neutral", "hentai", "sexy"]
    predicted = ["neutral", "hentai", "neutral", "porn", "hentai", "sexy"]
    probabilities = np.eye(5)[[FIVE_CLASS.index(p) for p in predicted]]
    labels = np.array([FIVE_CLASS.index(t) for t in true])
    evaluation = evaluate_safety(probabilities, labels, CLASSES)
    assert (evaluation.wrong, evaluation.well_predicted, evaluation.total) == (2, 4, 6)
    assert evaluation.accuracy == pytest.approx(2 / 6)
    assert wrong_predictions(evaluation.confusion_matrix, CLASSES) == 2


def test_run_configs_cover_three_datasets_times_two_augmentations_and_the_two_class_model():
    runs = load_runs()
    five = {name: config for name, config in runs.items() if config.taxonomy == "five_class"}
    assert {dataset_of(name) for name in five} == set(DATASETS)
    assert {config.augmentation for config in five.values()} == {"A", "CDE"}
    assert all(config.backbone == "mobilenet_v3_small" for config in runs.values())
    assert set(best_runs(runs)) == set(DATASETS)


# ---------------------------------------------------------------- notebook 04's steps


def synthetic_result(well_predicted: int = 3) -> dict:
    """A §4.4 result holding each dataset's best run, with a 5×5 confusion matrix of 5 test images."""
    safety = {"confusion_matrix": np.eye(len(CLASSES), dtype=int).tolist(), "classes": CLASSES,
              "well_predicted": well_predicted, "total": len(CLASSES)}
    return {"runs": {run: {"safety": safety} for run in best_runs().values()}}


def test_committed_summaries_are_read_by_file_stem_and_only_with_the_prefix(tmp_path):
    (tmp_path / "section_4_4_a.json").write_text(json.dumps({"note": "a"}))
    (tmp_path / "table_5_1_b.json").write_text(json.dumps({"note": "b"}))
    assert five_classes.committed_summaries(five_classes.SECTION_4_4_RESULTS, tmp_path) == {"section_4_4_a": {"note": "a"}}


def test_safety_matrices_plot_one_figure_per_dataset_titled_with_the_detail_and_well_predicted_count():
    figures = five_classes.plot_safety_matrices(synthetic_result(), "mobilenet_v3_small, sgd")
    titles = [figure.axes[0].get_title() for figure in figures]
    assert len(figures) == len(DATASETS)
    assert titles[0].startswith("fig. 4.18: dataset_1_") and titles[0].endswith(", mobilenet_v3_small, sgd (3/5 well predicted)")


def test_saved_safety_matrices_are_named_after_figure_run_and_result_without_its_prefix(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "SMOKE_FIGURES_DIR", tmp_path)
    saved = five_classes.save_safety_matrices(synthetic_result(), "section_4_4_proxy_v1", smoke=True)
    first_run = best_runs()["dataset_1"]
    assert saved[0] == tmp_path / f"fig_4_18_confusion_{first_run}_proxy_v1.png" and all(p.is_file() for p in saved)


def test_class_weight_tables_are_empty_without_a_class_weights_run():
    assert five_classes.class_weight_tables(synthetic_result()) == []


def test_five_class_data_prefers_the_given_folder_then_the_flower_proxy(tmp_path):
    given, note = five_classes.five_class_data(tmp_path / "mine", tmp_path / "nowhere", tmp_path / "proxy", tmp_path)
    assert given == tmp_path / "mine" and note.startswith("data:")
    flowers = tmp_path / "flowers"
    for flower in five_classes.FLOWER_PROXY:
        (flowers / flower).mkdir(parents=True)
        for index in range(5):
            (flowers / flower / f"{index}.jpg").write_bytes(b"jpeg")
    proxy, note = five_classes.five_class_data(None, flowers, tmp_path / "proxy", tmp_path)
    assert sorted(path.name for path in (proxy / "train").iterdir()) == sorted(CLASSES) and "PROXY" in note


def test_dataset_shapes_table_puts_thesis_and_derived_counts_side_by_side(derived):
    prepared = five_classes.FiveClassData(derived, decoded=None, test=None)
    table = five_classes.dataset_shapes_table(prepared)
    assert list(table.columns) == [f"{name} [{side}]" for name in DATASETS for side in ("thesis", "here")]
    assert table["dataset_2 [here]"].to_dict() == derived["dataset_2"].counts()
