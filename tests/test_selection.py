import json

import pandas as pd

from nsfw_mobilenet import selection


def _result(table, row, backbone, val, test, weights="ImageNet", order="thesis", augmentation="", head="thesis"):
    return {"config": {"table": table, "row": row, "backbone": backbone, "trainable_layers": row,
                       "optimizer": "sgd", "order": order, "augmentation": augmentation, "head": head},
            "weights": {"used": "imagenet", "source": weights},
            "final": {"val_accuracy": val}, "test": {"accuracy": test}}


def test_best_by_validation_breaks_ties_with_the_earlier_row():
    results = [_result("4.9", 2, "mobilenet_v3_small", 0.9, 0.5), _result("4.9", 1, "mobilenet_v3_small", 0.9, 0.6)]
    assert selection.best_by_validation(results)["config"]["row"] == 1


def test_selection_table_joins_best_rows_corrected_da_runs_and_latency(tmp_path):
    def write(folder, result):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"row_{result['config']['row']}_{result['config']['order']}.json").write_text(json.dumps(result))

    write(tmp_path / "table_4.9" / "proxy", _result("4.9", 1, "mobilenet_v3_small", 0.8, 0.7))
    write(tmp_path / "table_4.9" / "proxy", _result("4.9", 4, "mobilenet_v3_small", 0.9, 0.85))
    write(tmp_path / "augmentation" / "proxy" / "corrected",
          _result("4.11", 1, "mobilenet_v3_small", 0.9, 0.88, order="corrected", augmentation="ABCDEF"))
    write(tmp_path / "table_4.13" / "proxy", _result("4.13", 1, "mobilenet_v3_large", 0.5, 0.5, weights="random init"))
    write(tmp_path / "final" / "proxy",
          _result("final", 1, "mobilenet_v3_small", 0.9, 0.91, augmentation="CDE", order="corrected", head="standard"))
    latency = {"rows": [{"model": "mobilenet_v3_small", "variant": "float32", "ms_2_threads": 2.0, "size_bytes": 10e6},
                        {"model": "mobilenet_v3_small", "variant": "int8", "ms_2_threads": 1.5, "size_bytes": 3e6},
                        {"model": "mobilenet_v3_small (standard head)", "variant": "int8", "ms_2_threads": 1.2,
                         "size_bytes": 2e6}]}
    table = selection.selection_table(tmp_path, "proxy", latency)
    small = table.loc["MobileNetV3-Small"]
    assert small["configuration"].startswith("4.9 row 4")
    assert (small["test accuracy (no DA)"], small["test accuracy (with DA, corrected order)"]) == (0.85, 0.88)
    assert (small["int8 ms"], small["int8 MB"]) == (1.5, 3.0)
    assert table.loc["MobileNetV3-Large", "weights"] == "random init"
    assert list(table.index) == ["MobileNetV3-Small", "MobileNetV3-Large", "MobileNetV3-Small, final model"]
    final = table.loc["MobileNetV3-Small, final model"]
    assert pd.isna(final["test accuracy (no DA)"]) and final["test accuracy (with DA, corrected order)"] == 0.91
    assert final["int8 ms"] == 1.2  # the standard head's own benchmark row
    assert pd.isna(table.loc["MobileNetV3-Large", "int8 ms"])  # no benchmark row: no latency made up
