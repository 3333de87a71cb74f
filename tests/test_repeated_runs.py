"""Figure 4.17 as a spread: each configuration's seeds, the thesis's values of its own rows, paired comparisons."""

import pytest
from run_result_factory import result_dict, write_result

from nsfw_mobilenet.core import configs
from nsfw_mobilenet.studies import repeated_runs


def test_each_configuration_with_runs_is_a_group_and_only_thesis_rows_get_a_thesis_value(tmp_path):
    for seed in (1, 2, 3):
        write_result(tmp_path / "table_4.17" / "proxy", result_dict("4.17", 9, seed=seed, val=0.8 + seed / 100))
        write_result(tmp_path / "final" / "proxy_sgd", result_dict("final", 1, seed=seed, val=0.9))
    write_result(tmp_path / "table_4.17" / "proxy", result_dict("4.17", 2, seed=1))  # not in the spread
    groups = repeated_runs.spread_groups("proxy", tmp_path)
    assert list(groups) == ["4.17 row 9: CDE", "final: standard head, SGD"]
    values, thesis = repeated_runs.validation_spread(groups)
    assert values["4.17 row 9: CDE"] == pytest.approx([0.81, 0.82, 0.83])
    assert thesis == {"4.17 row 9: CDE": configs.thesis_row("4.17", 9)["val_accuracy"]}


def test_only_the_pairs_present_are_compared(tmp_path):
    for seed in (1, 2):
        write_result(tmp_path / "final" / "proxy", result_dict("final", 1, seed=seed, correct=[True] * 19 + [False]))
        write_result(tmp_path / "final" / "proxy_sgd", result_dict("final", 1, seed=seed, correct=[True] * 15 + [False] * 5))
    table = repeated_runs.spread_comparisons(repeated_runs.spread_groups("proxy", tmp_path))
    assert list(table["comparison"]) == ["final: standard head, Adam − final: standard head, SGD"]
