"""§4.2.5 redone: each backbone's best configuration, its test accuracy and its on-device cost.

The thesis picked MobileNetV3-Small by comparing the four backbones' runs with all six augmentations
(tables 4.3, 4.7, 4.11, 4.15), in which listing 4.5's order fed V1 and V2 destroyed images. Here each
backbone is represented by (a) its best row without augmentation, chosen on validation accuracy as
the thesis chose, and (b) its all-six-augmentations run in the corrected order; beside them stand
LiteRT latency (batch 1, 2 threads) and file size from `benchmarks/latency.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from .augment import da_table
from .experiments import load_result, weights_name
from .models import BACKBONES

NO_AUGMENTATION_TABLES = {"mobilenet_v1": "4.1", "mobilenet_v2": "4.5", "mobilenet_v3_small": "4.9",
                          "mobilenet_v3_large": "4.13"}  # §4.2.1–4.2.4


def best_by_validation(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row the thesis's rule picks: highest validation accuracy (ties: the earlier row)."""
    return max(results, key=lambda r: (r["final"]["val_accuracy"], -r["config"]["row"]))


def _results(folder: Path) -> list[dict[str, Any]]:
    return [load_result(path) for path in sorted(folder.glob("*.json"))]


def latency_model_name(backbone: str, head: str = "thesis") -> str:
    """How `benchmarks/latency.py` names a model: the backbone for the thesis head, else "<backbone> (<head> head)"."""
    return backbone if head == "thesis" else f"{backbone} ({head} head)"


def latency_rows(latency: dict[str, Any], backbone: str, head: str = "thesis") -> dict[str, dict[str, Any]]:
    """The benchmark's rows of one model, by variant."""
    name = latency_model_name(backbone, head)
    return {row["variant"]: row for row in latency["rows"] if row["model"] == name}


def _row(label: str, table: str, best: dict[str, Any], augmented: dict[str, Any] | None,
         timings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config = best["config"]
    row = {"model": label, "weights": weights_name(best),
           "configuration": f"{table} row {config['row']} (N={config['trainable_layers']}, {config['optimizer']}, "
                            f"{config['head']} head, DA {config['augmentation'] or '-'})",
           "test accuracy (no DA)": None if config["augmentation"] else best["test"]["accuracy"],
           "test accuracy (with DA, corrected order)": augmented["test"]["accuracy"] if augmented else None}
    for variant in ("float32", "int8"):
        timing = timings.get(variant, {})
        row[f"{variant} ms"] = timing.get("ms_2_threads")
        row[f"{variant} MB"] = timing["size_bytes"] / 1e6 if timing else None
    return row


def selection_table(results_root: Path | str, dataset: str, latency: dict[str, Any]) -> Any:
    """One row per backbone: best no-augmentation row (by validation accuracy) and its all-six-techniques
    run in the corrected order, test accuracy, weights, LiteRT ms (2 threads) and MB for float32 and int8;
    then the final model (`results/final/<dataset>`), when there is one."""
    import pandas as pd

    root = Path(results_root)
    rows = []
    for backbone, table in NO_AUGMENTATION_TABLES.items():
        plain = _results(root / f"table_{table}" / dataset)
        augmented = [r for r in _results(root / "augmentation" / dataset / "corrected")
                     if r["config"]["table"] == da_table(backbone)]
        if plain:
            rows.append(_row(BACKBONES[backbone].title, table, best_by_validation(plain),
                             augmented[0] if augmented else None, latency_rows(latency, backbone)))
    for final in _results(root / "final" / dataset):
        config = final["config"]
        rows.append(_row(f"{BACKBONES[config['backbone']].title}, final model", "final", final, final,
                         latency_rows(latency, config["backbone"], config["head"])))
    return pd.DataFrame(rows).set_index("model")


def load_latency(path: Path | str) -> dict[str, Any]:
    """`benchmarks/results/latency.json`, with the load average it was measured under."""
    return json.loads(Path(path).read_text())
