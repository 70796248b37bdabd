"""The array-classifier serving adapter: raw float arrays in, scores / classes / labels out, through an export."""

import keras
import numpy as np

from toolkit.export import Predictor, export
from toolkit.export.arrays import INPUT, array_classification_adapter


def test_export_returns_scores_classes_and_labels(tmp_path):
    inputs = keras.Input((12, 2))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling1D()(inputs)))
    adapter = array_classification_adapter(model, ["a", "b", "c"])
    assert list(adapter.raw_inputs) == [INPUT] and adapter.raw_inputs[INPUT].shape.as_list() == [None, 12, 2]
    path = export(model, str(tmp_path / "m"), adapter=adapter)
    x = np.random.default_rng(0).normal(size=(4, 12, 2)).astype("float32")
    out = Predictor(path)({INPUT: x})
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(out["scores"], expected, atol=1e-5)
    assert out["classes"].tolist() == expected.argmax(-1).tolist()
    assert [v.decode() for v in out["labels"]] == [["a", "b", "c"][i] for i in expected.argmax(-1)]
