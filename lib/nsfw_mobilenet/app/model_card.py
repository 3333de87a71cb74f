"""Model cards of exported models: what the file is, how well it does, and the operating point it carries.

`model_card.json` is the source of truth, read by `scan` (labels, unsafe classes, threshold, review band) and by app
code; `model_card.md` is generated from it in the usual sections (Mitchell et al., 2019). The measured
fields (calibration, operating point, metrics) come from `card_evidence.measured_fields`, which runs the
exported file itself. Reading a card imports neither TensorFlow nor scikit-learn, so `scan` starts fast.
"""


from __future__ import annotations

import datetime
import json
import math
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nsfw_mobilenet
from nsfw_mobilenet.core.taxonomy import TAXONOMIES, checked_unsafe_classes, default_unsafe_classes
from nsfw_mobilenet.evaluation.operating_point import DEFAULT_OPERATING_POINT, OperatingPoint
from nsfw_mobilenet.evaluation.run_results import BadResultFile, RunResult, load_result

LABELS_FILE = "labels.txt"
CARD_FILE = "model_card.json"
CARD_MARKDOWN_FILE = "model_card.md"
AGREEMENT_TARGET = 0.99  # top-1 agreement of every exported variant with float32 (and Keras) an export must reach
# Card keys (metrics.test) of the float32 export's automatic test decisions that a quantized file repeats, at this
# file's own card point and at the float32 card's point (`card_evidence`)
DECISION_AGREEMENT = "float32_automatic_decision_agreement"
DECISION_AGREEMENT_AT_FLOAT32_POINT = "float32_automatic_decision_agreement_at_float32_point"
DECIMALS = 4  # of every probability, threshold and figure a card or a scan row writes
TEMPERATURE_APPLIED = "inside the graph: the classifier's logits are divided by the temperature before its softmax"

INTENDED_USE = (
    "Flagging possibly sexual images on the device, in apps for child safety, parental control and content "
    "moderation, as the thesis's future work (§6.2) proposes: the app acts alone only outside the review band and "
    "sends every image inside it to a person.")
OUT_OF_SCOPE = (
    "- The only basis of a decision that punishes a person (account bans, reports to authorities) without review.\n"
    "- Detecting child sexual abuse material, estimating age, or identifying people: the model was not trained "
    "for any of these.\n"
    "- Data unlike its training data (other cultures' norms of nudity, drawings when trained on photos) without "
    "first measuring it there.")
ETHICS = (
    "- Errors are not symmetric: a false negative exposes a user to sexual content, a false positive blocks a "
    "harmless image, and which one costs more depends on the app. The operating point makes that choice explicit.\n"
    "- Classifiers of nudity have been found to flag some skin tones, body types and contexts (art, medicine, "
    "breastfeeding) more often; measure the false-positive rate on harmless photos of the people the app serves.\n"
    "- Training such a model requires explicit images; this repository contains none, and whoever trains on a "
    "real dataset is responsible for how it was collected and stored.")


# ---------------------------------------------------------------- reading cards next to a model


def default_classes(num_outputs: int) -> list[str]:
    """Without labels.txt, a model with 2 or 5 outputs is read in the thesis's class order."""
    matches = [t.classes for t in TAXONOMIES.values() if t.num_classes == num_outputs]
    if not matches:
        raise ValueError(f"the model has {num_outputs} outputs, which matches no taxonomy; pass the class names")
    return list(matches[0])


def training_result(model_path: Path | str) -> RunResult | None:
    """The results JSON `train` writes beside its `.keras` model (same name), or None when there is none."""
    path = Path(model_path).with_suffix(".json")
    if not path.is_file():
        return None
    try:
        return load_result(path)
    except BadResultFile as error:
        raise ValueError(f"{error}; it sits beside {Path(model_path).name}, where `train` writes the model's "
                         "results: move or rename it") from None


def rounded(value: Any) -> Any:
    """`value` with every float in it rounded to DECIMALS (dicts and lists walked)."""
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item) for item in value]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _field_error(card_path: Path, name: str, expected: str, holder: Mapping[str, Any] | None, key: str) -> ValueError:
    got = "nothing (missing)" if holder is not None and key not in holder else json.dumps(
        holder[key] if holder is not None else None)[:80]
    return ValueError(f"{card_path}: field `{name}` must be {expected}, got {got}; re-export the model or correct "
                      "the field")


def check_card(card: Any, card_path: Path) -> dict[str, Any]:
    """The fields `scan` and app code read, type-checked: a wrong one is a one-line error naming it, not a
    KeyError at the first image."""
    if not isinstance(card, dict):
        raise ValueError(f"{card_path}: not a model card: a JSON object is expected, got a JSON "
                         f"{type(card).__name__}; re-export the model or remove the file")
    classes = card.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) and c.strip()
                                                                      for c in classes)):
        raise _field_error(card_path, "classes", "a list of class names", card, "classes")
    unsafe = card.get("unsafe_classes")
    if unsafe is not None and not (isinstance(unsafe, list) and all(isinstance(c, str) for c in unsafe)):
        raise _field_error(card_path, "unsafe_classes", "a list of class names", card, "unsafe_classes")
    if unsafe is not None and classes is not None:
        try:
            checked_unsafe_classes(classes, unsafe)
        except ValueError as error:
            raise ValueError(f"{card_path}: field `unsafe_classes`: {error}; re-export the model or correct the "
                             "field") from None
    if card.get("backbone") is not None and not isinstance(card["backbone"], str):
        raise _field_error(card_path, "backbone", "a backbone name", card, "backbone")
    point = card.get("operating_point")
    if point is None:
        return card
    if not isinstance(point, dict):
        raise _field_error(card_path, "operating_point", "an object with threshold and review_band", card,
                           "operating_point")
    if not _is_number(point.get("threshold")):
        raise _field_error(card_path, "operating_point.threshold", "a number", point, "threshold")
    band = point.get("review_band")
    if not (isinstance(band, list) and len(band) == 2 and all(map(_is_number, band))):
        raise _field_error(card_path, "operating_point.review_band", "two numbers [low, high]", point, "review_band")
    return card


def read_card(model_path: Path | str) -> dict[str, Any] | None:
    """The model_card.json next to a model file (`check_card`ed), or None."""
    path = Path(model_path).parent / CARD_FILE
    if not path.exists():
        return None
    try:
        card = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a model card ({error}); re-export the model or remove the file") from None
    return check_card(card, path)


def read_labels(model_path: Path | str) -> list[str] | None:
    """Classes of an exported model, from labels.txt and model_card.json next to it, which must agree (one
    names the outputs, the other the decisions); None if neither names any."""
    labels = Path(model_path).parent / LABELS_FILE
    listed = [line.strip() for line in labels.read_text().splitlines() if line.strip()] if labels.exists() else []
    carded = list((read_card(model_path) or {}).get("classes") or [])
    if listed and carded and listed != carded:
        raise ValueError(f"{labels} says the classes are {listed} but {labels.parent / CARD_FILE} says {carded}; "
                         "they must agree (output order): re-export the model, or correct or remove one of them")
    return listed or carded or None


def operating_point_of(card: Mapping[str, Any] | None) -> OperatingPoint:
    """The threshold and review band a card carries (§6.2's defaults when it carries none)."""
    chosen = (card or {}).get("operating_point")
    if not chosen:
        return DEFAULT_OPERATING_POINT
    return OperatingPoint(float(chosen["threshold"]), tuple(float(b) for b in chosen["review_band"]))


# ---------------------------------------------------------------- the card


def library_versions() -> dict[str, str]:
    """Versions of what made the file, for its card."""
    from importlib.metadata import version

    import keras
    import tensorflow as tf

    return {
        "nsfw_mobilenet": nsfw_mobilenet.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "ai_edge_litert": version("ai-edge-litert"),
        "python": platform.python_version(),
    }


def default_fields() -> dict[str, Any]:
    """What a card says when the export had no labelled validation data to measure on."""
    return {"calibration": None,
            "operating_point": {"threshold": DEFAULT_OPERATING_POINT.threshold,
                                "review_band": list(DEFAULT_OPERATING_POINT.review_band), "chosen_on": None,
                                "note": "§6.2's fixed policy, chosen by no data: export with --data to choose one"},
            "metrics": {}}


def build_model_card(variant: str, classes: Sequence[str], input_shape: Sequence[int], preprocessing: str,
                     size_bytes: int, extra: Mapping[str, Any] | None = None,
                     unsafe_classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything an app developer needs to use the file correctly, floats rounded to DECIMALS; `extra` adds or
    overrides fields such as `backbone`, `training_data` and the `measured_fields`. `unsafe_classes`: the classes
    the card's figures and `scan` count as unsafe (default: `taxonomy.default_unsafe_classes`)."""
    unsafe = checked_unsafe_classes(classes, unsafe_classes or default_unsafe_classes(classes))
    height, width = input_shape[0], input_shape[1]
    card: dict[str, Any] = {
        "format": "tflite",
        "variant": variant,
        "classes": list(classes),
        "unsafe_classes": unsafe,
        "input": {
            "shape": [1, height, width, 3],
            "dtype": "uint8" if variant == "int8" else "float32",
            "pixels": "RGB, 0..255, resized (squashed, bilinear) to the input size",
        },
        "output": {"dtype": "float32", "meaning": "softmax probabilities in the order of `classes`"},
        "preprocessing": preprocessing,
        "decision_rule": "unsafe probability p = sum over unsafe classes; review if low <= p < high (review_band), "
                         "else unsafe if p >= threshold, else safe",
        "training_data": "not given",
        **default_fields(),
        "size_bytes": size_bytes,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    card.update(extra or {})
    return rounded(card)


# ---------------------------------------------------------------- model_card.md


def _percent(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def _details(card: Mapping[str, Any]) -> list[str]:
    notes = {key: card[key] for key in ("hard_swish", "float_ops") if key in card}
    return [f"- **Backbone**: {card.get('backbone', 'not given')}, weights: {card.get('weights', 'not given')}",
            f"- **Training config**: {card.get('config', 'not given')}",
            *([f"- **Keras model's test accuracy** (before conversion): {_percent(card['keras_test_accuracy'])}"]
              if card.get("keras_test_accuracy") is not None else []),
            f"- **File**: TensorFlow Lite, {card['variant']} variant, {card['size_bytes'] / 1e6:.2f} MB",
            f"- **Classes** (output order): {', '.join(card['classes'])}; unsafe: {', '.join(card['unsafe_classes'])}",
            f"- **Input**: {card['input']['dtype']} {card['input']['shape']}, {card['input']['pixels']}",
            f"- **Preprocessing**: {card['preprocessing']}",
            f"- **Decision rule**: {card['decision_rule']}",
            *(f"- **Conversion note** ({key}): {value}" for key, value in notes.items()),
            f"- **Made** {card['date']} with {', '.join(f'{k} {v}' for k, v in card['versions'].items())}"]


def _test_metrics_lines(test: Mapping[str, Any]) -> list[str]:
    roc_auc = "–" if test["roc_auc"] is None else f"{test['roc_auc']:.3f}"
    lines = [f"On {test['images']} held-out test images, running this file with LiteRT:", "",
             f"- accuracy {_percent(test['accuracy'])}, ROC AUC {roc_auc}, ECE {test['ece']:.3f}"]
    if "float32_top1_agreement" in test:
        lines.append(f"- top-1 agreement with the float32 export: {_percent(test['float32_top1_agreement'])}")
    if DECISION_AGREEMENT in test:
        agreed = test[DECISION_AGREEMENT]
        lines.append(f"- of the {agreed['images']} test images the float32 export decides automatically (at its own "
                     f"card's point), this file decides {_percent(agreed['agreement'])} the same way; "
                     f"{agreed['to_review']} go to review instead, {agreed['to_opposite_side']} to the opposite side")
    if DECISION_AGREEMENT_AT_FLOAT32_POINT in test:
        same = test[DECISION_AGREEMENT_AT_FLOAT32_POINT]
        lines.append(f"- at the float32 card's point instead, this file decides {_percent(same['agreement'])} of them "
                     f"the same way ({same['to_review']} to review, {same['to_opposite_side']} to the opposite side)")
    lines += ["", "| class | precision | recall | images |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {_percent(m['precision'])} | {_percent(m['recall'])} | {m['images']} |"
              for name, m in test["per_class"].items()]
    lines += ["", f"Confusion matrix (rows true, columns predicted, order as classes): {test['confusion_matrix']}"]
    return lines


def benign_folders(card: Mapping[str, Any], worst: int | None = None) -> dict[str, Mapping[str, Any]]:
    """The card's harmless-photo folders, most decided unsafe first (then most sent to review); `worst`: that
    many. Empty when the export was given no `--benign` folders."""
    benign = card["metrics"].get("test", {}).get("benign", {})
    ranked = sorted(benign.items(), key=lambda item: (-item[1]["unsafe"], -item[1]["review"], item[0]))
    return dict(ranked[:worst])


APP_GOAL_REVIEW_SHARE = 0.10  # an app whose people can look at one image in ten (the open-world proxy's goal)


def card_against_goals(card: Mapping[str, Any], review_share: float = APP_GOAL_REVIEW_SHARE) -> list[dict[str, Any]]:
    """The card's test figures at its operating point against the targets it was chosen for and a review load an
    app can staff (`review_share`): goal, measured, whether met and by how much it is missed (0 when met)."""
    point = card["operating_point"]
    test = point["test"]
    rows = [("false-positive rate", "at most", point["target_false_positive_rate"], test["false_positive_rate"]),
            ("recall", "at least", point["target_recall"], test["recall"]),
            ("images sent to review", "at most", review_share, 1.0 - test["decided_automatically"])]
    return [{"test figure": name, "goal": f"{side} {_percent(goal)}", "measured": measured,
             "met": measured <= goal if side == "at most" else measured >= goal,
             "missed by": max(0.0, measured - goal if side == "at most" else goal - measured)}
            for name, side, goal, measured in rows]


def _benign_lines(card: Mapping[str, Any]) -> list[str]:
    rows = {**({"all folders": card["metrics"]["test"]["benign_all"]} if len(benign_folders(card)) > 1 else {}),
            **benign_folders(card)}
    lines = ["", "Harmless photos never used in training, at the operating point (most decided unsafe first):", "",
             "| folder | images | unsafe | review | safe |", "|---|---:|---:|---:|---:|"]
    return lines + [f"| {folder} | {s['images']} | {_percent(s['unsafe'])} | {_percent(s['review'])} | "
                    f"{_percent(s['safe'])} |" for folder, s in rows.items()]


def _metrics(card: Mapping[str, Any]) -> list[str]:
    test = card["metrics"].get("test")
    if not test:
        return ["Not measured: the export was given no labelled data (`nsfw-mobilenet export --data`)."]
    lines = _test_metrics_lines(test) if "accuracy" in test else []
    return lines + (_benign_lines(card) if "benign" in test else [])


def _calibration(card: Mapping[str, Any]) -> list[str]:
    fitted = card["calibration"]
    if not fitted:
        return ["None: the probabilities are the network's softmax as trained (no validation data was given)."]
    return [f"Temperature scaling, T = {fitted['temperature']:.3f}, fitted on the Keras model's outputs for the "
            f"{fitted['fitted_on']}; applied {fitted['applied']}, so every runtime gets calibrated probabilities.",
            f"Expected calibration error ({fitted['bins']} bins) on validation: {fitted['ece_before']:.3f} before, "
            f"{fitted['ece_after']:.3f} after; this file: {fitted['ece_this_file_validation']:.3f}."]


def _figures_row(name: str, figures: Mapping[str, Any]) -> str:
    return (f"| {name} | {figures['images']} | {_percent(figures['recall'])} | "
            f"{_percent(figures['false_positive_rate'])} | {_percent(figures['decided_automatically'])} | "
            f"{_percent(figures['error_rate_of_automatic_decisions'])} |")


def _operating_point(card: Mapping[str, Any]) -> list[str]:
    point = card["operating_point"]
    low, high = point["review_band"]
    lines = [f"- **Threshold** {point['threshold']:.6g}: unsafe when p ≥ it, outside the review band",
             f"- **Review band** [{low:.6g}, {high:.6g}): a person decides" + (" (empty)" if low == high else "")]
    if not point.get("chosen_on"):
        return lines + [f"- {point['note']}"]
    lines += [f"- Chosen on the {point['chosen_on']}: the lowest threshold with a false-positive rate of at most "
              f"{_percent(point['target_false_positive_rate'])}, and a band that keeps recall at least "
              f"{_percent(point['target_recall'])}", "",
              "| data | images | recall (unsafe not passed as safe) | false-positive rate (safe decided unsafe) | "
              "decided automatically | errors among automatic decisions |", "|---|---:|---:|---:|---:|---:|"]
    return lines + [_figures_row(name, point[name]) for name in ("validation", "test") if name in point] + \
        _prevalence_lines(point)


def _prevalence_lines(point: Mapping[str, Any]) -> list[str]:
    """Precision and review load where unsafe images are rare or common, from the measured rates."""
    if not point.get("at_prevalence"):
        return []
    return ["", f"At other prevalences of the unsafe class (from the {point['at_prevalence_from']} rates on each "
                "side):", "", "| unsafe share of images | precision of unsafe decisions | decided unsafe | "
                "sent to review |", "|---:|---:|---:|---:|",
            *(f"| {_percent(row['prevalence'])} | {_percent(row['precision_of_unsafe_decisions'])} | "
              f"{_percent(row['decided_unsafe'])} | {_percent(row['sent_to_review'])} |"
              for row in point["at_prevalence"])]


def limitations(card: Mapping[str, Any]) -> list[str]:
    """Limits the card's own figures reveal, plus those of any classifier trained on few classes."""
    found = [f"- Training data: {card['training_data']}. The model knows only these classes; photos unlike all of "
             "them (e.g. vehicles for a model trained on flowers) can get confident, wrong verdicts: measure the "
             "false-positive rate on harmless photos of the app's users (`--benign`)."]
    point = card["operating_point"]
    if point.get("chosen_on"):
        safe_images = sum(point["validation"]["decisions"]["safe"].values())
        if point["target_false_positive_rate"] * safe_images < 1:
            found.append(f"- The false-positive target ({_percent(point['target_false_positive_rate'])}) rests on "
                         f"{safe_images} safe validation images, where one image is {_percent(1 / safe_images)}: the "
                         "threshold sits above every safe validation image, and the rate it achieves is only known "
                         "to that resolution. More validation data gives a lower, better-supported threshold.")
    agreement = card["metrics"].get("test", {}).get("float32_top1_agreement")
    if agreement is not None and agreement < AGREEMENT_TARGET:
        found.append(f"- This {card['variant']} file changes the top-1 class of {_percent(1 - agreement)} of the test "
                     "images compared with the float32 export.")
    agreed = card["metrics"].get("test", {}).get(DECISION_AGREEMENT)
    if agreed and agreed["agreement"] < 1.0:
        found.append(f"- Of the test images the float32 export decides automatically, this file decides "
                     f"{_percent(1 - agreed['agreement'])} differently ({agreed['to_opposite_side']} on the opposite "
                     "side).")
    return found


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """The card in the usual sections, generated from the JSON (the source of truth)."""
    sections = {
        "Model details": _details(card),
        "Intended use": [INTENDED_USE],
        "Out-of-scope uses": [OUT_OF_SCOPE],
        "Training and evaluation data": [f"- Training: {card['training_data']}",
                                         f"- Calibration and operating point: "
                                         f"{card['operating_point'].get('chosen_on') or 'none (no data given)'}"],
        "Metrics": _metrics(card),
        "Calibration": _calibration(card),
        "Operating point": _operating_point(card),
        "Limitations": limitations(card),
        "Ethical considerations": [ETHICS],
    }
    lines = [f"# Model card: {card.get('backbone', 'model')} ({card['variant']})", ""]
    for title, body in sections.items():
        lines += [f"## {title}", "", *body, ""]
    return "\n".join(lines)

