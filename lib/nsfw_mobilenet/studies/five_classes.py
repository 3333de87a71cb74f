"""§4.4's five-class datasets: three datasets shaped like the thesis's, derived from one source.

The thesis's datasets are private; their *shapes* are in `reference/thesis_results.yaml`
(`five_class_datasets`). `derive_datasets` cuts three datasets with those shapes out of one source
ImageFolder, as file lists (nothing is copied): Dataset 1 imbalanced, Dataset 2 its balanced
subsample, Dataset 3 larger and balanced ("obtained from the Dataset 1 and filled up with new
images"). Each dataset trains with the thesis's best augmentation for it and is scored on the shared
test set with listing 4.8's errors (`evaluation.evaluate.evaluate_safety`): `section_4_4_experiment`.
"""


from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from nsfw_mobilenet.core.configs import EXPERIMENTS_DIR, ExperimentConfig, load_config, thesis_reference
from nsfw_mobilenet.core.paths import RESULTS_DIR, repo_relative
from nsfw_mobilenet.core.taxonomy import FIVE_CLASS
from nsfw_mobilenet.evaluation import plots
from nsfw_mobilenet.evaluation.evaluate import evaluate_safety, safety_error_matrix
from nsfw_mobilenet.evaluation.run_results import weights_label
from nsfw_mobilenet.io import image_cache, image_files, photo_datasets
from nsfw_mobilenet.io.image_cache import LoadedImages
from nsfw_mobilenet.io.image_files import LabeledImage
from nsfw_mobilenet.io.run_data import RunData, load_run_data
from nsfw_mobilenet.io.standin import ensure_standin
from nsfw_mobilenet.training.train import DEFAULT_CHECKPOINT_DIR, SMOKE_EPOCHS, TrainedRun, train

DATASETS = ("dataset_1", "dataset_2", "dataset_3")
MIN_IMAGES_PER_CLASS = 2
# §5.1's flower proxy: five harmless flower folders standing in for the five class folders.
FLOWER_PROXY = {"daisy": "drawings", "roses": "hentai", "dandelion": "neutral", "tulips": "porn",
                "sunflowers": "sexy"}


# --- Datasets 1–3 --------------------------------------------------------------------------------
def thesis_dataset_shapes() -> dict[str, dict[str, int]]:
    """Images per class of the thesis's Datasets 1–3 (§4.4), read from the reference file."""
    reference = thesis_reference()["five_class_datasets"]
    return {name: dict(reference[name]) for name in DATASETS}


@dataclass(frozen=True)
class DerivedDataset:
    """One of Datasets 1–3 as file lists: listing 4.4's 80 % training and 20 % validation."""

    name: str
    training: list[LabeledImage]
    validation: list[LabeledImage]

    def counts(self) -> dict[str, int]:
        """Images per class, training and validation together (the numbers §4.4 gives)."""
        counts: dict[str, int] = defaultdict(int)
        for item in self.training + self.validation:
            counts[item.label] += 1
        return dict(sorted(counts.items()))

    def proportions(self) -> dict[str, float]:
        counts = self.counts()
        total = sum(counts.values())
        return {label: n / total for label, n in counts.items()}


def largest_scale(available: Mapping[str, int], shapes: Mapping[str, Mapping[str, int]]) -> float:
    """The largest factor at which every dataset's every class still fits in the source."""
    classes = {c for shape in shapes.values() for c in shape}
    return min(available.get(c, 0) / max(shape[c] for shape in shapes.values()) for c in classes)


def dataset_sizes(available: Mapping[str, int], scale: float | None = None,
                  shapes: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """Images per class of each dataset at `scale` × the thesis's sizes (default: the largest that fits).

    Every class keeps at least two images (one to train, one to validate), so that a tiny source
    still has all five classes on both sides of the split.
    """
    shapes = shapes or thesis_dataset_shapes()
    scale = largest_scale(available, shapes) if scale is None else scale
    sizes = {name: {c: max(MIN_IMAGES_PER_CLASS, int(scale * n)) for c, n in shape.items()} for name, shape in shapes.items()}
    for name, size in sizes.items():
        short = {c: f"{n} needed, {available.get(c, 0)} available" for c, n in size.items() if n > available.get(c, 0)}
        if short:
            raise ValueError(f"{name} at scale {scale:.3g} does not fit the source: {short}; lower `scale` "
                             "or use a larger source dataset")
    return sizes


def derive_datasets(pool: Sequence[LabeledImage], *, seed: int = image_files.SPLIT_SEED, scale: float | None = None,
                    validation_split: float = image_files.VALIDATION_SPLIT,
                    shapes: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, DerivedDataset]:
    """Datasets 1–3 of §4.4 cut out of `pool` (the source's training files), deterministic from `seed`.

    Each class is shuffled once and every dataset takes a prefix of that order, which gives the
    thesis's relations: Dataset 2 is a subsample of Dataset 1, and Dataset 3 holds Dataset 1's
    images of its small classes plus new ones. Each dataset is then split per class into training
    and validation (listing 4.4's 80/20, stratified: every class of two or more images has at least
    one validation image and every class keeps at least one training image).
    """
    shapes = shapes or thesis_dataset_shapes()
    by_class: dict[str, list[LabeledImage]] = defaultdict(list)
    for item in sorted(pool, key=lambda item: str(item.path)):
        by_class[item.label].append(item)
    missing = sorted({c for shape in shapes.values() for c in shape} - set(by_class))
    if missing:
        raise ValueError(f"the source has no images of {missing}; found classes {sorted(by_class)}")
    rng = np.random.default_rng(seed)
    order = {label: [items[i] for i in rng.permutation(len(items))] for label, items in sorted(by_class.items())}
    sizes = dataset_sizes({label: len(items) for label, items in order.items()}, scale, shapes)
    datasets = {}
    for number, (name, size) in enumerate(sizes.items()):
        split_rng = np.random.default_rng([seed, number])
        training, validation = [], []
        for label, n in size.items():
            chosen = [order[label][i] for i in split_rng.permutation(n)]
            held_out = min(n - 1, max(1, round(validation_split * n)))
            training += chosen[: n - held_out]
            validation += chosen[n - held_out:]
        datasets[name] = DerivedDataset(name, training, validation)
    return datasets


def subset(decoded: LoadedImages, items: Sequence[LabeledImage]) -> LoadedImages:
    """The already decoded images of `items` (files that failed to decode are left out)."""
    row = {path: i for i, path in enumerate(decoded.paths)}
    wanted = {item.path for item in items}
    kept = [row[item.path] for item in items if item.path in row]
    return LoadedImages(image_cache.select_images(decoded.images, kept), decoded.labels[kept],
                        [decoded.paths[i] for i in kept],
                        decoded.classes, [bad for bad in decoded.bad_files if bad.path in wanted])


@dataclass
class FiveClassData:
    """A five-class source decoded once: its Datasets 1–3 and the shared test set (§4.4)."""

    datasets: dict[str, DerivedDataset]
    decoded: LoadedImages  # every training/validation image of the source
    test: LoadedImages

    def dataset_counts(self) -> dict[str, dict[str, int]]:
        """Images per class of each of Datasets 1–3 (figure and table of notebook 04)."""
        return {name: dataset.counts() for name, dataset in self.datasets.items()}

    def run_data(self, name: str) -> RunData:
        """The `RunData` of one derived dataset."""
        dataset = self.datasets[name]
        return RunData(self.decoded.classes, subset(self.decoded, dataset.training),
                       subset(self.decoded, dataset.validation), self.test)


def prepare(five_class_dir: Path | str, *, smoke: bool = False, seed: int = image_files.SPLIT_SEED,
            progress: bool = True) -> FiveClassData:
    """Decode a five-class ImageFolder (train/ and test/) once and derive Datasets 1–3 from train/.

    Smoke mode starts from `load_run_data`'s few images per class, so the datasets are tiny.
    """
    loaded = load_run_data(five_class_dir, smoke=smoke, progress=progress)
    if loaded.test is None:
        raise FileNotFoundError(f"{five_class_dir}: no test/ folder; §4.4 tests every dataset on one test set")
    if tuple(loaded.classes) != FIVE_CLASS.classes:
        raise ValueError(f"{five_class_dir}: classes {loaded.classes}, expected {FIVE_CLASS.classes}")
    parts = (loaded.training, loaded.validation)
    decoded = LoadedImages(image_cache.concatenate_images([p.images for p in parts]),
                           np.concatenate([p.labels for p in parts]),
                           [path for p in parts for path in p.paths], loaded.classes,
                           [bad for p in parts for bad in p.bad_files])
    pool = [LabeledImage(path, decoded.classes[label]) for path, label in zip(decoded.paths, decoded.labels)]
    return FiveClassData(derive_datasets(pool, seed=seed), decoded, loaded.test)


def flower_proxy(out_dir: Path | str, source: Path | str, mapping: Mapping[str, str] = FLOWER_PROXY) -> Path:
    """A PROXY five-class ImageFolder: flower folders symlinked under the five class names.

    Harmless real photos, so that the five-class plumbing is tried on photographs; the class names
    mean nothing here. Then split into train/ and test/ (symlinks, `photo_datasets.make_test_split`).
    """
    source, out_dir = Path(source).resolve(), Path(out_dir)
    renamed = out_dir / "renamed"
    for flower, label in mapping.items():
        if not (source / flower).is_dir():
            raise FileNotFoundError(f"{source / flower}: missing flower folder; expected {sorted(mapping)}")
        link = renamed / label
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(source / flower, target_is_directory=True)
    return photo_datasets.make_test_split(renamed, out_dir / "split")


def five_class_data(data_dir: Path | str | None, flower_photos: Path | str, proxy_dir: Path | str,
                    standin_dir: Path) -> tuple[Path, str]:
    """(folder, a sentence naming it) of notebook 04's five-class data: `data_dir` when given, else the flower
    proxy made in `proxy_dir` when `flower_photos` exists, else the generated stand-in's five_class/ in `standin_dir`."""
    if data_dir:
        return Path(data_dir), f"data: {repo_relative(data_dir)}"
    if Path(flower_photos).is_dir():
        return (flower_proxy(proxy_dir, flower_photos),
                f"data: PROXY — flower photos under five class names {FLOWER_PROXY}")
    return (ensure_standin(standin_dir, progress=False) / "five_class",
            "data: STAND-IN five_class (abstract images, for plumbing, not accuracy claims)")


def dataset_shapes_table(prepared: FiveClassData) -> Any:
    """Images per class of Datasets 1–3, the thesis's (§4.4) beside the ones derived here."""
    import pandas as pd

    thesis, here = thesis_dataset_shapes(), prepared.dataset_counts()
    return pd.DataFrame({f"{name} [{side}]": counts for name in DATASETS
                         for side, counts in (("thesis", thesis[name]), ("here", here[name]))})


RUNS_DIR = EXPERIMENTS_DIR / "five_classes"  # one config per §4.4/§5.1 training run
FIVE_CLASS_RESULTS_DIR = RESULTS_DIR / "five_class"  # committed full runs of §4.4 and table 5.1
TWO_CLASS_RUN = "two_classes_CDE"  # §5.1: the table 4.17 winner, the first column of table 5.1
SECTION_4_4_RESULTS = "section_4_4_"  # file names of the committed §4.4 results start so


def committed_summaries(prefix: str = SECTION_4_4_RESULTS, folder: Path = FIVE_CLASS_RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """The committed full runs in `folder` (results/five_class/) whose file names start with `prefix`, by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(Path(folder).glob(f"{prefix}*.json"))}


# --- Configs -------------------------------------------------------------------------------------
def load_runs(folder: Path = RUNS_DIR) -> dict[str, ExperimentConfig]:
    """The §4.4/§5.1 training runs, by file stem (`dataset_1_A`, …, `two_classes_CDE`)."""
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no run configs in {folder}")
    return {f.stem: load_config(f) for f in files}


def dataset_of(run: str) -> str:
    """`dataset_2_CDE` → `dataset_2`: the file stem names the dataset a run trains on."""
    return run.rsplit("_", 1)[0]


def best_runs(runs: Mapping[str, ExperimentConfig] | None = None) -> dict[str, str]:
    """Dataset → its run with the thesis's best augmentation (§4.4), the columns of table 5.1."""
    runs = runs or load_runs()
    best = thesis_reference()["five_class_datasets"]["best_augmentation"]
    return {name: f"{name}_{best[name]}" for name in DATASETS if f"{name}_{best[name]}" in runs}


# --- §4.4 end to end -----------------------------------------------------------------------------
def run_summary(trained: TrainedRun, run_data: RunData) -> dict[str, Any]:
    """The small part of a run's result worth keeping in results/five_class/."""
    keep = ("config", "weights", "final", "history", "time_min", "feature_cache")
    return {**{key: trained.result[key] for key in keep}, "counts": run_data.counts()}


def section_4_4_experiment(five_class_dir: Path | str, *, runs: Sequence[str] | None = None,
                           overrides: Mapping[str, Any] | None = None, class_weights: bool = True,
                           smoke: bool = False, seed: int = image_files.SPLIT_SEED, checkpoint_dir: Path | None = None,
                           prepared: FiveClassData | None = None, progress: bool = True,
                           weights_dir: Path | None = None) -> dict[str, Any]:
    """Train `runs` (default: each dataset with its best augmentation) and score them as §4.4 does.

    With `class_weights`, Dataset 1's run is repeated with balanced class weights to show what
    they change on imbalanced data. `overrides` (e.g. a substitute backbone) apply to every run.
    Pass `prepared` (from `prepare`) to reuse decoded images across calls; `weights_dir` is
    the offline ImageNet weights folder.
    """
    overrides = dict(overrides or {})
    if smoke:
        overrides.setdefault("epochs", SMOKE_EPOCHS)
    configs = load_runs()
    chosen = {run: configs[run].with_overrides(**overrides) for run in (runs or best_runs(configs).values())}
    if class_weights:
        first = next(run for run in chosen if dataset_of(run) == DATASETS[0])
        chosen[f"{first}+class_weights"] = chosen[first].with_overrides(class_weights=True)
    prepared = prepared or prepare(five_class_dir, smoke=smoke, seed=seed, progress=progress)
    checkpoints = Path(checkpoint_dir) if checkpoint_dir else DEFAULT_CHECKPOINT_DIR
    result: dict[str, Any] = {
        "data": {"dir": repo_relative(five_class_dir), "datasets": {n: d.counts() for n, d in prepared.datasets.items()},
                 "test": dict(zip(prepared.test.classes,
                                  np.bincount(prepared.test.labels, minlength=len(prepared.test.classes)).tolist())),
                 "bad_files": [str(bad) for bad in prepared.decoded.bad_files + prepared.test.bad_files]},
        "overrides": overrides, "smoke": smoke, "seed": seed, "runs": {},
    }
    for run, config in tqdm(chosen.items(), desc="§4.4 runs", unit="run", disable=not progress):
        run_data = prepared.run_data(dataset_of(run.split("+")[0]))
        trained = train(config, run_data, weights_dir=weights_dir, checkpoint_dir=checkpoints / f"{run}_{seed}",
                        verbose=0)
        safety = evaluate_safety(trained.test_probabilities, prepared.test.labels, prepared.test.classes)
        result["runs"][run] = {**run_summary(trained, run_data), "safety": safety.to_dict()}
    return result


def safety_matrices(result: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(thesis figure, run, listing-4.8 safety result) of each dataset's best run in a §4.4 result: figures 4.18–4.20."""
    figures = thesis_reference()["five_class_datasets"]["confusion_figure"]
    return [(figures[dataset], run, result["runs"][run]["safety"]) for dataset, run in best_runs().items()]


def plot_safety_matrices(result: Mapping[str, Any], detail: str = "") -> list[Any]:
    """Figures 4.18–4.20 of a §4.4 result, listing 4.8's error cells outlined; `detail` joins each title's run name."""
    figures = []
    for figure, run, safety in safety_matrices(result):
        named = f"{run}, {detail}" if detail else run
        title = f"fig. {figure}: {named} ({safety['well_predicted']}/{safety['total']} well predicted)"
        figures.append(plots.plot_safety_confusion_matrix(safety["confusion_matrix"], safety["classes"],
                                                          safety_error_matrix(safety["classes"]), title))
    return figures


def save_safety_matrices(result: Mapping[str, Any], name: str, *, smoke: bool,
                         data_dir: str | Path | None = None) -> list[Path]:
    """Save (and close) figures 4.18–4.20 of the committed result `name` (its file stem) as
    fig_4_18_confusion_<run>_<name without section_4_4_>.png (where: `plots.save_figure`)."""
    import matplotlib.pyplot as plt

    saved = []
    for (figure, run, _), drawn in zip(safety_matrices(result), plot_safety_matrices(result)):
        dataset = name.removeprefix(SECTION_4_4_RESULTS)
        saved.append(plots.save_figure(drawn, f"fig_{figure.replace('.', '_')}_confusion_{run}_{dataset}", smoke=smoke,
                                       data_dir=data_dir))
        plt.close(drawn)
    return saved


def well_predicted_table(result: Mapping[str, Any]) -> Any:
    """§4.4's "well predicted" counts, thesis beside this run, one row per run of `section_4_4_experiment`."""
    import pandas as pd

    thesis = thesis_reference()["five_class_datasets"]
    thesis_total = sum(thesis["test"].values())
    rows = []
    for run, summary in result["runs"].items():
        safety, dataset = summary["safety"], dataset_of(run.split("+")[0])
        rows.append({"run": run, "backbone": summary["config"]["backbone"],
                     "weights": weights_label(summary["weights"]),
                     "training images": summary["counts"]["training"] + summary["counts"]["validation"],
                     "well predicted [thesis]": f"{thesis['well_predicted'][dataset]} / {thesis_total}",
                     "well predicted [here]": f"{safety['well_predicted']} / {safety['total']}",
                     "share [thesis]": thesis["well_predicted"][dataset] / thesis_total,
                     "share [here]": safety["well_predicted"] / safety["total"],
                     "top-1 accuracy [here]": safety["accuracy"]})
    return pd.DataFrame(rows).set_index("run")


def class_weight_table(result: Mapping[str, Any]) -> Any:
    """Per-class recall of Dataset 1's run without and with balanced class weights (rows = classes)."""
    import pandas as pd

    weighted = next((run for run in result["runs"] if run.endswith("+class_weights")), None)
    if weighted is None:
        raise ValueError("no class-weights run in this result; run section_4_4_experiment(class_weights=True)")
    plain = weighted.removesuffix("+class_weights")
    columns = {}
    for label, run in (("without class weights", plain), ("with class weights", weighted)):
        safety = result["runs"][run]["safety"]
        columns[f"recall {label}"] = safety["recall"]
        columns[f"well predicted {label}"] = {"(all)": safety["well_predicted"]}
    columns["training images"] = result["data"]["datasets"][dataset_of(plain)]
    return pd.DataFrame(columns)


def class_weight_tables(result: Mapping[str, Any]) -> list[Any]:
    """`[class_weight_table(result)]` when the result holds a class-weights run, else `[]` (smoke runs)."""
    has_weighted_run = any(run.endswith("+class_weights") for run in result["runs"])
    return [class_weight_table(result)] if has_weighted_run else []
