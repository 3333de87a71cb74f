import numpy as np
from run_result_factory import run_result

from nsfw_mobilenet.studies import v3_softmax_head


def test_thesis_made_3910_optimizer_steps_in_ten_epochs_of_24998_images():
    assert v3_softmax_head.thesis_optimizer_steps() == 391 * 10


def test_epochs_for_steps_rounds_up_to_whole_epochs():
    assert v3_softmax_head.epochs_for_steps(3910, 507) == 489  # 8 steps per epoch of 507 images
    assert v3_softmax_head.epochs_for_steps(8, 507) == 1


def test_entropy_is_zero_for_a_certain_softmax_and_log_n_for_a_uniform_one():
    certain, uniform = np.eye(1000)[:1], np.full((1, 1000), 1e-3)
    np.testing.assert_allclose(v3_softmax_head.entropy(certain), [0.0], atol=1e-6)
    np.testing.assert_allclose(v3_softmax_head.entropy(uniform), [np.log(1000)], rtol=1e-6)


def test_saturation_table_reports_each_class_input_norms():
    softmax = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
    features = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 1.0]])
    table = v3_softmax_head.saturation_table(softmax, features, np.array([0, 1, 1]), ["roses", "tulips"])
    assert table.loc["roses", "‖softmax‖² (thesis head input)"] == 1.0
    assert table.loc["tulips", "‖softmax‖² (thesis head input)"] == 0.5
    assert table.loc["roses", "‖pooled features‖² (standard head input)"] == 25.0


def test_steps_table_reads_mean_accuracy_over_seeds_after_the_asked_steps():
    def result(seed, accuracies, test):
        return run_result("4.9-steps", 1, seed=seed, val_curve=accuracies, correct=[True] * round(test * 20) + [False] * round(20 - test * 20))

    runs = [result(1, [0.5, 0.6, 0.7, 0.8], 0.75), result(2, [0.5, 0.8, 0.9, 1.0], 0.85)]
    table = v3_softmax_head.steps_table(runs, [8, 20, 1000])
    assert list(table.columns) == ["seeds", "8 steps", "24 steps", "32 steps", "test accuracy"]
    assert table.iloc[0].tolist()[:4] == [2, 0.5, 0.8, 0.9]
    assert table.iloc[0]["test accuracy"].startswith("0.800 ± ")
    assert table.index[0] == "thesis head, SGD lr 0.01, N=10"
    assert v3_softmax_head.accuracy_by_steps(runs)[0] == [8, 16, 24, 32]
