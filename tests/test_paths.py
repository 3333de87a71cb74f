"""Where things live: the project root of a checkout, and how outputs name a path."""

from pathlib import Path

from nsfw_mobilenet.core import paths


def test_project_root_is_the_checkout_when_the_package_runs_from_one():
    assert paths.PROJECT_ROOT == paths.PACKAGE_DIR.parents[1]
    assert paths.repo_relative(paths.PROJECT_ROOT / "runs" / "x.json") == "runs/x.json"


def test_outputs_name_a_path_under_home_without_the_user_name_and_others_as_given():
    assert paths.repo_relative(Path.home() / "data" / "x") == "~/data/x"
    assert paths.repo_relative("/elsewhere/x") == "/elsewhere/x"


def test_every_output_folder_lies_in_the_project_root():
    for folder in (paths.RESULTS_DIR, paths.FIGURES_DIR, paths.SMOKE_FIGURES_DIR, paths.RUNS_DIR, paths.DATA_DIR,
                   paths.DEFAULT_CACHE_DIR):
        assert folder.is_relative_to(paths.PROJECT_ROOT)


def test_only_a_full_run_on_the_default_data_writes_figures_and_a_users_dataset_writes_under_runs(tmp_path):
    assert paths.figures_folder(smoke=False) == paths.FIGURES_DIR
    assert paths.figures_folder(smoke=True) == paths.figures_folder(smoke=True, data_dir=tmp_path) == \
        paths.SMOKE_FIGURES_DIR
    mine = tmp_path / "my_photos"
    assert paths.figures_folder(smoke=False, data_dir=str(mine)) == paths.RUNS_DIR / "figures" / "my_photos"
