"""Training on more than one device or host with TensorFlow's own engine (`tf.distribute`), and mixed precision.

`mirrored` puts a replica of the model on every GPU of this host (`MirroredStrategy`); `multi-worker`
on every device of every host of the cluster that `TF_CONFIG` describes (`MultiWorkerMirroredStrategy`,
which reads TF_CONFIG itself). Keras splits each batch of the training data, the global batch (§4.1's
64), evenly across the replicas and sums their gradients, so N replicas take the same steps as one
device, up to rounding and dropout (each replica draws its own masks). BatchNormalization is frozen
in every thesis config (`models.freeze_all_but_last`), so per-replica batch statistics never enter.

Mixed precision ("mixed_float16": float16 compute, float32 variables, float32 softmax output) is for
GPUs with float16 units; on a CPU it runs, slower.
"""


from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

STRATEGIES = ("default", "mirrored", "multi-worker")
FLOAT32 = "float32"
MIXED_FLOAT16 = "mixed_float16"
# What every result was trained with before `--strategy` existed: results without a record count as this.
SINGLE_DEVICE = {"strategy": "default", "replicas": 1, "precision": FLOAT32}


@dataclass(frozen=True)
class Distribution:
    """A `tf.distribute` strategy under its `STRATEGIES` name, and the precision of the layers built in `scope`."""

    name: str
    strategy: Any
    mixed_precision: bool = False

    @property
    def replicas(self) -> int:
        """Devices that each take an equal share of every batch (over all hosts)."""
        return int(self.strategy.num_replicas_in_sync)

    @property
    def precision(self) -> str:
        return MIXED_FLOAT16 if self.mixed_precision else FLOAT32

    @property
    def task(self) -> tuple[str | None, int | None, dict[str, list[str]]]:
        """(task type, task index, cluster) of this process in a multi-worker cluster; (None, None, {}) alone."""
        resolver = self.strategy.cluster_resolver
        if resolver is None:
            return None, None, {}
        return resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict()

    @property
    def is_chief(self) -> bool:
        """Whether this process writes results: every worker trains, one writes."""
        return is_chief_task(*self.task)

    def worker_folder(self, folder: Path) -> Path:
        """`folder` for the chief; a subfolder per other worker, whose checkpoints must not overwrite the chief's."""
        task_type, task_id, _ = self.task
        return folder if self.is_chief else folder / f"{task_type}_{task_id}"

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Variables made inside are mirrored on every replica, layers compute in `precision`."""
        with precision_policy(self.precision), self.strategy.scope():
            yield


def is_chief_task(task_type: str | None, task_id: int | None, cluster: dict[str, list[str]]) -> bool:
    """TensorFlow's convention: the "chief" task, else worker 0 of a cluster without one, else a lone process."""
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def make_strategy(name: str) -> Any:
    """The `tf.distribute` strategy called `name` in `STRATEGIES`.

    "mirrored" takes every GPU of this host (the CPU when there is none); "multi-worker" reads the
    cluster from TF_CONFIG and must be made before TensorFlow runs anything else.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        try:
            _refuse_several_workers(tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec())
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as error:  # a bad TF_CONFIG is a ValueError (JSONDecodeError)
            raise ValueError(f"multi-worker strategy: {error}; TF_CONFIG must be the JSON cluster and task of "
                             "this host, and the strategy made first thing in the process") from error
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def _refuse_several_workers(cluster: Any) -> None:
    """Refuse a cluster of more than one host up front, before any data is decoded: Keras 3.15's `fit` fails
    there under MultiWorkerMirroredStrategy (keras-team/keras#20585, open; reproduced with two local workers)."""
    hosts = sum(len(cluster.as_dict().get(task, [])) for task in ("chief", "worker"))
    if hosts > 1:
        raise ValueError(f"TF_CONFIG names {hosts} hosts, and Keras 3's model.fit fails with more than one "
                         "(keras-team/keras#20585, open upstream); train on one host with --strategy mirrored")


def distribution(name: str = "default", mixed_precision: bool = False) -> Distribution:
    """The strategy called `name` and the precision policy for a run (`train.train(distribution=...)`)."""
    return Distribution(name, make_strategy(name), mixed_precision)


def setup(run_distribution: Distribution | None) -> dict[str, Any]:
    """What results record of a run's devices and precision, and what must match for a result to be reused:
    a 4-GPU or float16 run is another run than a one-device float32 one. None: `SINGLE_DEVICE`."""
    if run_distribution is None:
        return dict(SINGLE_DEVICE)
    return {"strategy": run_distribution.name, "replicas": run_distribution.replicas,
            "precision": run_distribution.precision}


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Keras layers built inside compute in `name` ("mixed_float16" or "float32"); the previous global policy
    comes back after, so a mixed-precision run never leaks into the next one."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)

