import pandas as pd
import pytest
from run_result_factory import result_dict, write_result

from nsfw_mobilenet.evaluation.run_results import RunResult
from nsfw_mobilenet.studies import backbone_selection


def _result(table, row, backbone, val, test, weights="ImageNet", order="thesis", augmentation="", head="thesis",
            seed=1, images=20):
    right = round(test * images)
    return result_dict(table, row, backbone=backbone, trainable_layers=row, val=val, weights=weights, order=order,
                       augmentation=augmentation, head=head, seed=seed, correct=[True] * right + [False] * (images - right))


def test_best_by_validation_breaks_ties_with_the_earlier_row():
    results = [_result("4.9", 2, "mobilenet_v3_small", 0.9, 0.5), _result("4.9", 1, "mobilenet_v3_small", 0.9, 0.6)]
    assert backbone_selection.best_by_validation(list(map(RunResult.from_dict, results)))[0].config.row == 1


def test_best_by_validation_averages_each_rows_seeds():
    results = [_result("4.9", 1, "mobilenet_v3_small", 0.95, 0.9, seed=1),
               _result("4.9", 1, "mobilenet_v3_small", 0.60, 0.6, seed=2),
               _result("4.9", 2, "mobilenet_v3_small", 0.85, 0.8, seed=1),
               _result("4.9", 2, "mobilenet_v3_small", 0.85, 0.8, seed=2)]
    best = backbone_selection.best_by_validation(list(map(RunResult.from_dict, results)))
    assert [r.config.row for r in best] == [2, 2]


def test_selection_table_joins_best_rows_corrected_da_runs_and_latency(tmp_path):
    write = write_result

    write(tmp_path / "table_4.9" / "proxy", _result("4.9", 1, "mobilenet_v3_small", 0.8, 0.7))
    write(tmp_path / "table_4.9" / "proxy", _result("4.9", 4, "mobilenet_v3_small", 0.9, 0.85))
    write(tmp_path / "table_4.9" / "proxy", _result("4.9", 4, "mobilenet_v3_small", 0.9, 0.85, seed=2))
    write(tmp_path / "augmentation" / "proxy" / "corrected",
          _result("4.11", 1, "mobilenet_v3_small", 0.9, 0.88, order="corrected", augmentation="ABCDEF"))
    write(tmp_path / "table_4.13" / "proxy", _result("4.13", 1, "mobilenet_v3_large", 0.5, 0.5, weights="random init"))
    write(tmp_path / "final" / "proxy",
          _result("final", 1, "mobilenet_v3_small", 0.9, 0.9, augmentation="CDE", order="corrected", head="standard"))
    latency = {"rows": [{"model": "mobilenet_v3_small", "variant": "float32", "ms_2_threads": 2.0, "size_bytes": 10e6},
                        {"model": "mobilenet_v3_small", "variant": "int8", "ms_2_threads": 1.5, "size_bytes": 3e6},
                        {"model": "mobilenet_v3_small (standard head)", "variant": "int8", "ms_2_threads": 1.2,
                         "size_bytes": 2e6}]}
    table = backbone_selection.selection_table(tmp_path, "proxy", latency)
    small = table.loc["MobileNetV3-Small"]
    assert small["configuration"].startswith("4.9 row 4")
    assert (small["test accuracy (no DA)"], small["test accuracy (with DA, corrected order)"]) == (0.85, 0.9)
    assert small["seeds (no DA)"] == 2
    assert (small["int8 ms"], small["int8 MB"]) == (1.5, 3.0)
    assert table.loc["MobileNetV3-Large", "weights"] == "random init"
    assert list(table.index) == ["MobileNetV3-Small", "MobileNetV3-Large", "MobileNetV3-Small, final model"]
    final = table.loc["MobileNetV3-Small, final model"]
    assert pd.isna(final["test accuracy (no DA)"]) and final["test accuracy (with DA, corrected order)"] == 0.9
    assert final["int8 ms"] == 1.2  # the standard head's own benchmark row
    assert pd.isna(table.loc["MobileNetV3-Large", "int8 ms"])  # no benchmark row: no latency made up


def test_the_most_accurate_candidate_is_tested_against_each_other_on_the_same_images(tmp_path):
    for seed in (1, 2, 3):
        for table, backbone, test in (("4.1", "mobilenet_v1", 0.95), ("4.9", "mobilenet_v3_small", 0.5)):
            write_result(tmp_path / f"table_{table}" / "proxy", _result(table, 1, backbone, 0.9, test, seed=seed, images=60))
    comparisons = backbone_selection.selection_comparisons(tmp_path, "proxy")
    row = comparisons.loc["MobileNetV1 − MobileNetV3-Small"]
    assert row["test acc difference"] == pytest.approx(0.45) and row["verdict"] == "a difference" and row["seeds"] == (3, 3)
