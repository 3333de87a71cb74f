"""Both augmentation orders of a DA config: their committed runs, their curves side by side, the destroyed images."""

import json

import pytest
from run_result_factory import result_dict, run_result, write_result

from nsfw_mobilenet.studies import augmentation_order


def test_the_curves_of_one_da_table_are_labelled_by_order_for_one_seed():
    runs = [run_result("4.11", 1, seed=s, augmentation="ABCDEF", order=o, val_curve=[0.5, v])
            for s, o, v in ((1, "thesis", 0.6), (1, "corrected", 0.7), (2, "corrected", 0.9))]
    runs.append(run_result("4.3", 1, augmentation="ABCDEF", order="thesis", backbone="mobilenet_v1"))
    histories = augmentation_order.order_histories(runs, "4.11")
    assert {order: h["val_accuracy"][-1] for order, h in histories.items()} == {"thesis order": 0.6,
                                                                               "corrected order": 0.7}


def test_committed_runs_of_both_orders_are_read_per_dataset(tmp_path):
    for order in ("thesis", "corrected"):
        write_result(tmp_path / "augmentation" / "proxy" / order, result_dict("4.11", 1, augmentation="ABCDEF",
                                                                              order=order))
    committed = augmentation_order.committed_order_comparisons(tmp_path)
    assert [r.config.order for r in committed["proxy"]] == ["corrected", "thesis"]
    assert len(augmentation_order.order_effect(committed["proxy"])) == 1


def test_the_committed_destroyed_fraction_is_a_table_or_none(tmp_path):
    assert augmentation_order.committed_destroyed_fractions(tmp_path) is None
    (tmp_path / "augmentation").mkdir()
    (tmp_path / "augmentation" / augmentation_order.DESTROYED_FRACTION_FILE).write_text(json.dumps(
        {"images": 256, "criterion": "constant image", "destroyed_fraction": {"thesis": {"A": 0.0}}}))
    what, table = augmentation_order.committed_destroyed_fractions(tmp_path)
    assert what == "256 real photos (constant image)" and table.loc["thesis", "A"] == 0.0


def test_order_effect_pairs_each_config_s_two_orders_and_measures_their_gap():
    def result(order, history, test):
        return run_result("4.11", 1, augmentation="ABCDEF", order=order, val_curve=history,
                          correct=[True] * round(test * 10) + [False] * round(10 - test * 10))

    same = augmentation_order.order_effect([result("thesis", [0.5, 0.8], 0.7), result("corrected", [0.5, 0.8], 0.7)])
    assert same.loc[0, "largest per-epoch val. gap"] == 0.0 and same.loc[0, "McNemar p (test)"] == 1.0
    apart = augmentation_order.order_effect([result("thesis", [0.5, 0.3], 0.3), result("corrected", [0.6, 0.9], 0.9)])
    assert apart.loc[0, "largest per-epoch val. gap"] == pytest.approx(0.6)
    assert augmentation_order.order_effect([result("thesis", [0.5], 0.5)]).empty  # one order alone is no comparison
