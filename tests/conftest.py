"""Fixtures shared by the export and scan specifications."""

import pytest

import tiny_classifier


@pytest.fixture(scope="session")
def classifier():
    """The tiny trained stand-in for a fine-tuned MobileNet (see tiny_classifier)."""
    return tiny_classifier.trained_classifier()
