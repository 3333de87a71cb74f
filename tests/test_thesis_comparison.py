"""Runs side by side with the thesis: per run, per configuration over seeds, and paired comparisons."""

from run_result_factory import run_result

from nsfw_mobilenet.core import configs
from nsfw_mobilenet.core.paths import RESULTS_DIR
from nsfw_mobilenet.evaluation import run_results, thesis_comparison


def test_the_terminal_table_of_a_whole_thesis_table_fits_80_columns():
    results = run_results.committed_results("4.1", variant="_lr0.001", root=RESULTS_DIR)
    assert len({r.config.row for r in results}) == 11
    text = thesis_comparison.compact_thesis_vs_run(results).to_string(index=False)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "|" in text.splitlines()[1]  # thesis | run side by side


def test_seeds_of_one_config_make_one_row_with_mean_and_interval():
    results = [run_result("4.9", 4, seed=seed, correct=[True] * k + [False] * (20 - k), val=v)
               for seed, k, v in ((1, 16, 0.80), (2, 17, 0.82), (3, 18, 0.84))]
    table = thesis_comparison.seeds_vs_thesis(results)
    assert len(table) == 1 and table.loc[0, "seeds"] == 3
    assert table.loc[0, "test acc [run]"].startswith("0.850 ± ")
    assert table.loc[0, "steps [thesis]"] == 3910 and table.loc[0, "steps [run]"] == 80


def test_the_compact_table_shows_thesis_and_run_side_by_side_in_nine_columns_and_the_csv_keeps_every_column(tmp_path):
    results = [run_result("4.9", 4, seed=seed, correct=[True] * 16 + [False] * 4) for seed in (1, 2)]
    compact = thesis_comparison.compact_seeds_vs_thesis(results)
    assert list(compact.columns) == ["row", "N", "opt. lr", "DA", "seeds", "steps", "train loss", "val acc", "test acc"]
    assert compact.loc[0, "steps"] == "3910 | 80" and compact.loc[0, "test acc"].startswith("– | 0.800 ± ")
    saved = thesis_comparison.save_seeds_vs_thesis(results, tmp_path / "wide" / "table.csv")
    assert saved.read_text().splitlines()[0].count(",") + 1 == len(thesis_comparison.seeds_vs_thesis(results).columns)


def test_a_single_run_shows_its_wilson_interval():
    table = thesis_comparison.seeds_vs_thesis([run_result("4.9", 4, correct=[True] * 8 + [False] * 2)])
    assert table.loc[0, "test acc [run]"] == "0.800 [0.49, 0.94]"


def test_every_run_is_a_row_with_each_metric_as_thesis_and_run():
    table = thesis_comparison.thesis_vs_run([run_result("4.9", 4, val=0.6)])
    thesis = configs.thesis_row("4.9", 4)["val_accuracy"]
    assert table.loc[0, "val_accuracy [run]"] == 0.6 and table.loc[0, "val_accuracy [thesis]"] == thesis
    assert table.loc[0, "optimizer_steps [thesis]"] == 3910 and table.loc[0, "weights"] == "ImageNet"


def test_the_detectable_difference_is_said_in_points_and_images():
    note = thesis_comparison.detectable_difference_note([run_result(correct=[True] * 140 + [False] * 19)])
    assert note.startswith("159 test images: near accuracy 0.88") and "images) to be told apart" in note


def test_labelled_configurations_are_compared_in_pairs_on_the_same_images():
    a = [run_result(seed=s, correct=[True] * 19 + [False]) for s in (1, 2)]
    b = [run_result(seed=1, correct=[True] * 18 + [False] * 2)]
    table = thesis_comparison.paired_comparisons({"A": a, "B": b}, [("A", "B"), ("A", "missing")])
    assert list(table["comparison"]) == ["A − B"] and "bootstrap" in table.loc[0, "result"]


def test_the_chosen_rows_runs_are_found_with_their_figure_names():
    tables = {("4.1", "proxy"): [run_result("4.1", 6, seed=s, backbone="mobilenet_v1") for s in (1, 2)]}
    [(stem, title, run)] = thesis_comparison.chosen_rows(tables, "proxy")
    pick = configs.thesis_reference()["chosen_rows"]["4.1"]
    assert stem == f"fig_{pick['curves_figure'].replace('.', '_')}_mobilenet_v1_row6" and run.seed == 1
    assert title == "table 4.1 row 6 (ImageNet)"


def test_speed_and_same_training_tables_take_one_seed_and_leave_the_steps_table_out():
    tables = {("4.1", "proxy"): [run_result("4.1", 1, seed=1), run_result("4.1", 2, seed=1), run_result("4.1", 1, seed=2)],
              (thesis_comparison.STEPS_TABLE, "proxy"): [run_result(thesis_comparison.STEPS_TABLE, 1)]}
    speed = thesis_comparison.speed_table(tables)
    assert list(speed.index) == [("4.1", "proxy")] and speed.loc[("4.1", "proxy"), "time_min [run]"] == 1.0
    same = thesis_comparison.same_training_table(tables)
    assert same["rows"].tolist() == [[1, 2]] and same["table"].tolist() == ["4.1"]
