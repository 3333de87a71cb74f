"""Real photo folders given by path, shaped like the thesis's: a train/test split made as symlinks, the harmless
roses-vs-tulips two-class proxy (or the generated stand-in when the photos are absent), and the open-world proxy
(one flower species against everything else, with safe categories no model ever sees in training)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nsfw_mobilenet.io.image_files import SPLIT_SEED, class_names, is_hidden, walk_files
from nsfw_mobilenet.io.standin import ensure_standin


def _link(target: Path, link: Path) -> None:
    """`link` → `target`, kept when it is there (another process may be making the same proxy)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        link.symlink_to(target)


def make_test_split(source: Path | str, out_dir: Path | str, test_fraction: float = 0.2,
                    seed: int = SPLIT_SEED, classes: Sequence[str] | None = None) -> Path:
    """A train/ + test/ view of a dataset that has no test folder, made of symlinks (no copies).

    The thesis kept a separate test set (§4.2); a real dataset given as one ImageFolder gets a
    deterministic per-class hold-out here, so listing 4.4's split then runs on train/ only.
    `classes` keeps only those class folders (e.g. roses and tulips of flower_photos, a two-class proxy).
    """
    source, out_dir = Path(source).resolve(), Path(out_dir)
    rng = np.random.RandomState(seed)
    for name in classes or class_names(source):
        files = sorted(p for p in walk_files(source / name) if not is_hidden(p, source))
        test = set(rng.permutation(len(files))[: int(round(test_fraction * len(files)))])
        for i, path in enumerate(files):
            link = out_dir / ("test" if i in test else "train") / name / path.relative_to(source / name)
            _link(path, link)
    return out_dir


FLOWER_TWO_CLASS_PROXY = ("roses", "tulips")  # harmless two-class proxy: roses play "normal", tulips "sexual"


def two_class_proxy(flower_photos: Path | str, out_dir: Path | str) -> Path:
    """The harmless real-photo two-class proxy: roses vs tulips of flower_photos, with a 20 % test hold-out
    (symlinks). Harder than Caltech airplanes/motorbikes, which every configuration separates."""
    return make_test_split(flower_photos, out_dir, classes=FLOWER_TWO_CLASS_PROXY)


def two_class_data(flower_photos: Path | str, proxy_dir: Path | str, standin_dir: Path | None = None) -> Path:
    """The two-class data of notebooks 02, 03 and 06–08: the roses-vs-tulips proxy, made in `proxy_dir` when the
    `flower_photos` folder exists, else the generated stand-in's binary dataset in `standin_dir` (e.g. on CI)."""
    if Path(flower_photos).is_dir():
        return two_class_proxy(flower_photos, proxy_dir)
    return ensure_standin(standin_dir, progress=False) / "binary"



# ---------------------------------------------------------------- the open-world proxy (issue 23)

SAFE_CLASS = "everything_else"  # sorts before the concept's name, so the concept is the last class: "unsafe"
CONCEPT = ("flower_photos", "tulips")  # the harmless stand-in for the content to detect
HARD_NEGATIVES = ("daisy", "dandelion", "roses")  # flower_photos species seen as safe in training: look like it
BROAD_WORLD = ("caltech101_objects", "caltech101_faces", "caltech101_airplanes_motorbikes")  # everything else
# Safe categories that never appear in training or validation, only in unseen/: a flower and three plants that
# resemble the concept, and every UNSEEN_STRIDE-th other Caltech object category (far-away ones).
UNSEEN_LOOKALIKES = (("flower_photos", "sunflowers"), ("caltech101_objects", "bonsai"),
                     ("caltech101_objects", "joshua_tree"), ("caltech101_objects", "strawberry"))
UNSEEN_STRIDE = 8
NAME_SEPARATOR = "__"  # link names: <source>__<category>__<file name>, so each image names its category


@dataclass(frozen=True)
class OpenWorldProxy:
    """Where the proxy was made, and what is where: images per split and class, and the unseen categories."""

    root: Path
    counts: dict[str, dict[str, int]]  # split → class (or unseen category) → images
    unseen_categories: list[str]

    @property
    def prevalence(self) -> float:
        """The concept's share of the train/ and test/ images (the unseen ones are all safe)."""
        concept = sum(self.counts[split][CONCEPT[1]] for split in ("train", "test"))
        return concept / sum(sum(self.counts[split].values()) for split in ("train", "test"))


def category_of(path: Path | str) -> str:
    """`<source>/<category>` of an image of the open-world proxy, from its link name."""
    source, category, _ = Path(path).name.split(NAME_SEPARATOR, 2)
    return f"{source}/{category}"


def unseen_categories(datasets_dir: Path | str) -> list[tuple[str, str]]:
    """(source, category) of the safe categories kept out of train/ and test/: the look-alikes, then every
    UNSEEN_STRIDE-th Caltech object category in name order (not `background_google`, the web's mixed bag)."""
    objects = [name for name in class_names(Path(datasets_dir) / "caltech101_objects")
               if name != "background_google" and ("caltech101_objects", name) not in UNSEEN_LOOKALIKES]
    return [*UNSEEN_LOOKALIKES, *(("caltech101_objects", name) for name in objects[UNSEEN_STRIDE - 1::UNSEEN_STRIDE])]


def _category_files(datasets_dir: Path, source: str, category: str) -> list[Path]:
    folder = datasets_dir / source / category
    return sorted(p for p in walk_files(folder) if not is_hidden(p, folder))


def _seen_categories(datasets_dir: Path, unseen: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Class name → its (source, category) pairs in train/ and test/."""
    safe = [(CONCEPT[0], name) for name in HARD_NEGATIVES]
    safe += [(source, name) for source in BROAD_WORLD for name in class_names(datasets_dir / source)]
    return {SAFE_CLASS: [pair for pair in safe if pair not in unseen], CONCEPT[1]: [CONCEPT]}


def open_world_proxy(datasets_dir: Path | str, out_dir: Path | str, test_fraction: float = 0.2,
                     seed: int = SPLIT_SEED) -> OpenWorldProxy:
    """The open-world proxy, made of symlinks in `out_dir` (deterministic: the same folders and seed give the same
    files): train/ and test/ with the classes `everything_else` and `tulips` (the concept, the last class, so
    "unsafe"), each category split `test_fraction` to test/ on its own; and unseen/<source>__<category>/, safe
    categories absent from train/ and test/. Every link is named `<source>__<category>__<file>` (`category_of`).
    Listing 4.4's 20 % validation split of train/ then holds over 900 safe images. A README.md in `out_dir` says
    what is where."""
    datasets_dir, out_dir = Path(datasets_dir).resolve(), Path(out_dir)
    unseen = unseen_categories(datasets_dir)
    rng = np.random.RandomState(seed)
    counts: dict[str, dict[str, int]] = {"train": {}, "test": {}, "unseen": {}}
    for class_name, categories in _seen_categories(datasets_dir, unseen).items():
        for source, category in categories:
            files = _category_files(datasets_dir, source, category)
            test = set(rng.permutation(len(files))[: int(round(test_fraction * len(files)))])
            for i, path in enumerate(files):
                split = "test" if i in test else "train"
                _link(path, out_dir / split / class_name / NAME_SEPARATOR.join((source, category, path.name)))
                counts[split][class_name] = counts[split].get(class_name, 0) + 1
    for source, category in unseen:
        folder = NAME_SEPARATOR.join((source, category))
        for path in _category_files(datasets_dir, source, category):
            _link(path, out_dir / "unseen" / folder / NAME_SEPARATOR.join((source, category, path.name)))
        counts["unseen"][f"{source}/{category}"] = len(_category_files(datasets_dir, source, category))
    proxy = OpenWorldProxy(out_dir, counts, [f"{source}/{category}" for source, category in unseen])
    (out_dir / "README.md").write_text(_proxy_readme(proxy))
    (out_dir / "open_world_proxy.json").write_text(json.dumps({"counts": counts, "unseen": proxy.unseen_categories,
                                                               "prevalence": proxy.prevalence}, indent=1))
    return proxy


def open_world_data(datasets_dir: Path | str, proxy_dir: Path | str, standin_dir: Path | None = None) -> Path:
    """The two-class data of notebook 07: the open-world proxy, made in `proxy_dir` when `datasets_dir` holds its
    sources, else the generated stand-in's binary dataset in `standin_dir` (no unseen/ folder)."""
    datasets_dir = Path(datasets_dir)
    if all((datasets_dir / source).is_dir() for source in (CONCEPT[0], *BROAD_WORLD)):
        return open_world_proxy(datasets_dir, proxy_dir).root
    return ensure_standin(standin_dir, progress=False) / "binary"


def unseen_folders(root: Path | str) -> list[Path]:
    """The category folders under `root`/unseen/ (safe photos no model trained on), sorted; [] when there are none."""
    unseen = Path(root) / "unseen"
    return sorted(path for path in unseen.iterdir() if path.is_dir()) if unseen.is_dir() else []


def _proxy_readme(proxy: OpenWorldProxy) -> str:
    unseen = ", ".join(f"{name} ({proxy.counts['unseen'][name]})" for name in proxy.unseen_categories)
    return (f"# Open-world proxy (harmless photos; made by nsfw_mobilenet.io.photo_datasets.open_world_proxy)\n\n"
            f"- Concept to detect (the \"unsafe\" class): `{CONCEPT[1]}` of `{CONCEPT[0]}`.\n"
            f"- Safe (`{SAFE_CLASS}`): the other flower species {', '.join(HARD_NEGATIVES)} (hard negatives), "
            f"and {', '.join(BROAD_WORLD)}.\n"
            f"- Images: train {proxy.counts['train']}, test {proxy.counts['test']}; the concept's prevalence "
            f"{proxy.prevalence:.1%}.\n"
            f"- Never in train/ or test/ (unseen/, all safe): {unseen}.\n"
            f"- Each link is named `<source>{NAME_SEPARATOR}<category>{NAME_SEPARATOR}<file>`.\n")
