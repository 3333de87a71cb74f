"""What the environment says about a run (`Settings`), read only at the edges.

The command line, the notebooks' parameter cells, the benchmark scripts and the test set-up call
`settings_from_environment(os.environ)` and pass the values down; no module below `cli` reads the
environment.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

WEIGHTS_ENV = "NSFW_MOBILENET_WEIGHTS_DIR"
SMOKE_ENV = "NSFW_MOBILENET_SMOKE"
STANDIN_ENV = "NSFW_MOBILENET_DATA"
DEFAULT_STANDIN_DIR = Path("~/.cache/nsfw-mobilenet/standin").expanduser()  # the generated stand-in dataset


@dataclass(frozen=True)
class Settings:
    """What the environment says about a run.

    `weights_dir`: the folder of offline ImageNet weights (../shared/weights/README.md); None lets
    Keras download them. `smoke`: seconds-long runs on a few images, whose figures never replace
    real ones. `standin_dir`: where the generated stand-in dataset is made and found. `environment`: the whole
    environment, for the child processes that inherit it (Kangas's grid writer and server, `app.kangas_grid`).
    """

    weights_dir: Path | None = None
    smoke: bool = False
    standin_dir: Path = DEFAULT_STANDIN_DIR
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


def settings_from_environment(environ: Mapping[str, str]) -> Settings:
    """`Settings` from NSFW_MOBILENET_WEIGHTS_DIR (a folder; unset or empty: none), NSFW_MOBILENET_SMOKE ("1": on)
    and NSFW_MOBILENET_DATA (the stand-in's folder; unset: ~/.cache/nsfw-mobilenet/standin). The edges (cli,
    notebooks' parameter cells, benchmark scripts, test set-up) hand it `os.environ` and pass the values down."""
    folder, standin = environ.get(WEIGHTS_ENV), environ.get(STANDIN_ENV)
    return Settings(weights_dir=Path(folder) if folder else None, smoke=environ.get(SMOKE_ENV) == "1",
                    standin_dir=Path(standin).expanduser() if standin else DEFAULT_STANDIN_DIR,
                    environment=dict(environ))

