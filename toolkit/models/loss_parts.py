"""The training loop shared by models trained on a dict of loss parts (the VAE family, the autoencoders).

Keras' `fit` handles one loss; these models report several terms (reconstruction, KL, a penalty, ...) and
optimise their sum. A subclass sets `self.trackers` (term name -> `keras.metrics.Mean`) and implements
`loss_parts(images, training) -> {"loss": ..., other terms}`; this base runs the steps and tracks every term.
Not a model family: the families that share it import it, never each other.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def images_of(data):
    """Keras passes `x`, `(x,)`, `(x, y)` or `(x, y, w)`; these models learn from the images alone."""
    return data[0] if isinstance(data, (tuple, list)) else data


class LossPartsModel(keras.Model):
    """Custom `train_step` / `test_step` over `loss_parts`, and `from_config` for an encoder + decoder pair."""

    trackers: dict

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        with tf.GradientTape() as tape:
            parts = self.loss_parts(images_of(data), training=True)
            # the loss is a per-replica mean and replicas' gradients are summed: scale as Keras' own
            # compute_loss does, so N replicas take the same step as one device with the same global batch
            loss = parts["loss"] / tf.distribute.get_replica_context().num_replicas_in_sync
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._track(parts)

    def test_step(self, data):
        return self._track(self.loss_parts(images_of(data), training=False))

    def _track(self, parts):
        for name, tracker in self.trackers.items():
            tracker.update_state(parts[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _coder_config(self) -> dict:
        return {"name": self.name, "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
