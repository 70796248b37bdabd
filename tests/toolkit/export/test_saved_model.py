"""tpu SavedModels: a batch other than the static one is refused by name when called from plain TensorFlow."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.export import export
from toolkit.export.adapter import dense_adapter


def test_tpu_export_names_the_input_and_the_static_batch_on_a_short_batch(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3), name="image"), keras.layers.Flatten(), keras.layers.Dense(2)])
    path = export(model, str(tmp_path / "m"), target="tpu", batch_size=4, adapter=dense_adapter(model))
    signature = tf.saved_model.load(path).signatures["serving_dense"]
    full = tf.ones((4, 8, 8, 3))  # a tensor: TF binds it without checking its shape (a NumPy array is checked)
    np.testing.assert_allclose(next(iter(signature(image=full).values())).numpy(), model(full), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Shape of tensor image \[3,8,8,3\] is not compatible with expected shape \[4,8,8,3\]"):
        signature(image=full[:3])
