"""What the environment says about a run (`core.settings`), read at the edges and passed down."""

from pathlib import Path

import pytest

from nsfw_mobilenet.core.settings import DEFAULT_STANDIN_DIR, Settings, settings_from_environment
from nsfw_mobilenet.io.standin import MANIFEST, ensure_standin


def test_settings_come_from_the_weights_folder_and_smoke_variables():
    environment = {"NSFW_MOBILENET_WEIGHTS_DIR": "/weights", "NSFW_MOBILENET_SMOKE": "1"}
    assert settings_from_environment(environment) == Settings(weights_dir=Path("/weights"), smoke=True)


@pytest.mark.parametrize("environment", [{}, {"NSFW_MOBILENET_WEIGHTS_DIR": "", "NSFW_MOBILENET_SMOKE": "0"}])
def test_unset_or_empty_variables_mean_no_weights_folder_and_a_full_run(environment):
    assert settings_from_environment(environment) == Settings(weights_dir=None, smoke=False)


def test_the_stand_in_folder_comes_from_the_data_environment_variable_through_settings(tmp_path):
    settings = settings_from_environment({"NSFW_MOBILENET_DATA": str(tmp_path / "env")})
    assert ensure_standin(settings.standin_dir, images_per_class=4, videos=False, progress=False) == tmp_path / "env"
    assert (tmp_path / "env" / MANIFEST).exists()
    assert settings_from_environment({}).standin_dir == DEFAULT_STANDIN_DIR
