"""Fixtures shared by the specifications. The environment is read here (and in ../conftest.py), never in them."""

import os

import pytest
import tiny_classifier

from nsfw_mobilenet.core.settings import settings_from_environment


@pytest.fixture(scope="session")
def classifier():
    """The tiny trained stand-in for a fine-tuned MobileNet (see tiny_classifier)."""
    return tiny_classifier.trained_classifier()


@pytest.fixture(scope="session")
def offline_weights_dir():
    """The offline ImageNet weights folder (NSFW_MOBILENET_WEIGHTS_DIR: ../shared/weights); skips a test without it."""
    folder = settings_from_environment(os.environ).weights_dir
    if folder is None or not folder.is_dir():
        pytest.skip("needs the offline weights of ../shared/weights (NSFW_MOBILENET_WEIGHTS_DIR)")
    return folder


@pytest.fixture(scope="session")
def environment():
    """The process environment, for the child processes the code under test starts (Kangas)."""
    return settings_from_environment(os.environ).environment
