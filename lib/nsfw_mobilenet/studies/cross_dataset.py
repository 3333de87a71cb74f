"""§5.1 (table 5.1): the two-class model and the three five-class models on each other's test sets.

A model and a test set with different label sets are compared by safety only (sexy counts as
unsafe); with the same label set, listing 4.8's rule decides (`taxonomy.is_wrong`, counted by
`evaluate.count_wrong`). The third test set of table 5.1 is frames extracted from videos; here it
is made from the stand-in's clips (`videos/labels.csv` gives each clip's unsafe frame ranges), with
the clip as the frames' group, so that a per-video verdict can be read off the frame scores too.
"""


from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from nsfw_mobilenet.core.configs import thesis_reference
from nsfw_mobilenet.core.paths import repo_relative
from nsfw_mobilenet.core.taxonomy import BINARY, SAFE, TAXONOMIES, UNSAFE, Taxonomy, taxonomy_for_classes
from nsfw_mobilenet.evaluation.evaluate import count_wrong, unsafe_scores
from nsfw_mobilenet.evaluation.operating_point import DEFAULT_THRESHOLD
from nsfw_mobilenet.io import image_cache, image_files
from nsfw_mobilenet.io.inference import predict
from nsfw_mobilenet.io.run_data import load_run_data
from nsfw_mobilenet.io.video import CorruptVideo, extract_frames, video_score, video_verdict
from nsfw_mobilenet.studies import five_classes
from nsfw_mobilenet.training import train

TEST_SETS = ("new_test_5_classes", "test_2_classes", "new_test_2_classes_video_frames")  # rows of table 5.1
# The column of table 5.1 (reference file) each model here fills. The thesis's models were all
# MobileNetV3-Small; a run here records its own backbone in its config (e.g. V1 through `overrides`).
THESIS_COLUMNS = {"two_classes": "v3_small_2_classes", **{d: f"v3_small_5_classes_{d}" for d in five_classes.DATASETS}}
VIDEO_LABELS_FILE = "labels.csv"
TABLE_5_1_RESULTS = "table_5_1_"  # file names of the committed table 5.1 results (in five_classes.FIVE_CLASS_RESULTS_DIR) start so


# --- Table 5.1 -----------------------------------------------------------------------------------
def table_5_1(wrong: Mapping[str, Mapping[str, int]], totals: Mapping[str, int]) -> Any:
    """Table 5.1 with the thesis beside: one row per test set, per model "thesis" and "here" columns.

    `wrong[test_set][column]` uses the keys of the reference file (`TEST_SETS`, `THESIS_COLUMNS`
    values); `totals[test_set]` is the number of images tested here, shown as "here, of N".
    """
    import pandas as pd

    thesis = thesis_reference()["tables"]["5.1"]
    rows = []
    for test_set in thesis["rows"]:
        row: dict[str, Any] = {"test set": test_set, "images here": totals.get(test_set)}
        for model in thesis["columns"]:
            row[f"{model} [thesis]"] = thesis["rows"][test_set][model]
            row[f"{model} [here]"] = wrong.get(test_set, {}).get(model)
        rows.append(row)
    return pd.DataFrame(rows).set_index("test set")


def table_5_1_of(result: Mapping[str, Any]) -> Any:
    """`table_5_1` of a `cross_dataset_experiment` result (this run's or a committed one)."""
    return table_5_1(result["wrong"], result["data"]["test_images"])


def committed_table_5_1_runs() -> dict[str, dict[str, Any]]:
    """The committed full runs of table 5.1 (results/five_class/table_5_1_*.json), by file stem."""
    return five_classes.committed_summaries(TABLE_5_1_RESULTS)


def video_verdict_table(result: Mapping[str, Any]) -> Any:
    """Every model's per-video verdicts of a `cross_dataset_experiment` result, indexed by (model, video)."""
    import pandas as pd

    return pd.concat({model: pd.DataFrame(summary["video_verdicts"]).T for model, summary in result["models"].items()},
                     names=["model", "video"])


# --- Test sets -----------------------------------------------------------------------------------
@dataclass
class TestSet:
    """Decoded test images with their label names; `groups` names each frame's video (else None)."""

    name: str
    images: image_cache.Images  # uint8 [N, H, W, 3]
    labels: list[str]
    taxonomy: Taxonomy
    groups: list[str] | None = None
    skipped: list[str] = field(default_factory=list)  # unusable files, with the reason

    def __len__(self) -> int:
        return len(self.labels)


def loaded_test_set(name: str, loaded: image_cache.LoadedImages) -> TestSet:
    """A decoded test/ folder (`RunData.test`) as a test set of table 5.1."""
    return TestSet(name, loaded.images, [loaded.classes[i] for i in loaded.labels],
                   taxonomy_for_classes(loaded.classes), skipped=[str(bad) for bad in loaded.bad_files])


def unsafe_frame_numbers(ranges: str) -> set[int]:
    """`"10-19;25-29"` (the stand-in's labels.csv) → the frame numbers in those ranges."""
    numbers: set[int] = set()
    for part in filter(None, ranges.split(";")):
        first, _, last = part.partition("-")
        numbers.update(range(int(first), int(last or first) + 1))
    return numbers


def read_video_labels(video_dir: Path | str) -> list[dict[str, str]]:
    """Rows of `labels.csv`: file, label (safe/unsafe/mixed), fps, unsafe_frames, …"""
    path = Path(video_dir) / VIDEO_LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a video test set needs one row per clip with its "
                                "file, label, fps and unsafe_frames (as the stand-in writes it)")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def frames_test_set(video_dir: Path | str, *, fps: float = 1.0, max_frames: int | None = None,
                    image_size: tuple[int, int] = image_files.IMAGE_SIZE, progress: bool = True) -> TestSet:
    """Table 5.1's third test set: frames sampled from every clip, labelled normal/sexual per frame.

    A frame is "sexual" when its frame number lies in the clip's unsafe ranges. A clip that cannot
    be decoded is skipped and reported in `skipped` (`CorruptVideo` names the file and why).
    """
    video_dir = Path(video_dir)
    images, labels, groups, skipped = [], [], [], []
    for row in tqdm(read_video_labels(video_dir), desc="video frames", unit="video", disable=not progress):
        try:
            sampled = extract_frames(video_dir / row["file"], fps=fps, max_frames=max_frames, image_size=image_size)
        except CorruptVideo as error:
            skipped.append(f"{error} (skipped)")
            continue
        unsafe = unsafe_frame_numbers(row.get("unsafe_frames", ""))
        native_fps = float(row["fps"])
        for frame, time in zip(sampled.frames, sampled.timestamps):
            images.append(frame)
            labels.append("sexual" if round(time * native_fps) in unsafe else "normal")
            groups.append(row["file"])
    if not images:
        raise CorruptVideo(video_dir, f"no clip listed in {VIDEO_LABELS_FILE} could be decoded: {skipped}")
    return TestSet(TEST_SETS[2], np.stack(images), labels, BINARY, groups, skipped)


def video_verdicts(test_set: TestSet, unsafe_scores: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD, k: int = 1,
                   video_dir: Path | str | None = None) -> Any:
    """One row per clip: true frames, flagged frames, the k-th highest score and the verdict.

    With `video_dir`, the clip's label from labels.csv is added and `correct` says whether the
    verdict flags exactly the clips holding unsafe content (labels "unsafe" and "mixed").
    """
    import pandas as pd

    if test_set.groups is None:
        raise ValueError(f"{test_set.name} has no video groups; build it with frames_test_set")
    frame_table = pd.DataFrame({"video": test_set.groups, "sexual": [lab == "sexual" for lab in test_set.labels],
                                "score": np.asarray(unsafe_scores, dtype=float)})
    rows = []
    for video, frames in frame_table.groupby("video", sort=False):
        rows.append({"video": video, "frames": len(frames), "sexual frames": int(frames["sexual"].sum()),
                     "flagged frames": int((frames["score"] >= threshold).sum()),
                     f"score (k={k})": video_score(frames["score"], k),
                     "verdict": UNSAFE if video_verdict(frames["score"], threshold, k) else SAFE})
    table = pd.DataFrame(rows).set_index("video")
    if video_dir is not None:
        labels = {row["file"]: row["label"] for row in read_video_labels(video_dir)}
        table.insert(0, "label", [labels[v] for v in table.index])
        table["correct"] = (table["label"] != "safe") == (table["verdict"] == "unsafe")
    return table


# --- Models on test sets -------------------------------------------------------------------------
def score_model(model: Any, backbone: str, model_taxonomy: Taxonomy, test_sets: Sequence[TestSet]
                ) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Wrong predictions of one model on each test set, and its probabilities there (one predict call)."""
    everything = predict(model, image_cache.concatenate_images([t.images for t in test_sets]), backbone)
    ends = np.cumsum([len(t) for t in test_sets])
    wrong, probabilities = {}, {}
    for test_set, part in zip(test_sets, np.split(everything, ends[:-1])):
        probabilities[test_set.name] = part
        predicted = [model_taxonomy.classes[i] for i in part.argmax(axis=1)]
        wrong[test_set.name] = count_wrong(test_set.labels, test_set.taxonomy, predicted, model_taxonomy)
    return wrong, probabilities


def cross_dataset_experiment(five_class_dir: Path | str, two_class_dir: Path | str, video_dir: Path | str, *,
                             overrides: Mapping[str, Any] | None = None, smoke: bool = False, fps: float = 2.0,
                             threshold: float = DEFAULT_THRESHOLD, k: int = 2, seed: int = image_files.SPLIT_SEED,
                             checkpoint_dir: Path | None = None, progress: bool = True,
                             weights_dir: Path | None = None) -> dict[str, Any]:
    """Table 5.1 end to end: derive Datasets 1–3, train the four models, test each on the three sets.

    The five-class models use the thesis's best augmentation per dataset (§4.4); `overrides`
    (e.g. `{"backbone": "mobilenet_v1", "augmentation": ""}`) applies to all four configs and is
    recorded in the result, whose models and counts are keyed by `THESIS_COLUMNS`. Smoke mode keeps a
    few images per class, four frames per clip, one epoch. `weights_dir`: the offline ImageNet weights folder.
    """
    overrides = dict(overrides or {})
    if smoke:
        overrides.setdefault("epochs", train.SMOKE_EPOCHS)
    runs = five_classes.load_runs()
    columns = {"two_classes": five_classes.TWO_CLASS_RUN, **five_classes.best_runs(runs)}
    prepared = five_classes.prepare(five_class_dir, smoke=smoke, seed=seed, progress=progress)
    two_class_data = load_run_data(two_class_dir, smoke=smoke, progress=progress)
    if two_class_data.test is None:
        raise FileNotFoundError(f"{two_class_dir}: no test/ folder for table 5.1's two-class test set")
    test_sets = [loaded_test_set(TEST_SETS[0], prepared.test), loaded_test_set(TEST_SETS[1], two_class_data.test),
                 frames_test_set(video_dir, fps=fps, max_frames=4 if smoke else None, progress=progress)]
    result: dict[str, Any] = {
        "data": {"five_class_dir": repo_relative(five_class_dir), "two_class_dir": repo_relative(two_class_dir),
                 "video_dir": repo_relative(video_dir), "datasets": {n: d.counts() for n, d in prepared.datasets.items()},
                 "test_images": {t.name: len(t) for t in test_sets},
                 "skipped": {t.name: t.skipped for t in test_sets if t.skipped}},
        "overrides": overrides, "smoke": smoke, "seed": seed, "video": {"fps": fps, "threshold": threshold, "k": k},
        "models": {}, "wrong": {t.name: {} for t in test_sets},
    }
    checkpoints = Path(checkpoint_dir) if checkpoint_dir else train.DEFAULT_CHECKPOINT_DIR
    for column, run in tqdm(columns.items(), desc="table 5.1 models", unit="model", disable=not progress):
        config = runs[run].with_overrides(**overrides)
        run_data = two_class_data if column == "two_classes" else prepared.run_data(column)
        run_data = replace(run_data, test=None)  # every test set is scored below, in one pass
        trained = train.train(config, run_data, weights_dir=weights_dir, checkpoint_dir=checkpoints / f"{run}_{seed}",
                              verbose=0)
        taxonomy = TAXONOMIES[config.taxonomy]
        wrong, probabilities = score_model(trained.model, config.backbone, taxonomy, test_sets)
        for name, count in wrong.items():
            result["wrong"][name][THESIS_COLUMNS[column]] = count
        frames = test_sets[2]
        verdicts = video_verdicts(frames, unsafe_scores(probabilities[frames.name], taxonomy.classes),
                                  threshold=threshold, k=k, video_dir=video_dir)
        result["models"][THESIS_COLUMNS[column]] = {
            **five_classes.run_summary(trained, run_data),
            "video_verdicts": json.loads(verdicts.to_json(orient="index")),
        }
    return result

