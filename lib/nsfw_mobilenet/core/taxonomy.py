"""The thesis's two label sets as data, with the safe/unsafe mapping of §5.1 and the error rules of
listing 4.8 (`Taxonomy.safety_error`) and table 5.1 (`is_wrong`): their one home; `evaluate` counts with them.

Folder names follow the public nsfw_data_scraper / nsfw_model datasets, so a
real dataset laid out like theirs is read without renaming anything.
"""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SAFE = "safe"
UNSAFE = "unsafe"


@dataclass(frozen=True)
class Taxonomy:
    """An ordered label set; class order is the alphabetical folder order Keras uses."""

    name: str
    classes: tuple[str, ...]
    unsafe_classes: frozenset[str]
    # Listing 4.8 groups: a prediction inside the true label's group is not an error.
    error_groups: tuple[frozenset[str], ...]

    def __post_init__(self) -> None:
        if list(self.classes) != sorted(self.classes):
            raise ValueError(f"{self.name}: classes must be sorted like Keras folder order")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def index(self, label: str) -> int:
        """Position of `label` in the model's output vector."""
        try:
            return self.classes.index(label)
        except ValueError:
            raise KeyError(f"{label!r} is not a {self.name} class; expected one of {self.classes}") from None

    def is_unsafe(self, label: str) -> bool:
        self.index(label)
        return label in self.unsafe_classes

    def safety(self, label: str) -> str:
        """`"safe"` or `"unsafe"` (§5.1: sexy counts as unsafe)."""
        return UNSAFE if self.is_unsafe(label) else SAFE

    def unsafe_indices(self) -> list[int]:
        return [i for i, c in enumerate(self.classes) if c in self.unsafe_classes]

    def safety_error(self, true_label: str, predicted_label: str) -> bool:
        """Whether a prediction is a safety-relevant error (listing 4.8).

        Confusing two harmless classes (drawings ↔ neutral) or two explicit ones
        (hentai ↔ porn) is not an error; a sexy image must be predicted sexy.
        """
        self.index(true_label)
        self.index(predicted_label)
        return not any(true_label in g and predicted_label in g for g in self.error_groups)


BINARY = Taxonomy(
    name="binary",
    classes=("normal", "sexual"),
    unsafe_classes=frozenset({"sexual"}),
    error_groups=(frozenset({"normal"}), frozenset({"sexual"})),
)

FIVE_CLASS = Taxonomy(
    name="five_class",
    classes=("drawings", "hentai", "neutral", "porn", "sexy"),
    unsafe_classes=frozenset({"hentai", "porn", "sexy"}),
    error_groups=(frozenset({"drawings", "neutral"}), frozenset({"hentai", "porn"}), frozenset({"sexy"})),
)

TAXONOMIES = {t.name: t for t in (BINARY, FIVE_CLASS)}


def taxonomy_for_classes(classes: list[str] | tuple[str, ...]) -> Taxonomy:
    """The known taxonomy whose class folders are exactly `classes`."""
    for taxonomy in TAXONOMIES.values():
        if tuple(sorted(classes)) == taxonomy.classes:
            return taxonomy
    raise ValueError(
        f"class folders {sorted(classes)} match no taxonomy; expected {BINARY.classes} or {FIVE_CLASS.classes}"
    )


def taxonomy_or_proxy(classes: list[str] | tuple[str, ...]) -> Taxonomy:
    """The thesis taxonomy of `classes`, or for a proxy dataset with other class folders (roses vs
    tulips) a plain label set: every mismatch is an error and the last class plays the unsafe one."""
    try:
        return taxonomy_for_classes(classes)
    except ValueError:
        ordered = tuple(sorted(classes))
        return Taxonomy(name="proxy", classes=ordered, unsafe_classes=frozenset(ordered[-1:]),
                        error_groups=tuple(frozenset({c}) for c in ordered))


def default_unsafe_classes(classes: Sequence[str]) -> list[str]:
    """The classes that count as unsafe unless a user names them: the thesis's (§5.1) where `classes` are a
    taxonomy's, else the last class in folder order, as training counts a proxy's (`taxonomy_or_proxy`)."""
    unsafe = taxonomy_or_proxy(list(classes)).unsafe_classes
    return [name for name in classes if name in unsafe]


def checked_unsafe_classes(classes: Sequence[str], unsafe: Sequence[str]) -> list[str]:
    """`unsafe` in output order, once each; ValueError when one is not among `classes` or none is given."""
    unknown = [name for name in unsafe if name not in classes]
    if unknown:
        raise ValueError(f"unsafe class {', '.join(map(repr, unknown))} is not one of the classes {list(classes)}")
    if not unsafe:
        raise ValueError(f"no unsafe class given; name one of the classes {list(classes)}")
    return [name for name in classes if name in unsafe]


def cross_taxonomy_correct(true_label: str, true_taxonomy: Taxonomy, predicted_label: str,
                           predicted_taxonomy: Taxonomy) -> bool:
    """§5.1: a prediction from another label set is right when its safety matches the truth's."""
    return true_taxonomy.safety(true_label) == predicted_taxonomy.safety(predicted_label)


def is_wrong(true_label: str, true_taxonomy: Taxonomy, predicted_label: str, predicted_taxonomy: Taxonomy) -> bool:
    """§5.1's rule for table 5.1: listing 4.8 within one label set, safe/unsafe disagreement across label sets."""
    if true_taxonomy is predicted_taxonomy:
        return true_taxonomy.safety_error(true_label, predicted_label)
    return not cross_taxonomy_correct(true_label, true_taxonomy, predicted_label, predicted_taxonomy)

