"""tf.distribute strategy selection by name (Keras 3's own distribution API is JAX-only in practice)."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from toolkit.data.batching import needs_static_batches, static_batches  # noqa: F401  (re-exported for apps)
from toolkit.training.strategies import STRATEGIES



class StrategyError(RuntimeError):
    """The requested tf.distribute strategy cannot run here (no TPU, a bad TF_CONFIG, ...)."""
_PROCESS_WIDE: dict = {}  # multi-worker and TPU strategies can be created once per process


def get_strategy(name: str = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy for `name`.

    Args:
        name: `"auto"` (MirroredStrategy over 2+ GPUs, else one device), `"one-device"`,
            `"mirrored"` (all visible GPUs, or all logical CPUs when there is no GPU),
            `"multi-worker"` (MultiWorkerMirroredStrategy from `TF_CONFIG`), `"tpu"` (TPUStrategy).
        tpu: TPU name or address for `TPUClusterResolver` (default: from the environment).
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "multi-worker":  # before anything lists devices: that initialises the TF runtime
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise RuntimeError("strategy 'multi-worker' needs the TF_CONFIG environment variable (cluster + task)")
        try:
            json.loads(config)
        except json.JSONDecodeError as error:
            raise RuntimeError(f"TF_CONFIG is not valid JSON: {error}") from None
        if "multi-worker" not in _PROCESS_WIDE:
            _PROCESS_WIDE["multi-worker"] = tf.distribute.MultiWorkerMirroredStrategy()
            _patch_keras_multi_worker_reduce()
        return _PROCESS_WIDE["multi-worker"]
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one-device"
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    tpu = tpu or os.environ.get("TPU_NAME")
    if tpu is None and not (os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0")
                            or "TPU_ACCELERATOR_TYPE" in os.environ):
        # Without a name or local TPU devices the resolver would probe the cloud metadata server over the
        # network; fail fast with a clear message instead.
        raise StrategyError(
            "strategy 'tpu': no TPU found (no TPU_NAME, no local TPU devices). Run on a TPU VM, set TPU_NAME "
            "or pass the TPU name/address; on CPU or GPU use strategy 'auto'")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        raise StrategyError(
            f"strategy 'tpu': no TPU found ({str(error).splitlines()[0]}). Run on a TPU VM or pass the TPU "
            "name/address; on CPU or GPU use strategy 'auto'"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def _patch_keras_multi_worker_reduce() -> None:
    """Works around a Keras 3.15 TF-backend bug under MultiWorkerMirroredStrategy.

    `fit` all-reduces each step's logs with `strategy.reduce("MEAN", v, axis=0)`, which fails for the
    scalar loss and metrics ("Invalid reduction dimension 0 for input with 0 dimensions"). Scalars are
    reduced with `axis=None` here; everything else still goes through Keras' own function.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer
    from keras.src import tree

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_toolkit_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            def reduce_one(value):
                if isinstance(value, tf.distribute.DistributedValues):
                    rank = strategy.experimental_local_results(value)[0].shape.rank
                else:
                    rank = getattr(getattr(value, "shape", None), "rank", None)
                if rank == 0:
                    return strategy.reduce("MEAN", value, axis=None)
                return original(value, strategy, reduction)

            return tree.map_structure(reduce_one, values)
        return original(values, strategy, reduction)

    reduce_per_replica._toolkit_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica
