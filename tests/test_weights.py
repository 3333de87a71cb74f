"""Offline ImageNet weights (`io.weights`): md5-checked files from the folder the edges name, never silently random."""

import pytest

from nsfw_mobilenet.core import backbones
from nsfw_mobilenet.io.weights import WeightsChecksumError, local_weights_path, resolve_weights, weights_source
from nsfw_mobilenet.training import models


def test_wrong_md5_names_the_file_and_what_to_do(tmp_path):
    fake = tmp_path / backbones.BACKBONES["mobilenet_v1"].offline_top.name
    fake.write_bytes(b"not weights")
    with pytest.raises(WeightsChecksumError, match=str(fake)) as error:
        models.build_backbone("mobilenet_v1", "imagenet", weights_dir=tmp_path)
    assert "md5" in str(error.value)


def test_random_init_is_only_used_when_asked_for(tmp_path):
    assert resolve_weights("mobilenet_v2", None, weights_dir=tmp_path) is None
    assert resolve_weights("mobilenet_v2", "imagenet", weights_dir=tmp_path) == "imagenet"  # Keras downloads


def test_the_library_never_reads_the_weights_folder_from_the_environment(tmp_path, monkeypatch):
    """The folder is passed down from the edges (cli, notebooks' parameter cells, test set-up)."""
    (tmp_path / backbones.BACKBONES["mobilenet_v1"].offline_top.name).write_bytes(b"not weights")
    monkeypatch.setenv(models.WEIGHTS_ENV, str(tmp_path))
    assert local_weights_path("mobilenet_v1") is None
    with pytest.raises(WeightsChecksumError):
        local_weights_path("mobilenet_v1", weights_dir=tmp_path)


@pytest.mark.parametrize("include_top", [True, False])
def test_offline_v2_v3_small_files_are_md5_checked_for_top_and_no_top(tmp_path, include_top):
    for name in ("mobilenet_v2", "mobilenet_v3_small"):
        fake = tmp_path / backbones.get_backbone(name).offline_file(include_top).name
        fake.write_bytes(b"not weights")
    for name in ("mobilenet_v2", "mobilenet_v3_small"):
        with pytest.raises(WeightsChecksumError, match="md5"):
            local_weights_path(name, include_top, weights_dir=tmp_path)


def test_outputs_name_dequantized_weights_and_random_init(tmp_path):
    empty = tmp_path  # nothing offline
    assert weights_source("mobilenet_v3_small", None, weights_dir=empty) == backbones.RANDOM_INIT
    assert weights_source("mobilenet_v3_small", "imagenet", weights_dir=empty) == backbones.IMAGENET  # Keras's own


def test_offline_v2_and_v3_small_weights_say_dequantized_from_tflite(offline_weights_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(models.WEIGHTS_ENV, str(tmp_path))  # the folder passed wins over the environment's
    for name in ("mobilenet_v2", "mobilenet_v3_small"):
        source = weights_source(name, "imagenet", weights_dir=offline_weights_dir)
        assert source == "ImageNet (dequantized from TFLite)"
        assert "dequantized from TFLite" in models.weights_for_run(name, offline_weights_dir)[1]
    assert weights_source("mobilenet_v1", "imagenet", weights_dir=offline_weights_dir) == "ImageNet"
