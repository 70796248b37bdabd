"""tf.distribute strategy selection by name (Keras 3's own distribution API is JAX-only in practice)."""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker", "tpu")


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
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one-device"
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi-worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise RuntimeError("strategy 'multi-worker' needs the TF_CONFIG environment variable (cluster + task)")
        try:
            json.loads(config)
        except json.JSONDecodeError as error:
            raise RuntimeError(f"TF_CONFIG is not valid JSON: {error}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        raise RuntimeError(
            f"strategy 'tpu': no TPU found ({str(error).splitlines()[0]}). Run on a TPU VM or pass the TPU "
            "name/address; on CPU or GPU use strategy 'auto'"
        ) from None
    return tf.distribute.TPUStrategy(resolver)
