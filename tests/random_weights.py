"""Configs for tests of the training mechanics: random initialisation, asked for (no weights files, no download)."""

import dataclasses

from nsfw_mobilenet.core.configs import ExperimentConfig


def random_init(config: ExperimentConfig) -> ExperimentConfig:
    """`config` starting from random weights (`train --weights random`); `with_overrides` ignores None."""
    return dataclasses.replace(config, weights=None)
