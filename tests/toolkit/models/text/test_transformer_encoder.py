"""From-scratch Transformer encoder classifier (keras-hub layers): shapes, masking, training, round trips."""

import keras
import numpy as np
import pytest

from toolkit.models.text.transformer import build_transformer_classifier


@pytest.mark.parametrize("positions", ["learned", "sine", "rope", "alibi"])
def test_builds_masks_padding_and_round_trips(tmp_path, positions):
    keras.utils.set_random_seed(0)
    model = build_transformer_classifier(30, 3, sequence_length=8, num_layers=1, hidden_dim=16, num_heads=2,
                                         positions=positions, dropout=0.0)
    assert model.output_shape == (None, 3)
    x = np.array([[3, 4, 5, 0, 0, 0, 0, 0], [6, 7, 8, 9, 10, 11, 12, 13]])
    out = model(x).numpy()
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
    changed = x.copy()
    changed[0, 3:] = 0  # already padding: the masked encoder and pooling ignore padding positions
    np.testing.assert_allclose(model(changed).numpy(), out, atol=1e-6)
    assert not np.allclose(model(np.array([[3, 4, 6, 0, 0, 0, 0, 0]])).numpy(), out[:1])
    path = str(tmp_path / f"{positions}.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x).numpy(), out, atol=1e-6)


def test_learns_a_token_rule_and_validates():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x = rng.integers(3, 20, size=(64, 6))
    y = (x == 5).any(axis=1).astype("int32")  # class 1 iff token 5 appears anywhere
    model = build_transformer_classifier(20, 2, sequence_length=6, num_layers=1, hidden_dim=16, num_heads=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.85
    with pytest.raises(ValueError, match="divisible"):
        build_transformer_classifier(20, 2, hidden_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="positions"):
        build_transformer_classifier(20, 2, positions="relative")


@pytest.mark.parametrize(("positions", "normalize_first"), [("rope", False), ("alibi", True)])
def test_relative_positions_train_a_step_and_take_any_length(positions, normalize_first):
    keras.utils.set_random_seed(2)
    model = build_transformer_classifier(20, 2, sequence_length=6, num_layers=1, hidden_dim=8, num_heads=2,
                                         positions=positions, normalize_first=normalize_first)
    assert any(type(layer).__name__ == "PositionalSelfAttention" for layer in model.layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
    x, y = np.random.default_rng(0).integers(1, 20, size=(8, 6)), np.arange(8) % 2
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss) and any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    assert model(np.ones((1, 11), "int64")).shape == (1, 2)  # no position table: any length
